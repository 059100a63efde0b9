-- attack: a 4 MiB error message
return runbook {
  name = "attack-err_huge", title = "attack err_huge", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        error(("E"):rep(1 << 22))
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
