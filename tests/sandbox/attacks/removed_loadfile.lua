-- attack: loadfile
return runbook {
  name = "attack-removed_loadfile", title = "attack removed_loadfile", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return loadfile("/etc/passwd")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
