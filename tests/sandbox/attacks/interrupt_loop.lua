-- attack: an infinite loop that catches every error; the operator presses
-- Ctrl-C (the test sends SIGINT)
return runbook {
  name = "attack-interrupt_loop", title = "interrupt", start = "a",
  steps = {
    a = action {
      title = "A", timeout = "60s",
      run = function(ctx)
        print("looping")
        while true do pcall(function() while true do end end) end
      end,
      next = "done", on_error = "done",
    },
    done = resolved { title = "Done" },
  },
}
