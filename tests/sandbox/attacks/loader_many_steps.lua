-- attack: 50,000 steps, to make the host's validator (outside any Lua budget
-- and after the load deadline) spin for minutes
local steps = {}
local N = 50000
for i = 1, N do
  steps["s" .. i] = action { title = "S", run = function() return i end,
                            next = i < N and ("s" .. (i + 1)) or "done" }
end
steps.done = resolved { title = "Done" }
return runbook { name = "many", title = "many", start = "s1", steps = steps }
