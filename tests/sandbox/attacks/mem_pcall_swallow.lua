-- attack: memory bomb whose out-of-memory errors are swallowed by pcall
return runbook {
  name = "attack-mem_pcall_swallow", title = "attack mem_pcall_swallow", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        local keep = {}
        while true do
          pcall(function() keep[#keep + 1] = ("z"):rep(1 << 20) .. #keep end)
        end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
