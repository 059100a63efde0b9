-- attack: a cyclic step result
return runbook {
  name = "attack-result_cycle", title = "attack result_cycle", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local t = {}
        t.self = t
        return t
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
