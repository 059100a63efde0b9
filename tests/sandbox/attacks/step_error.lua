-- attack: an error inside a step
return runbook {
  name = "attack-step_error", title = "attack step_error", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        error("boom in step")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
