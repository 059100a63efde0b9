-- attack: a to-be-closed variable whose __close loops
return runbook {
  name = "attack-close_loop", title = "attack close_loop", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local x <close> = setmetatable({}, { __close = function() while true do end end })
        return 1
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
