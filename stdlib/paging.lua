-- paging.lua: the requests an escalate step sends to its [escalation.NAME]
-- target (PagerDuty Events v2, Opsgenie Alert API, Slack, our webhook), as
-- writes through the http module; the executor calls send (runner/escalation.c).
local http = require "http"
local config = require "config"
local strict = require("json").strict

local M = {}

-- sev1 .. sev5: PagerDuty's four severities and Opsgenie's five priorities.
local PD_SEVERITY = { sev1 = "critical", sev2 = "error", sev3 = "warning", sev4 = "info",
  sev5 = "info" }

local function severity(section, a)
  local s = config.get(section, "severity") or a.severity
  if PD_SEVERITY[s] == nil then s = "sev1" end -- an unknown runbook severity pages loudly
  return s
end

local function cut(s, n)
  if #s <= n then return s end
  return s:sub(1, n - 3) .. "..."
end

local function details(a)
  return { runbook = a.runbook, run = a.run, step = a.step, reason = a.reason,
    incident = a.incident, target = a.target }
end

local function pagerduty(section, a)
  local url = config.get(section, "url") or "https://events.pagerduty.com/v2/enqueue"
  local body = { event_action = a.event, dedup_key = a.dedup_key }
  if a.event == "trigger" then
    body.payload = { summary = cut(a.summary, 1024), source = config.get(section, "source"),
      severity = PD_SEVERITY[severity(section, a)], custom_details = details(a) }
    body.client = "runbook"
  end
  -- PagerDuty deduplicates on dedup_key: a retried trigger or resolve is harmless.
  return { method = "POST", url = url, json = body, retry_non_idempotent = true,
    json_secret = { field = "routing_key", section = section, key = "routing_key" } }
end

local function opsgenie(section, a)
  local url = config.get(section, "url") or "https://api.opsgenie.com/v2/alerts"
  local auth = { section = section, key = "api_key", scheme = "GenieKey" }
  if a.event == "resolve" then
    return { method = "POST", url = url .. "/" .. http.urlencode(a.dedup_key) .. "/close",
      query = { identifierType = "alias" }, auth = auth, retry_non_idempotent = true,
      json = { source = config.get(section, "source"),
        note = "The run " .. a.run .. " of " .. a.runbook .. " ended resolved." } }
  end
  local s = severity(section, a)
  local body = { message = cut(a.summary, 130), alias = a.dedup_key,
    description = cut(a.reason .. "\n\nRunbook " .. a.runbook .. ", incident " .. a.incident
      .. ", run " .. a.run .. ", step " .. a.step .. ".", 15000),
    priority = "P" .. s:sub(4), source = config.get(section, "source"), details = details(a) }
  local team = config.get(section, "team")
  if team then body.responders = { { type = "team", name = team } } end
  -- Opsgenie deduplicates open alerts on alias.
  return { method = "POST", url = url, auth = auth, json = body, retry_non_idempotent = true }
end

local function slack_text(a)
  if a.event == "resolve" then
    return string.format(":white_check_mark: *Resolved*: incident %s (%s, run %s) ended "
      .. "resolved; the escalation to %s is over.", a.incident, a.runbook, a.run, a.target)
  end
  return string.format(":rotating_light: *Escalated to %s*: %s\nRunbook %s, incident %s, "
    .. "run %s, step %s.", a.target, a.summary, a.runbook, a.incident, a.run, a.step)
end

local function slack(section, a)
  local body = { text = slack_text(a) }
  if config.get(section, "channel") == nil then
    return { method = "POST", url_secret = { section = section, key = "webhook_url" },
      json = body }
  end
  body.channel = config.get(section, "channel")
  if a.ref then body.thread_ts = a.ref end -- the resolve answers the page in its thread
  return { method = "POST",
    url = config.get(section, "url") or "https://slack.com/api/chat.postMessage",
    headers = { ["Content-Type"] = "application/json; charset=utf-8" },
    auth = { section = section, key = "bot_token" }, json = body }
end

local function webhook(section, a)
  local body = { version = 1, event = a.event, dedup_key = a.dedup_key, target = a.target,
    incident = a.incident, runbook = a.runbook, run = a.run, step = a.step }
  if a.event == "trigger" then
    body.summary = a.summary
    body.reason = a.reason
    body.severity = severity(section, a)
  end
  local req = { method = "POST", url = config.get(section, "url"), json = body }
  if a.has_token then req.auth = { section = section, key = "token" } end
  return req
end

local BUILD = { pagerduty = pagerduty, opsgenie = opsgenie, slack = slack, webhook = webhook }

-- What the answer says beyond its status: Slack's Web API answers errors
-- with 200 and {ok = false}; a bot's message ts threads the resolve.
local function judge(kind, r, res)
  if r.status < 200 or r.status > 299 then
    res.error = string.format("HTTP %d: %s", r.status, (r.body or ""):sub(1, 200))
    return
  end
  if kind == "slack" and type(r.json) == "table" then
    if r.json.ok == false then
      res.error = "slack: " .. tostring(r.json.error)
      return
    end
    res.ref = r.json.ts
  end
  res.ok = true
end

--- send{ target=, section=, event="trigger"|"resolve", dedup_key=, summary=,
-- reason=, severity=, runbook=, run=, step=, incident=, ref=, has_token= }: one request
-- to the target. Never raises for a failed page: returns { ok, kind, status,
-- simulated, error?, ref? } so that the executor can say loudly that nobody
-- was paged.
function M.send(a)
  local kind = config.get(a.section, "kind")
  local build = BUILD[kind]
  if build == nil then error("paging: [" .. a.section .. "] has no known kind", 0) end
  local req = build(a.section, a)
  req.allow_fail = true
  local res = { ok = false, kind = kind, simulated = false, status = 0 }
  local ok, r = pcall(http.request, req)
  if not ok then
    res.error = tostring(r)
  elseif r.simulated then
    res.ok, res.simulated = true, true
  else
    res.status = r.status
    judge(kind, r, res)
  end
  return strict(res, "paging.send", "error ref")
end

return M
