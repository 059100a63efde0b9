-- attack: fill the memory budget to the last few bytes at load time (the
-- runbook can measure it with collectgarbage("count")), so the host's own
-- allocations right after the chunk returns fail outside a protected call
local rb = runbook {
  name = "attack-mem_fill_exact", title = "fill", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx) return "ran" end, next = "done" },
    done = resolved { title = "Done" },
  },
}
local limit = 16 * 1024 * 1024
local keep = table.move({}, 1, 0, 1, {})
for i = 1, 300000 do keep[i] = false end
local n, size = 0, 1 << 20
local function left() return limit - math.floor(collectgarbage("count") * 1024) end
while size >= 1 do
  if left() > 2 * size + 256 then
    n = n + 1
    keep[n] = ("x"):rep(size)
  else
    size = size // 2
  end
end
return rb
