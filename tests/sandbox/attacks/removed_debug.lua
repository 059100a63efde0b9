-- attack: the debug library
return runbook {
  name = "attack-removed_debug", title = "attack removed_debug", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return debug.getregistry()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
