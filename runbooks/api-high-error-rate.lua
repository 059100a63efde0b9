-- api-high-error-rate.lua: the generic mitigation tree for an API whose
-- 5xx rate is up: undo a recent deploy (roll back, or turn its feature flag
-- off when a rollback is unsafe), shield a failing dependency behind its
-- circuit breaker, else scale up, restart, fail over; status at every turn.
--
-- Severity sev2. Owner: the service's on-call (the `owner` parameter).
-- Escalation: the service's secondary on-call when nothing known helped,
-- then the incident commander (`escalate_to` and `commander` parameters).
local deploy = require "deploy"
local flags = require "flags"
local prom = require "prom"
local ssh = require "ssh"

local ERROR_RATE = 'sum(rate(http_requests_total{service="%s",code=~"5.."}[5m]))'
  .. ' / sum(rate(http_requests_total{service="%s"}[5m]))'

-- The worst upstream's share of failed calls from this service.
local UPSTREAM_ERRORS = 'max(sum by (upstream) (rate(upstream_requests_total{service="%s",'
  .. 'code=~"5.."}[5m])) / sum by (upstream) (rate(upstream_requests_total{service="%s"}[5m])))'

local function pct(x)
  return string.format("%g%%", x * 100)
end

-- A status update in the template everyone reads the same way.
local function update(status, actions)
  return function(ctx)
    local s = type(status) == "function" and status(ctx) or status
    local a = type(actions) == "function" and actions(ctx) or actions
    return string.format("Current status: %s\nImpact: %s\nActions: %s\nNext update in %d minutes.",
      s, ctx.impact, a, ctx.update_minutes)
  end
end

local function error_rate(ctx)
  return prom.value(string.format(ERROR_RATE, ctx.service, ctx.service))
end

-- The verdict, and the reading the poll line and the timeline show.
local function recovered(ctx)
  local rate = error_rate(ctx)
  return rate < ctx.threshold, string.format("%.1f%%", rate * 100)
end

