-- attack: error with a table
return runbook {
  name = "attack-err_table", title = "attack err_table", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "10s",
      run = function(ctx)
        error({ code = 42, message = "table error" })
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
