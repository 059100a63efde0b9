-- attack: collectgarbage("stop") to make memory bombs stick
return runbook {
  name = "attack-gc_stop", title = "attack gc_stop", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        collectgarbage("stop")
        return "gc stopped"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
