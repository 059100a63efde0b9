-- attack: json.decode of text nested 1000 deep
return runbook {
  name = "attack-json_decode_deep", title = "attack json_decode_deep", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local json = require "json"
        return json.decode(("["):rep(1000) .. ("]"):rep(1000))
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
