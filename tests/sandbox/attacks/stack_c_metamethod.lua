-- attack: C stack overflow through a chain of __index functions
return runbook {
  name = "attack-stack_c_metamethod", title = "attack stack_c_metamethod", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local t = setmetatable({}, {})
        getmetatable(t).__index = function(self, k) return self[k .. "x"] end
        return t.y
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
