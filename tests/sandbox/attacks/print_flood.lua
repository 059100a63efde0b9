-- attack: print and warn flood (bounded log)
return runbook {
  name = "attack-print_flood", title = "attack print_flood", start = "a",
  steps = {
    a = action {
      title = "attack", timeout = "60s",
      run = function(ctx)
        for i = 1, 5000 do print(("x"):rep(1000)) end
        print(("y"):rep(1 << 22))
        for i = 1, 2000 do warn(("w"):rep(1000)) end
        return "flooded"
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
