-- attack: JSON text whose parse tree (outside the Lua state) is ~25x its size
return runbook {
  name = "attack-json_decode_bomb", title = "json decode bomb", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "30s",
      run = function(ctx)
        local json = require "json"
        return json.decode("[" .. ("{},"):rep(4000000) .. "{}]")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
