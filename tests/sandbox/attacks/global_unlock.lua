-- attack: removing the strict-globals metatable
return runbook {
  name = "attack-global_unlock", title = "attack global_unlock", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        setmetatable(_G, nil)
        evil = true
        return evil
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
