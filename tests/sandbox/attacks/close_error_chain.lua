-- attack: to-be-closed variables that raise hostile objects while unwinding
return runbook {
  name = "attack-close_error_chain", title = "attack close_error_chain", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local a <close> = setmetatable({}, { __close = function(_, e) error({}) end })
        local b <close> = setmetatable({}, { __close = function(_, e) error(setmetatable({}, {__tostring = function() while true do end end})) end })
        error("first")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
