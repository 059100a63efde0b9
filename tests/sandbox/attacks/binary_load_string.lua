-- attack: load() of a binary string with mode "b"
return runbook {
  name = "attack-binary_load_string", title = "attack binary_load_string", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local f, e = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8", "=bin", "b")
        if f then return "escaped" end
        error(e, 0)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
