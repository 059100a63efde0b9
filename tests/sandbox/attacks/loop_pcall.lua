-- attack: infinite loop that catches the kill with pcall
return runbook {
  name = "attack-loop_pcall", title = "attack loop_pcall", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        while true do pcall(function() while true do end end) end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
