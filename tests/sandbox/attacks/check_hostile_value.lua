-- attack: a check returns a table whose metamethods loop instead of a branch
return runbook {
  name = "attack-check_hostile_value", title = "check hostile", start = "c",
  steps = {
    c = check {
      title = "which?",
      run = function(ctx)
        local loop = function() while true do end end
        return setmetatable({}, { __tostring = loop, __eq = loop, __index = loop, __len = loop })
      end,
      on = { [true] = "done", [false] = "done" },
    },
    done = resolved { title = "Done" },
  },
}
