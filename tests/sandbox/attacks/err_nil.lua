-- attack: error(nil)
return runbook {
  name = "attack-err_nil", title = "attack err_nil", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        error(nil)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
