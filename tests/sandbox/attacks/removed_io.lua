-- attack: the io library
return runbook {
  name = "attack-removed_io", title = "attack removed_io", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return io.open("/etc/passwd"):read("a")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
