-- attack: writing an undeclared global
return runbook {
  name = "attack-global_write", title = "attack global_write", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        counter = 1
        return counter
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
