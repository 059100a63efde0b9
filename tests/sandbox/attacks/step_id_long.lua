-- attack: a step id longer than the watchdog's report line, hoping the line
-- is dropped and the step runs without a deadline; then a CPU bomb in C
local id = ("x"):rep(600)
return runbook {
  name = "attack-step_id_long", title = "long step id", start = id,
  steps = {
    [id] = action {
      title = "A", timeout = "1s",
      run = function(ctx) return #string.rep("", math.maxinteger) end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
