-- attack: memory bomb: doubling concatenation
return runbook {
  name = "attack-mem_concat", title = "attack mem_concat", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        local s, keep = "x", {}
        while true do s = s .. s; keep[#keep + 1] = s end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
