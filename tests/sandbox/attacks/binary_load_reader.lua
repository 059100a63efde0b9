-- attack: binary chunk fed piecewise through a reader function
return runbook {
  name = "attack-binary_load_reader", title = "attack binary_load_reader", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local parts = { "\27", "Lua", "\84\0" }
        local i = 0
        local f, e = load(function() i = i + 1; return parts[i] end, "=reader", "bt")
        if f then return "escaped" end
        error(e, 0)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
