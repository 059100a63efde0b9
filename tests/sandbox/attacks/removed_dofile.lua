-- attack: dofile
return runbook {
  name = "attack-removed_dofile", title = "attack removed_dofile", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return dofile("/etc/passwd")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
