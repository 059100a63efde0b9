-- attack: switching the collector to generational mode
return runbook {
  name = "attack-gc_generational", title = "attack gc_generational", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        collectgarbage("generational", 100, 100)
        return "gc tuned"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
