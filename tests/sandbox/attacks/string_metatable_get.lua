-- attack: getmetatable("") to reach and modify the shared string metatable
return runbook {
  name = "attack-string_metatable_get", title = "attack string_metatable_get", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local mt = getmetatable("")
        mt.__index = { evil = true }
        return "escaped"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
