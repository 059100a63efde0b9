-- attack: catastrophic backtracking inside one string.find call
return runbook {
  name = "attack-cbomb_pattern", title = "attack cbomb_pattern", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "1s",
      run = function(ctx)
        local s = ("a"):rep(40)
        return s:find(("a?"):rep(40) .. ("a"):rep(40) .. "b")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
