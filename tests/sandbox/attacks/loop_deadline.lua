-- attack: infinite loop against a 1 s step timeout
return runbook {
  name = "attack-loop_deadline", title = "attack loop_deadline", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "1s",
      run = function(ctx)
        local x = 0
        while true do x = x + 1 end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
