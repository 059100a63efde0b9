-- attack: reach string.dump through the string metatable
return runbook {
  name = "attack-binary_method_dump", title = "attack binary_method_dump", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local chunk = ("").dump(function() return 1 end)
        return load(chunk)()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
