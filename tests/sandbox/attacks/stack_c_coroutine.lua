-- attack: C stack overflow through nested coroutines
return runbook {
  name = "attack-stack_c_coroutine", title = "attack stack_c_coroutine", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local function f() return coroutine.wrap(f)() end
        return f()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
