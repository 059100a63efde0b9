-- attack: a step result nested 1000 deep
return runbook {
  name = "attack-result_deep", title = "attack result_deep", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        local t = {}
        for i = 1, 1000 do t = { t } end
        return t
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
