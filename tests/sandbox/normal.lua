-- normal: the runbook run after every attack, to show nothing leaked.
return runbook {
  name = "normal", title = "Normal", start = "a",
  steps = {
    a = action {
      title = "A",
      run = function(ctx)
        print("normal run")
        local json = require "json"
        return { ok = true, enc = json.encode({ 1, 2 }), rep = ("ab"):rep(2), n = #string.format("%d", 42) }
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
