-- attack: catch the out-of-memory error with pcall and return at once, before
-- the hook comes round again
return runbook {
  name = "attack-mem_caught_return", title = "memory kill caught", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        pcall(string.rep, "x", 1 << 30)
        return "survived"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
