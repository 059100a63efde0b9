-- attack: an infinite loop while the runbook file runs, caught by pcall
while true do pcall(function() while true do end end) end
