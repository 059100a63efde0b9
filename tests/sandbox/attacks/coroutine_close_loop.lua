-- attack: a coroutine.wrap whose body is killed while a <close> variable with
-- a looping __close is pending (Lua would close it with hooks off)
return runbook {
  name = "attack-coroutine_close_loop", title = "coroutine close loop", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        local f = coroutine.wrap(function()
          local x <close> = setmetatable({}, { __close = function() while true do end end })
          while true do end
        end)
        f()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
