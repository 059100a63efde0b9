-- attack: package.loadlib
return runbook {
  name = "attack-removed_package", title = "attack removed_package", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return package.loadlib("/lib/x86_64-linux-gnu/libc.so.6", "system")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
