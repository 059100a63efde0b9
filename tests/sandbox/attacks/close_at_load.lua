-- attack: a to-be-closed variable at load time whose __close loops
local x <close> = setmetatable({}, { __close = function() while true do end end })
return runbook { name = "x", title = "x", start = "a", steps = {} }
