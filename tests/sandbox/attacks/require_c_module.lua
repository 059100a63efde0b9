-- attack: require of a C module not in the stdlib
return runbook {
  name = "attack-require_c_module", title = "attack require_c_module", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return require("socket.core")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
