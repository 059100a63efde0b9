-- attack: a to-be-closed variable whose __close raises
return runbook {
  name = "attack-close_error", title = "attack close_error", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local x <close> = setmetatable({}, { __close = function() error("boom in __close", 0) end })
        return 1
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
