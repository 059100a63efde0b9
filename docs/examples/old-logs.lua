-- old-logs.lua: the README's tour runbook. Compressed logs older than a
-- week pile up in a directory: look, delete them behind an approval, check
-- they are gone. Local commands only, so it runs on any machine.
local cmd = require "cmd"

-- The compressed logs older than max_age_days in ctx.dir, one path a line.
local function old_logs(ctx)
  local r = cmd.read({ "find", ctx.dir, "-name", "*.gz", "-mtime", "+" .. ctx.max_age_days })
  local n = 0
  for _ in r.stdout:gmatch("[^\n]+") do n = n + 1 end
  return n
end

return runbook {
  name = "old-logs",
  title = "Old compressed logs fill the log directory",
  params = {
    dir = { default = "/tmp/runbook-tour", description = "the log directory" },
    max_age_days = { type = "integer", default = 7, description = "older than this goes" },
  },
  start = "any_old",
  steps = {
    any_old = check {
      title = "Compressed logs older than max_age_days?",
      run = function(ctx)
        ctx.found = old_logs(ctx)
        return ctx.found > 0
      end,
      on = { [true] = "delete", [false] = "nothing" },
    },
    delete = action {
      title = "Delete them",
      approval = true,
      run = function(ctx)
        return cmd.run({ "find", ctx.dir, "-name", "*.gz", "-mtime", "+" .. ctx.max_age_days,
          "-delete" })
      end,
      next = "verify",
    },
    verify = wait {
      title = "All gone?",
      until_ = function(ctx)
        local n = old_logs(ctx)
        return n == 0, string.format("%d left", n)
      end,
      every = "1s",
      timeout = "3s",
      on = { [true] = "done", [false] = "still_there" },
    },
    done = resolved { title = "Old logs deleted" },
    nothing = resolved { title = "Nothing to delete" },
    still_there = escalated { title = "Old logs still there: look by hand" },
  },
}
