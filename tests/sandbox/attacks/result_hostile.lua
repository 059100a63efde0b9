-- attack: a step result whose metamethods loop
return runbook {
  name = "attack-result_hostile", title = "attack result_hostile", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        return setmetatable({ 1, 2 }, {
          __index = function() while true do end end,
          __pairs = function() while true do end end,
          __len = function() while true do end end,
          __tostring = function() while true do end end,
        })
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
