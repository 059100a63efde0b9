-- attack: reading an undeclared global
return runbook {
  name = "attack-global_read", title = "attack global_read", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return undefined_thing + 1
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
