-- notify.lua: incident status updates (Investigating, Identified, Monitoring,
-- Resolved) to Slack incoming webhooks and generic webhooks from [notify.*].
local http = require "http"
local config = require "config"
local strict = require("json").strict
local rb = require "stdrb"

local M = {}

local PHASES = { Investigating = true, Identified = true, Monitoring = true, Resolved = true }

local fail = rb.fail

local function list(v)
  if v == nil then return nil end
  if type(v) == "table" then
    local t = {}
    for i, x in ipairs(v) do t[i] = tostring(x) end
    return t
  end
  return { tostring(v) }
end

local function channels(want)
  local all = config.sections("notify.")
  if want == nil then
    if #all == 0 then fail("notify: no [notify.NAME] section in the config") end
    return all
  end
  local out = {}
  for _, w in ipairs(list(want)) do out[#out + 1] = rb.section("notify", w) end
  return out
end

local function slack_text(u)
  local lines = { string.format("*[%s]* %s", u.phase, u.title or "Incident update") }
  if u.impact then lines[#lines + 1] = "*Impact:* " .. u.impact end
  if u.actions then
    lines[#lines + 1] = "*Actions:*"
    for _, a in ipairs(u.actions) do lines[#lines + 1] = "• " .. a end
  end
  if u.next_update then lines[#lines + 1] = "*Next update:* " .. u.next_update end
  return table.concat(lines, "\n")
end

--- notify.post{ phase=, impact=, actions=, next_update=, title=, channel= }:
-- posts one status update to the channel(s) named (default: every
-- [notify.*] section). Returns { sent = { sections }, simulated = bool }.
function M.post(u)
  if type(u) ~= "table" then error("notify.post: expects a table", 2) end
  rb.options(u, "notify.post", { "actions", "channel", "impact", "next_update", "phase", "title" })
  if not PHASES[u.phase] then
    error("notify.post: phase must be Investigating, Identified, Monitoring or Resolved (got "
      .. tostring(u.phase) .. ")", 2)
  end
  local update = { phase = u.phase, title = u.title, impact = u.impact,
    actions = list(u.actions), next_update = u.next_update }
  local res = { sent = {}, simulated = false }
  for _, section in ipairs(channels(u.channel)) do
    local kind = config.get(section, "type")
    local body
    if kind == "slack" then
      body = { text = slack_text(update) }
      local ch = config.get(section, "channel")
      if ch then body.channel = ch end
    elseif kind == "webhook" then
      body = { phase = update.phase, title = update.title, impact = update.impact,
        actions = update.actions, next_update = update.next_update,
        channel = config.get(section, "channel") }
    else
      fail("notify: [%s] type must be slack or webhook (got %s)", section, kind)
    end
    local r = http.request { method = "POST", url_secret = { section = section, key = "url" },
      json = body, allow_fail = true }
    if not r.simulated and r.status >= 300 then
      fail("notify %s: POST [%s url]: HTTP %d: %s", section, section, r.status,
        (r.body or ""):sub(1, 200))
    end
    res.simulated = res.simulated or r.simulated or false
    res.sent[#res.sent + 1] = section
  end
  return strict(res, "notify.post")
end

return M
