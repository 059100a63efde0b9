-- attack: infinite loop inside an xpcall message handler
return runbook {
  name = "attack-loop_xpcall_handler", title = "attack loop_xpcall_handler", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        while true do
          xpcall(error, function() while true do end end)
        end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
