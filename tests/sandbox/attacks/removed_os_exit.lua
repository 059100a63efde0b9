-- attack: os.exit would end the executor
return runbook {
  name = "attack-removed_os_exit", title = "attack removed_os_exit", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        os.exit(0)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
