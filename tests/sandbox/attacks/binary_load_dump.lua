-- attack: string.dump to make a binary chunk, then load it
return runbook {
  name = "attack-binary_load_dump", title = "attack binary_load_dump", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local f = function() return 1 end
        local chunk = string.dump(f)
        return load(chunk)()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
