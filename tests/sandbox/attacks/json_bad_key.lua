-- attack: a table key that is not UTF-8 (jansson would drop it silently)
return runbook {
  name = "attack-json_bad_key", title = "bad key", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        local json = require "json"
        return json.encode({ ["\255\254"] = 1 })
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
