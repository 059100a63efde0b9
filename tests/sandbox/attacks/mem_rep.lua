-- attack: memory bomb: string.rep of 1 GiB
return runbook {
  name = "attack-mem_rep", title = "attack mem_rep", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        return #string.rep("x", 1 << 30)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
