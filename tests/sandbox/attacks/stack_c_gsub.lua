-- attack: C stack overflow through nested string.gsub callbacks
return runbook {
  name = "attack-stack_c_gsub", title = "attack stack_c_gsub", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local function f(s) return (s:gsub(".", f)) end
        return f("x")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
