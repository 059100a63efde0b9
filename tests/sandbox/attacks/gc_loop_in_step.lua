-- attack: a finalizer that loops, run by the collector during a step
return runbook {
  name = "attack-gc_loop_in_step", title = "attack gc_loop_in_step", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        setmetatable({}, { __gc = function() while true do end end })
        local junk = {}
        for i = 1, 1e7 do junk[i % 1000 + 1] = { i } end
        return "survived"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
