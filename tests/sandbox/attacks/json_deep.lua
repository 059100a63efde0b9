-- attack: json.encode of a table nested 1000 deep
return runbook {
  name = "attack-json_deep", title = "attack json_deep", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local json = require "json"
        local t = {}
        for i = 1, 1000 do t = { t } end
        return json.encode(t)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
