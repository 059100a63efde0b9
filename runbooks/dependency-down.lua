-- dependency-down.lua: an upstream dependency (payment provider, search,
-- identity...) is failing. Probe it three ways, open the circuit breaker so
-- callers get the fallback, tell customers, watch for recovery, close it.
--
-- Severity sev2. Owner: the calling service's on-call (`owner`). Escalation:
-- the dependency's owner or vendor contact (`dependency_owner`), paged as soon
-- as the breaker is open, and the owner again when the outage drags on.
local flags = require "flags"
local http = require "http"
local prom = require "prom"

-- Share of this service's calls to the upstream that fail.
local UPSTREAM_ERRORS = 'sum(rate(upstream_requests_total{service="%s",upstream="%s",code=~"5.."}[5m]))'
  .. ' / sum(rate(upstream_requests_total{service="%s",upstream="%s"}[5m]))'

local function update(status, actions)
  return function(ctx)
    local s = type(status) == "function" and status(ctx) or status
    local a = type(actions) == "function" and actions(ctx) or actions
    return string.format("Current status: %s\nImpact: %s\nActions: %s\nNext update in %d minutes.",
      s, ctx.impact, a, ctx.update_minutes)
  end
end

local function upstream_errors(ctx)
  return prom.value(string.format(UPSTREAM_ERRORS, ctx.service, ctx.dependency, ctx.service,
    ctx.dependency))
end

local function healthy(ctx)
  local r = http.get(ctx.health_url, { check = false, timeout = "5s" })
  return r.status == 200
end

local function set_breaker(ctx, open)
  return flags.set(ctx.breaker_flag, open, { environment = ctx.env })
end

