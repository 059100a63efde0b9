-- attack: os.getenv (secrets live in the environment)
return runbook {
  name = "attack-removed_os_getenv", title = "attack removed_os_getenv", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return os.getenv("HOME")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
