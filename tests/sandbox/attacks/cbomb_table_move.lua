-- attack: table.move over 2^63 absent keys inside one C call
return runbook {
  name = "attack-cbomb_table_move", title = "attack cbomb_table_move", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "1s",
      run = function(ctx)
        return table.move({}, 1, math.maxinteger - 1, 1, {})
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
