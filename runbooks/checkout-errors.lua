-- checkout-errors.lua: "High error rate on checkout", the seed runbook.
-- Recent deploy -> roll back; payment provider down -> fall back; database
-- pool saturated -> restart and page the DBAs; then verify or escalate.
local deploy = require "deploy"
local flags = require "flags"
local http = require "http"
local prom = require "prom"
local ssh = require "ssh"

local ERROR_RATE = 'sum(rate(http_requests_total{service="%s",code=~"5.."}[5m]))'
  .. ' / sum(rate(http_requests_total{service="%s"}[5m]))'

local function error_rate(ctx)
  return prom.value(string.format(ERROR_RATE, ctx.service, ctx.service))
end

return runbook {
  name = "checkout-errors",
  title = "High error rate on checkout",
  description = "Alert: checkout's error rate is above its threshold. Rolls back a recent deploy, "
    .. "falls back from a failing payment provider, or restarts checkout and pages "
    .. "the database team; then checks that the error rate is back to baseline.",
  params = {
    service = { default = "checkout", description = "service as deployed and in metrics" },
    env = { default = "production", pattern = "[a-z][a-z0-9-]*" },
    hosts = { default = "app", description = "inventory group that runs the service" },
    threshold = {
      type = "number",
      default = 0.01,
      description = "error rate that counts as recovered",
    },
    pool_threshold = {
      type = "number",
      default = 0.9,
      description = "share of the database pool in use (0..1) that counts as saturated",
    },
    fallback_flag = { default = "checkout-payment-fallback" },
    provider_status = {
      default = "https://status.payments.example/api/v2/status.json",
      description = "payment provider's status page (Statuspage JSON)",
    },
    pool_query = {
      default = 'max(db_pool_in_use{service="checkout"} / db_pool_size{service="checkout"})',
      description = "saturation of the database connection pool, 0..1",
    },
  },
  start = "announce",
  steps = {
    announce = notify {
      title = "Tell stakeholders we are investigating",
      phase = "Investigating",
      message = function(ctx)
        return "We are aware of elevated errors on " .. ctx.service .. " and are investigating."
      end,
      next = "recent_deploy",
    },

    recent_deploy = check {
      title = "Deploy in the last 2 hours?",
      run = function(ctx)
        local d = deploy.recent(ctx.service, { within = "2h" })
        if d then
          ctx.deploy = d.revision or d.id
        end
        return d ~= nil
      end,
      on = { [true] = "rollback", [false] = "dependency" },
    },

    rollback = action {
      title = "Roll back checkout to the previous release",
      approval = { required = true },
      run = function(ctx)
        return ssh.run(ctx.hosts, "deploy rollback " .. ctx.service, { batch = 2, max_fail = 0 })
      end,
      next = "identified_deploy",
      on_error = "rollback_failed",
    },

    identified_deploy = notify {
      title = "Status: cause identified (recent deploy)",
      phase = "Identified",
      message = function(ctx)
        local rev = ctx.deploy and (" (" .. ctx.deploy .. ")") or ""
        return "A recent deploy of " .. ctx.service .. rev .. " caused the errors; it has been rolled back."
      end,
      next = "verify",
    },

    dependency = check {
      title = "Payment provider healthy?",
      run = function(ctx)
        local r = http.get(ctx.provider_status, { allow_fail = true, timeout = "10s" })
        local ok = r.status == 200 and r.json and r.json.status
          and r.json.status.indicator == "none"
        return ok and true or false
      end,
      on = { [true] = "database", [false] = "enable_fallback" },
      -- A status page we cannot read tells us nothing: look at the database.
      on_error = "database",
    },

    enable_fallback = action {
      title = "Switch checkout to the fallback payment provider",
      run = function(ctx)
        return flags.set(ctx.fallback_flag, true, { environment = ctx.env })
      end,
      next = "identified_dependency",
    },

    identified_dependency = notify {
      title = "Status: payment provider degraded, fallback enabled",
      phase = "Identified",
      message = "Our payment provider is degraded; checkout now uses the fallback provider.",
      impact = "Some payments may take longer to confirm.",
      next = "verify",
    },

    database = check {
      title = "Database connection pool saturated (over pool_threshold)?",
      run = function(ctx)
        return prom.value(ctx.pool_query) > ctx.pool_threshold
      end,
      on = { [true] = "restart", [false] = "escalate_unknown" },
    },

    restart = action {
      title = "Restart checkout, half the hosts at a time",
      approval = true,
      run = function(ctx)
        return ssh.run(ctx.hosts, "sudo systemctl restart " .. ctx.service,
          { batch = "50%", max_fail = 0 })
      end,
      next = "page_dba",
    },

    page_dba = escalate {
      title = "Page the database team",
      to = "dba-team",
      message = "Checkout's database connection pool was saturated; checkout was restarted.",
      next = "verify",
    },

    verify = wait {
      title = "Error rate back under threshold within 5 minutes?",
      until_ = function(ctx)
        local rate = error_rate(ctx)
        -- the second value is the reading the poll line and the timeline show
        return rate < ctx.threshold, string.format("%.1f%%", rate * 100)
      end,
      every = "15s",
      timeout = "5m",
      on = { [true] = "monitoring", [false] = "escalate_unresolved" },
    },

    monitoring = notify {
      title = "Status: fix in place, monitoring",
      phase = "Monitoring",
      message = "A fix has been applied and checkout errors are back to baseline. We are monitoring.",
      next = "all_clear",
    },

    all_clear = notify {
      title = "Status: resolved",
      phase = "Resolved",
      message = "Checkout has fully recovered.",
      next = "done",
    },

    done = resolved { title = "Checkout error rate back to baseline" },

    rollback_failed = escalate {
      title = "Rollback failed: escalate to the tech lead",
      to = "tech-lead",
      message = "The automated rollback of checkout failed; see the timeline for the failing hosts.",
    },

    escalate_unresolved = escalate {
      title = "Errors persist after mitigation: escalate to the tech lead",
      to = "tech-lead",
      message = function(ctx)
        return string.format("Checkout errors are still above %g%% 5 minutes after mitigation.",
          ctx.threshold * 100)
      end,
    },

    escalate_unknown = escalate {
      title = "No known cause: escalate to the checkout owners",
      to = "checkout-secondary",
      message = "No recent deploy, the payment provider is healthy and the database pool "
        .. "is fine. Escalating to the service owners.",
    },
  },
}
