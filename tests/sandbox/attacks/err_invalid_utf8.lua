-- attack: an error message and a chunk name that are not UTF-8 (the timeline
-- is JSON and could drop them)
return runbook {
  name = "attack-err_invalid_utf8", title = "invalid utf8", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local f = assert(load("error('bad \255\254 \237\160\128 bytes')", "=chunk\255"))
        f()
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
