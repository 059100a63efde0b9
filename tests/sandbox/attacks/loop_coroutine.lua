-- attack: infinite loop inside a coroutine
return runbook {
  name = "attack-loop_coroutine", title = "attack loop_coroutine", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        local co = coroutine.wrap(function() while true do end end)
        while true do pcall(co) end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
