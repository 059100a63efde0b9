-- attack: json.encode of a cyclic table
return runbook {
  name = "attack-json_cycle", title = "attack json_cycle", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local json = require "json"
        local t = { a = {} }
        t.a.b = t
        return json.encode(t)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
