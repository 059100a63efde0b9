-- attack: an error raised while the runbook file runs (load time, not a step)
local limit = 3
if limit < 5 then
  error("boom at load time")
end
return runbook { name = "x", title = "x", start = "a", steps = {} }
