-- attack: one check with 200,000 branches, each checked against every step
local on = { [true] = "done", [false] = "done" }
for i = 1, 200000 do on["v" .. i] = "done" end
return runbook {
  name = "branches", title = "branches", start = "c",
  steps = {
    c = check { title = "C", run = function() return true end, on = on },
    done = resolved { title = "Done" },
  },
}
