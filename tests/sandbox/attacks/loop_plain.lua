-- attack: infinite loop (instruction budget)
return runbook {
  name = "attack-loop_plain", title = "attack loop_plain", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        while true do end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
