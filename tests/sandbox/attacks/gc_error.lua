-- attack: finalizers that raise
return runbook {
  name = "attack-gc_error", title = "attack gc_error", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        for i = 1, 100 do setmetatable({}, { __gc = function() error("boom in __gc") end }) end
        for i = 1, 1e5 do local _ = { i } end
        return "ok"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
