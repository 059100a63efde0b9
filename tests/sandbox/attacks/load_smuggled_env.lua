-- attack: load with a smuggled environment that falls back to _G
return runbook {
  name = "attack-load_smuggled_env", title = "attack load_smuggled_env", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local env = setmetatable({}, { __index = _G })
        local f = assert(load("return io.open(\"/etc/passwd\")", "=smuggle", "t", env))
        return f()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
