-- attack: os.execute
return runbook {
  name = "attack-removed_os_execute", title = "attack removed_os_execute", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return os.execute("id")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
