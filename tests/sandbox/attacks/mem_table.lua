-- attack: memory bomb: a growing table
return runbook {
  name = "attack-mem_table", title = "attack mem_table", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        local t = {}
        for i = 1, math.maxinteger do t[i] = { i } end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