return runbook {
  name = "dependency-down",
  title = "A dependency is down",
  severity = "sev2",
  description = "Severity sev2, owned by the calling service's on-call; pages the "
    .. "dependency's owner once the breaker is open. Probes the status page, the "
    .. "health endpoint and the error rate by upstream, opens the circuit breaker, "
    .. "keeps customers informed, and closes the breaker once the dependency is back.",
  params = {
    service = { required = true, pattern = "[a-z][a-z0-9-]*",
      description = "the service whose calls fail (metrics label)" },
    dependency = { required = true, pattern = "[a-z][a-z0-9-]*",
      description = "the upstream, as in the upstream label of the metrics" },
    env = { default = "production", pattern = "[a-z][a-z0-9-]*" },
    status_page = { required = true, description = "the dependency's status page (Statuspage JSON)" },
    health_url = { required = true, description = "the dependency's health endpoint" },
    breaker_flag = { required = true, description = "flag that opens the circuit breaker" },
    owner = { default = "service-oncall", description = "who owns this incident" },
    dependency_owner = { default = "vendor-contact", description = "who runs the dependency" },
    error_threshold = { type = "number", default = 0.2,
      description = "share of failed calls (0..1) that counts as the dependency being down" },
    recovered_threshold = { type = "number", default = 0.01,
      description = "share of failed calls under which it counts as back" },
    impact = { default = "Features that rely on the dependency are degraded.",
      description = "the Impact line of status updates" },
    update_minutes = { type = "integer", default = 30 },
  },
  start = "announce",
  steps = {
    announce = notify {
      title = "Status: investigating",
      phase = "Investigating",
      message = update(function(ctx) return "Calls from " .. ctx.service .. " to " .. ctx.dependency .. " are failing" end,
        "On-call is checking the dependency's status page and health."),
      next = "status_page",
    },

    status_page = check {
      title = "Status page reports an incident?",
      run = function(ctx)
        local r = http.get(ctx.status_page, { check = false, timeout = "10s" })
        local ind = r.status == 200 and r.json and r.json.status and r.json.status.indicator
        if not ind then
          error("status page answered " .. tostring(r.status) .. " without an indicator")
        end
        return ind ~= "none"
      end,
      on = { [true] = "open_breaker", [false] = "health" },
      -- Status pages lag and fail: ask the service itself.
      on_error = "health",
    },

    health = check {
      title = "Health endpoint failing?",
      run = function(ctx)
        return not healthy(ctx)
      end,
      on = { [true] = "open_breaker", [false] = "error_rate" },
      on_error = "error_rate",
    },

    error_rate = check {
      title = "Calls to it failing above the threshold?",
      run = function(ctx)
        ctx.upstream_errors = upstream_errors(ctx)
        return ctx.upstream_errors > ctx.error_threshold
      end,
      on = { [true] = "open_breaker", [false] = "not_down" },
      on_error = "not_down",
    },

    open_breaker = action {
      title = "Open the circuit breaker (serve the fallback)",
      run = function(ctx)
        return set_breaker(ctx, true)
      end,
      next = "identified",
      on_error = "breaker_failed",
    },

    identified = notify {
      title = "Status: identified, fallback on",
      phase = "Identified",
      message = update(function(ctx) return ctx.dependency .. " is down; we serve a fallback" end,
        function(ctx) return "Circuit breaker " .. ctx.breaker_flag .. " is open; " .. ctx.dependency .. "'s owners are paged." end),
      next = "page_dependency_owner",
    },

    page_dependency_owner = escalate {
      title = "Page the dependency's owner",
      to = function(ctx) return ctx.dependency_owner end,
      message = function(ctx)
        return ctx.dependency .. " is failing calls from " .. ctx.service .. "; its circuit breaker is open."
      end,
      next = "watch",
    },

    watch = wait {
      title = "Dependency healthy again within 30 minutes?",
      until_ = function(ctx)
        return healthy(ctx) and upstream_errors(ctx) < ctx.recovered_threshold
      end,
      every = "30s",
      timeout = "30m",
      on = { [true] = "close_breaker", [false] = "still_down" },
    },

    close_breaker = action {
      title = "Close the circuit breaker",
      approval = { required = true },
      run = function(ctx)
        return set_breaker(ctx, false)
      end,
      next = "monitoring",
      on_error = "breaker_failed",
    },

    monitoring = notify {
      title = "Status: dependency back, monitoring",
      phase = "Monitoring",
      message = update(function(ctx) return ctx.dependency .. " has recovered; normal service is restored" end,
        "The circuit breaker is closed; watching for a relapse."),
      next = "stays_up",
    },

    stays_up = wait {
      title = "Calls keep succeeding with the breaker closed?",
      until_ = function(ctx)
        local rate = upstream_errors(ctx)
        return rate < ctx.recovered_threshold, string.format("%.1f%% failing", rate * 100)
      end,
      every = "30s",
      timeout = "5m",
      on = { [true] = "all_clear", [false] = "reopen_breaker" },
    },

    all_clear = notify {
      title = "Status: resolved",
      phase = "Resolved",
      message = update(function(ctx) return ctx.dependency .. " and " .. ctx.service .. " are healthy" end,
        "None; a postmortem follows."),
      impact = "None now.",
      next = "done",
    },

    done = resolved { title = "Dependency back, breaker closed" },

    reopen_breaker = action {
      title = "Relapse: open the circuit breaker again",
      run = function(ctx)
        return set_breaker(ctx, true)
      end,
      next = "relapse",
      on_error = "breaker_failed",
    },

    relapse = escalate {
      title = "Dependency relapsed: escalate to the owner",
      to = function(ctx) return ctx.owner end,
      message = function(ctx)
        return ctx.dependency .. " failed again after recovering; the breaker is open again."
      end,
    },

    still_down = notify {
      title = "Status: still down, fallback stays on",
      phase = "Identified",
      message = update(function(ctx) return ctx.dependency .. " has not recovered after 30 minutes" end,
        "The fallback stays on while its owners work on it."),
      next = "long_outage",
    },

    long_outage = escalate {
      title = "Long outage: escalate to the owner",
      to = function(ctx) return ctx.owner end,
      message = function(ctx)
        return ctx.dependency .. " is still down after 30 minutes; decide on a longer-term workaround."
      end,
    },

    breaker_failed = escalate {
      title = "Breaker flag could not be set: escalate to the owner",
      to = function(ctx) return ctx.owner end,
      message = function(ctx)
        return "Setting " .. ctx.breaker_flag .. " failed; set it by hand and see the timeline."
      end,
    },

    not_down = escalate {
      title = "Dependency looks healthy: hand back to the owner",
      to = function(ctx) return ctx.owner end,
      message = "Status page, health endpoint and error rate all say the dependency is up; "
        .. "this runbook does not apply.",
    },
  },
}
