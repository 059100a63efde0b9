-- attack: os.date with an invalid conversion
return runbook {
  name = "attack-os_date_format", title = "attack os_date_format", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "5s",
      run = function(ctx)
        return os.date("%Ez")
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