return runbook {
  name = "api-high-error-rate",
  title = "High error rate on an API",
  severity = "sev2",
  description = "Severity sev2, owned by the service's on-call; escalates to the "
    .. "secondary on-call, then the incident commander. Undoes a recent deploy, "
    .. "shields a failing dependency, else scales up, restarts and fails over, "
    .. "posting a status update at each turn.",
  params = {
    service = { required = true, pattern = "[a-z][a-z0-9-]*",
      description = "service as deployed and in metrics" },
    env = { default = "production", pattern = "[a-z][a-z0-9-]*" },
    hosts = { default = "app", description = "inventory group that runs the service" },
    owner = { default = "service-oncall", description = "who owns this incident" },
    escalate_to = { default = "service-secondary", description = "next on-call to page" },
    commander = { default = "incident-commander", description = "last escalation" },
    threshold = { type = "number", default = 0.01,
      description = "error rate (0..1) that counts as recovered" },
    dependency_threshold = { type = "number", default = 0.2,
      description = "share of failed calls to one upstream that counts as it being down" },
    deploy_window = { type = "duration", default = "2h",
      description = "how far back a deploy counts as recent" },
    unsafe_pattern = { default = "[Mm]igrat",
      description = "Lua pattern: a deploy message matching it cannot be rolled back" },
    release_flag = { default = "release-kill-switch",
      description = "feature flag that turns the new release's change off" },
    breaker_flag = { default = "upstream-circuit-breaker",
      description = "flag that opens the circuit breaker / fallback" },
    failover_flag = { default = "failover-secondary-region",
      description = "flag that moves traffic to the secondary region" },
    scale_command = { default = "sudo /usr/local/sbin/scale-out",
      description = "command on the ops host that adds capacity (gets service and count)" },
    ops_host = { default = "ops", description = "inventory host that runs scale_command" },
    scale_by = { type = "integer", default = 2, description = "instances to add" },
    restart_batch = { default = "25%", description = "hosts restarted at a time" },
    verify_timeout = { type = "duration", default = "5m" },
    impact = { default = "Some API requests fail with server errors.",
      description = "the Impact line of status updates" },
    update_minutes = { type = "integer", default = 30,
      description = "the 'Next update in N minutes' of status updates" },
  },
  start = "announce",
  steps = {
    announce = notify {
      title = "Status: investigating",
      phase = "Investigating",
      message = update(function(ctx) return "Elevated error rate on " .. ctx.service end,
        "On-call is checking recent deploys and dependencies."),
      next = "recent_deploy",
    },

    recent_deploy = check {
      title = "Recent deployment?",
      run = function(ctx)
        local d = deploy.recent(ctx.service, { within = ctx.deploy_window })
        if d then
          ctx.deploy = d.revision or d.id
          ctx.deploy_message = d.message or ""
        end
        return d ~= nil
      end,
      on = { [true] = "rollback_safe", [false] = "dependency" },
      -- Not knowing about deploys is no reason to stop looking.
      on_error = "dependency",
    },

    rollback_safe = check {
      title = "Can we roll back safely?",
      run = function(ctx)
        return not string.find(ctx.deploy_message or "", ctx.unsafe_pattern)
      end,
      on = { [true] = "rollback", [false] = "disable_flag" },
    },

    rollback = action {
      title = "Roll back to the previous release",
      approval = { required = true },
      run = function(ctx)
        return deploy.rollback(ctx.service)
      end,
      next = "identified_deploy",
      on_error = "disable_flag",
    },

    identified_deploy = notify {
      title = "Status: identified, bad deploy rolled back",
      phase = "Identified",
      message = update(function(ctx)
        return "A recent deploy of " .. ctx.service .. " (" .. tostring(ctx.deploy) .. ") caused the errors"
      end, "The deploy was rolled back; we are watching the error rate."),
      next = "verify",
    },

    disable_flag = action {
      title = "Turn the release's change off behind its feature flag",
      approval = { required = true },
      run = function(ctx)
        return flags.set(ctx.release_flag, false, { environment = ctx.env })
      end,
      next = "identified_flag",
    },

    identified_flag = notify {
      title = "Status: identified, change disabled by flag",
      phase = "Identified",
      message = update(function(ctx)
        return "A recent change to " .. ctx.service .. " caused the errors"
      end, function(ctx) return "Flag " .. ctx.release_flag .. " is off; we are watching the error rate." end),
      next = "verify",
    },

    dependency = check {
      title = "Is a dependency down?",
      run = function(ctx)
        return prom.value(string.format(UPSTREAM_ERRORS, ctx.service, ctx.service))
          > ctx.dependency_threshold
      end,
      on = { [true] = "open_breaker", [false] = "no_known_cause" },
      on_error = "no_known_cause",
    },

    open_breaker = action {
      title = "Open the circuit breaker (serve the fallback)",
      run = function(ctx)
        return flags.set(ctx.breaker_flag, true, { environment = ctx.env })
      end,
      next = "identified_dependency",
    },

    identified_dependency = notify {
      title = "Status: identified, dependency down, fallback on",
      phase = "Identified",
      message = update("An upstream dependency is failing",
        function(ctx) return "Circuit breaker " .. ctx.breaker_flag .. " is open; degraded answers are served." end),
      next = "verify",
    },

    no_known_cause = notify {
      title = "Status: still investigating, adding capacity",
      phase = "Investigating",
      message = update("No recent deploy and no failing dependency found",
        "Scaling up, then restarting, then failing over until errors subside."),
      next = "scale_up",
    },

    scale_up = action {
      title = "Scale up",
      run = function(ctx)
        return ssh.run(ctx.ops_host, string.format("%s %s %d", ctx.scale_command, ctx.service, ctx.scale_by))
      end,
      next = "verify_scaled",
      on_error = "restart",
    },

    verify_scaled = wait {
      title = "Errors down after scaling up?",
      until_ = recovered,
      every = "15s",
      timeout = "5m",
      on = { [true] = "monitoring", [false] = "restart" },
    },

    restart = action {
      title = "Restart the service in batches",
      approval = { required = true },
      run = function(ctx)
        return ssh.run(ctx.hosts, "sudo systemctl restart " .. ctx.service,
          { batch = ctx.restart_batch, max_fail = 0 })
      end,
      next = "verify_restarted",
      on_error = "failover",
    },

    verify_restarted = wait {
      title = "Errors down after the restart?",
      until_ = recovered,
      every = "15s",
      timeout = "5m",
      on = { [true] = "monitoring", [false] = "failover" },
    },

    failover = action {
      title = "Fail over to the secondary region",
      approval = { required = true },
      run = function(ctx)
        return flags.set(ctx.failover_flag, true, { environment = ctx.env })
      end,
      next = "verify",
      on_error = "escalate_commander",
    },

    verify = wait {
      title = "Error rate under the threshold?",
      until_ = recovered,
      every = "15s",
      timeout = "5m",
      on = { [true] = "monitoring", [false] = "escalate_secondary" },
    },

    monitoring = notify {
      title = "Status: mitigated, monitoring",
      phase = "Monitoring",
      message = update(function(ctx) return "Error rate on " .. ctx.service .. " is under " .. pct(ctx.threshold) end,
        "Mitigation in place; watching for a relapse."),
      next = "all_clear",
    },

    all_clear = notify {
      title = "Status: resolved",
      phase = "Resolved",
      message = update(function(ctx) return ctx.service .. " is healthy" end,
        "None; a postmortem follows."),
      impact = "None now.",
      next = "done",
    },

    done = resolved { title = "Error rate back to baseline" },

    escalate_secondary = escalate {
      title = "Errors persist after mitigation: page the secondary",
      to = function(ctx) return ctx.escalate_to end,
      message = function(ctx)
        return "Errors on " .. ctx.service .. " are still above " .. pct(ctx.threshold) .. " after mitigation."
      end,
    },

    escalate_commander = escalate {
      title = "Failover failed: page the incident commander",
      to = function(ctx) return ctx.commander end,
      message = "Failover to the secondary region failed; every automated mitigation is spent.",
    },
  },
}
