-- attack: the runbook's own tables carry metamethods that loop, hoping the
-- host's loader or validator runs them (it must read everything raw)
local loop = function() while true do end end
local hostile = { __index = loop, __newindex = loop, __pairs = loop, __len = loop,
                  __eq = loop, __tostring = loop, __call = loop, __name = "x" }
local steps = setmetatable({
  a = setmetatable(action { title = "A", run = function() return 1 end, next = "done" }, hostile),
  done = resolved { title = "Done" },
}, hostile)
return setmetatable(runbook {
  name = "attack-loader_hostile_tables", title = "hostile tables", start = "a",
  params = setmetatable({ p = setmetatable({ default = "x" }, hostile) }, hostile),
  steps = steps,
}, hostile)
