-- attack: C stack overflow through nested pcall
return runbook {
  name = "attack-stack_c_pcall", title = "attack stack_c_pcall", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local function f() return select(2, pcall(f)) end
        local ok, e = pcall(f)
        error(e, 0)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
