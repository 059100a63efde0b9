-- attack: a typo at load time reads an undeclared global
local deploy = require "json"
local window = windwo_minutes * 60
return runbook { name = "x", title = "x", start = "a", steps = {} }
