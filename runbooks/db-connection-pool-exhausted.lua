-- db-connection-pool-exhausted.lua: an application out of database
-- connections. Ends long-running queries that hold them, rolls back a deploy
-- that leaks them, else restarts the app in batches; pages the DBAs.
--
-- Severity sev2. Owner: the application's on-call (`owner`). Escalation: the
-- database team (`dba`), who are paged whenever connections had to be freed
-- by force, and again when the pool stays saturated.
local deploy = require "deploy"
local prom = require "prom"
local ssh = require "ssh"

local SATURATION = 'max(db_pool_in_use{service="%s"} / db_pool_size{service="%s"})'
-- Queries of the application's database user running longer than N seconds.
local LONG_QUERIES = 'sum(pg_stat_activity_max_tx_duration{datname="%s",usename="%s"} > bool %d)'
local TERMINATE = "sudo -u postgres psql -d %s -Atc \"SELECT count(pg_terminate_backend(pid)) "
  .. "FROM pg_stat_activity WHERE usename = '%s' AND state <> 'idle' "
  .. "AND now() - query_start > interval '%d seconds'\""

local function update(status, actions)
  return function(ctx)
    local s = type(status) == "function" and status(ctx) or status
    return string.format("Current status: %s\nImpact: %s\nActions: %s\nNext update in %d minutes.",
      s, ctx.impact, actions, ctx.update_minutes)
  end
end

local function saturation(ctx)
  return prom.value(string.format(SATURATION, ctx.service, ctx.service))
end

return runbook {
  name = "db-connection-pool-exhausted",
  title = "Database connection pool exhausted",
  severity = "sev2",
  description = "Severity sev2, owned by the application's on-call; the database team is "
    .. "paged when connections are freed by force or the pool stays saturated. "
    .. "Checks saturation, ends long-running queries, rolls back a deploy that leaks "
    .. "connections, else restarts the application in batches.",
  params = {
    service = { required = true, pattern = "[a-z][a-z0-9-]*",
      description = "application whose pool is exhausted (metrics label, deploy name)" },
    hosts = { default = "app", description = "inventory group that runs the application" },
    db_host = { default = "db-primary", description = "inventory host of the primary database" },
    database = { default = "app", pattern = "[a-z_][a-z0-9_]*" },
    db_user = { default = "app", pattern = "[a-z_][a-z0-9_]*",
      description = "the application's database role" },
    owner = { default = "app-oncall", description = "who owns this incident" },
    dba = { default = "dba-team", description = "the database team's pager" },
    pool_threshold = { type = "number", default = 0.9,
      description = "share of the pool in use (0..1) that counts as exhausted" },
    long_query_seconds = { type = "integer", default = 300,
      description = "a query running longer than this holds its connection too long" },
    deploy_window = { type = "duration", default = "6h",
      description = "leaks show up hours after the deploy that brought them" },
    restart_batch = { default = "25%", description = "hosts restarted at a time" },
    impact = { default = "Requests that need the database fail or time out.",
      description = "the Impact line of status updates" },
    update_minutes = { type = "integer", default = 30 },
  },
  start = "announce",
  steps = {
    announce = notify {
      title = "Status: investigating",
      phase = "Investigating",
      message = update(function(ctx) return ctx.service .. " is running out of database connections" end,
        "On-call is looking for long-running queries and connection leaks."),
      next = "pool_saturated",
    },

    pool_saturated = check {
      title = "Pool saturated?",
      run = function(ctx)
        ctx.saturation = saturation(ctx)
        return ctx.saturation > ctx.pool_threshold
      end,
      on = { [true] = "long_queries", [false] = "not_the_pool" },
      on_error = "not_the_pool",
    },

    long_queries = check {
      title = "Long-running queries holding connections?",
      run = function(ctx)
        return prom.value(string.format(LONG_QUERIES, ctx.database, ctx.db_user,
          ctx.long_query_seconds)) > 0
      end,
      on = { [true] = "kill_long_queries", [false] = "recent_deploy" },
      on_error = "recent_deploy",
    },

    kill_long_queries = action {
      title = "End the long-running queries",
      approval = { required = true },
      run = function(ctx)
        return ssh.run(ctx.db_host, string.format(TERMINATE, ctx.database, ctx.db_user,
          ctx.long_query_seconds))
      end,
      next = "identified_queries",
      on_error = "restart",
    },

    identified_queries = notify {
      title = "Status: identified, long-running queries ended",
      phase = "Identified",
      message = update("Long-running queries held the connections",
        "They were ended; the database team will look at why they ran so long."),
      next = "page_dba",
    },

    recent_deploy = check {
      title = "Deploy shortly before it started (a connection leak)?",
      run = function(ctx)
        local d = deploy.recent(ctx.service, { within = ctx.deploy_window })
        ctx.deploy = d and (d.revision or d.id) or nil
        return d ~= nil
      end,
      on = { [true] = "rollback", [false] = "restart" },
      on_error = "restart",
    },

    rollback = action {
      title = "Roll back the deploy that leaks connections",
      approval = { required = true },
      run = function(ctx)
        return deploy.rollback(ctx.service)
      end,
      next = "identified_leak",
      on_error = "restart",
    },

    identified_leak = notify {
      title = "Status: identified, leaking release rolled back",
      phase = "Identified",
      message = update(function(ctx)
        return "Release " .. tostring(ctx.deploy) .. " of " .. ctx.service .. " leaked connections"
      end, "It was rolled back; the new pods start with an empty pool."),
      next = "verify",
    },

    restart = action {
      title = "Restart the application in batches",
      approval = { required = true },
      run = function(ctx)
        return ssh.run(ctx.hosts, "sudo systemctl restart " .. ctx.service,
          { batch = ctx.restart_batch, max_fail = 0 })
      end,
      next = "page_dba",
      on_error = "page_dba_unresolved",
    },

    page_dba = escalate {
      title = "Page the database team",
      to = function(ctx) return ctx.dba end,
      message = function(ctx)
        return ctx.service .. "'s connection pool was exhausted and connections were freed by force."
      end,
      next = "verify",
    },

    verify = wait {
      title = "Pool back under the threshold?",
      until_ = function(ctx)
        local used = saturation(ctx)
        return used < ctx.pool_threshold, string.format("%.0f%% of the pool", used * 100)
      end,
      every = "15s",
      timeout = "5m",
      on = { [true] = "monitoring", [false] = "page_dba_unresolved" },
    },

    monitoring = notify {
      title = "Status: mitigated, monitoring",
      phase = "Monitoring",
      message = update("Connections are available again",
        "Watching the pool for a relapse."),
      next = "all_clear",
    },

    all_clear = notify {
      title = "Status: resolved",
      phase = "Resolved",
      message = update(function(ctx) return ctx.service .. " has database connections to spare" end,
        "None; a postmortem follows."),
      impact = "None now.",
      next = "done",
    },

    done = resolved { title = "Pool back to normal" },

    not_the_pool = escalate {
      title = "Pool not saturated (or unreadable): hand back to the owner",
      to = function(ctx) return ctx.owner end,
      message = "The connection pool is not saturated or its metrics cannot be read; "
        .. "this runbook does not apply.",
    },

    page_dba_unresolved = escalate {
      title = "Pool still exhausted: page the database team",
      to = function(ctx) return ctx.dba end,
      message = function(ctx)
        return ctx.service .. "'s pool is still exhausted after ending queries or restarting."
      end,
    },
  },
}
