-- attack: a loop of __index tables
return runbook {
  name = "attack-index_chain_loop", title = "attack index_chain_loop", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local a, b = {}, {}
        setmetatable(a, { __index = b }); setmetatable(b, { __index = a })
        return a.missing
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
