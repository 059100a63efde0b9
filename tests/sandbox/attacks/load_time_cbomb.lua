-- attack: CPU burnt inside one C call while the runbook loads
local n = #string.rep("", math.maxinteger)
return runbook { name = "x", title = "x", start = "a", steps = {} }
