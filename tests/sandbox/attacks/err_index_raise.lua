-- attack: error object whose __index and __tostring raise
return runbook {
  name = "attack-err_index_raise", title = "attack err_index_raise", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        error(setmetatable({}, { __index = function() error("gotcha") end, __tostring = function() error("gotcha") end }))
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
