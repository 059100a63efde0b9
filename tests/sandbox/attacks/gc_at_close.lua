-- attack: finalizers set while loading that loop, raise and resurrect when the
-- state closes at the end of the run
local keep = {}
keep[1] = setmetatable({}, { __gc = function() while true do end end })
keep[2] = setmetatable({}, { __gc = function() error("boom at close") end })
local mt = {}
mt.__gc = function(o) keep[#keep + 1] = o; setmetatable(o, mt) end
keep[3] = setmetatable({}, mt)
return runbook {
  name = "attack-gc_at_close", title = "gc at close", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx) ctx.keep = #keep; return #keep end, next = "done" },
    done = resolved { title = "Done" },
  },
}
