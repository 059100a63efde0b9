-- attack: string.rep of an empty string: 2^63 iterations inside one C call
return runbook {
  name = "attack-cbomb_rep_empty", title = "attack cbomb_rep_empty", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "1s",
      run = function(ctx)
        return #string.rep("", math.maxinteger)
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
