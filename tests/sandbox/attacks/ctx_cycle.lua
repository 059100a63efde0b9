-- attack: a cycle stored in the journaled ctx
return runbook {
  name = "attack-ctx_cycle", title = "attack ctx_cycle", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        ctx.loop = {}
        ctx.loop.again = ctx.loop
        return 1
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
