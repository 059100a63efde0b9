-- attack: yield out of a step function (the executor is not a coroutine)
return runbook {
  name = "attack-yield_from_step", title = "yield", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx) coroutine.yield("out") end, next = "done" },
    done = resolved { title = "Done" },
  },
}
