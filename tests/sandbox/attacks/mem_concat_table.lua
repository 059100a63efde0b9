-- attack: memory bomb: table.concat kept alive
return runbook {
  name = "attack-mem_concat_table", title = "attack mem_concat_table", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        local t = {}
        for i = 1, 1 << 20 do t[i] = ("y"):rep(64) end
        local all = {}
        while true do all[#all + 1] = table.concat(t) end
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
