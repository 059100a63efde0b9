-- attack: finalizers that resurrect their object and re-arm themselves
return runbook {
  name = "attack-gc_resurrect", title = "attack gc_resurrect", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local graveyard = {}
        local mt = {}
        mt.__gc = function(o) graveyard[#graveyard + 1] = o; setmetatable(o, mt) end
        for i = 1, 100 do setmetatable({}, mt) end
        for i = 1, 1e5 do local _ = { i } end
        return #graveyard >= 0
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
