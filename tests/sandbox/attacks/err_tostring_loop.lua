-- attack: error object whose __tostring loops
return runbook {
  name = "attack-err_tostring_loop", title = "attack err_tostring_loop", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        error(setmetatable({}, { __tostring = function() while true do end end }))
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
