-- attack: Lua stack overflow by deep recursion
return runbook {
  name = "attack-stack_lua", title = "attack stack_lua", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local function f(n) return 1 + f(n + 1) end
        return f(1)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
