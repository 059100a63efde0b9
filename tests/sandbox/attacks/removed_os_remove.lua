-- attack: os.remove
return runbook {
  name = "attack-removed_os_remove", title = "attack removed_os_remove", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return os.remove("/tmp/x")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
