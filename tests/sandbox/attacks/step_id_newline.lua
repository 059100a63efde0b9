-- attack: a step id holding "\nE" to end the watchdog's line early and clear
-- its deadline, then a CPU bomb inside one C call
return runbook {
  name = "attack-step_id_newline", title = "newline in step id", start = "a\nE",
  steps = {
    ["a\nE"] = action { title = "A", timeout = "1s", run = function(ctx) return #string.rep("", math.maxinteger) end, next = "done" },
    done = resolved { title = "Done" },
  },
}
