-- attack: require of a removed standard library
return runbook {
  name = "attack-require_io", title = "attack require_io", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return require("io")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
