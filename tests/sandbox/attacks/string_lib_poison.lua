-- attack: poison the string library (must not leak into the shared metatable)
return runbook {
  name = "attack-string_lib_poison", title = "attack string_lib_poison", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        string.rep = function() return "poisoned" end
        string.format = nil
        return ("ab"):rep(2)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
