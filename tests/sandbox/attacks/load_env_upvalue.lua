-- attack: load with an empty env, then look for os through the chunk's _ENV
return runbook {
  name = "attack-load_env_upvalue", title = "attack load_env_upvalue", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local f = assert(load("local x = ... return _ENV", "=envup", "t", {}))
        local env = f()
        return env.os.execute("id")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
