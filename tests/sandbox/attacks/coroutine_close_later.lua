-- attack: a coroutine killed by the step deadline keeps a looping __close;
-- the on_error step then calls coroutine.close on it
local saved
return runbook {
  name = "attack-coroutine_close_later", title = "coroutine close later", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "1s",
      run = function(ctx)
        saved = coroutine.create(function()
          local x <close> = setmetatable({}, { __close = function() while true do end end })
          while true do end
        end)
        coroutine.resume(saved)
        while true do end
      end,
      next = "done", on_error = "b",
    },
    b = action {
      title = "close it", timeout = "20s",
      run = function(ctx) return { coroutine.close(saved) } end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
