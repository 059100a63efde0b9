-- attack: setmetatable on a string
return runbook {
  name = "attack-string_metatable_set", title = "attack string_metatable_set", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        setmetatable("", { __index = function() return "pwned" end })
        return "escaped"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
