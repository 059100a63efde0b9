-- attack: a wait step whose condition loops on every poll
return runbook {
  name = "attack-wait_hostile", title = "wait hostile", start = "w",
  steps = {
    w = wait {
      title = "never", every = "1s", timeout = "2s",
      until_ = function(ctx) while true do end end,
      on = { [true] = "done", [false] = "done" },
    },
    done = resolved { title = "Done" },
  },
}
