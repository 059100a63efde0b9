-- flags.lua: feature flags on and off through their providers' HTTP APIs
-- (Unleash, LaunchDarkly, Flagsmith, generic), state before and after noted.
local http = require "http"
local config = require "config"
local strict = require("json").strict
local rb = require "stdrb"
local drill = require "drill"

local M = {}

local function esc(s) return http.urlencode(s) end -- http loads on first use

local fail = rb.fail

-- The [flags.NAME] section for opts.provider ("unleash" or "flags.unleash"),
-- or the only flags section there is.
local function section_for(opts)
  return rb.section("flags", opts.provider, { option = "provider", noun = "providers" })
end

local function need(section, key)
  local v = config.get(section, key)
  if v == nil or v == "" then fail("flags: [%s] needs %s", section, key) end
  return v
end

local function base(section, default)
  local u = config.get(section, "url") or default
  if u == nil then fail("flags: [%s] needs url", section) end
  return (u:gsub("/+$", ""))
end

-- Walks "a.b.1.c" into a decoded JSON value.
local function at_path(v, path)
  for part in path:gmatch("[^%.]+") do
    if type(v) ~= "table" then return nil end
    local i = tonumber(part)
    if i ~= nil and v[i] ~= nil then v = v[i] else v = v[part] end
  end
  return v
end

local function truthy(v)
  if type(v) == "boolean" then return v end
  if v == "on" or v == "true" or v == 1 or v == "enabled" then return true end
  if v == "off" or v == "false" or v == 0 or v == "disabled" then return false end
  return nil
end

local function req(p, t)
  t.auth = t.auth or p.auth
  t.allow_fail = true
  local r = http.request(t)
  if r.simulated then return r end
  if r.status >= 400 then
    local detail = r.json and (r.json.message or r.json.error or r.json.detail)
    if type(detail) ~= "string" then detail = (r.body or ""):sub(1, 200) end
    fail("flags %s: %s %s: HTTP %d: %s", p.kind, t.method, p.what, r.status, detail)
  end
  return r
end

local providers = {}

providers.unleash = {
  auth = function(s) return { section = s, key = "token", header = "Authorization", scheme = "" } end,
  get = function(p, name)
    local r = req(p, { method = "GET", url = string.format("%s/api/admin/projects/%s/features/%s",
      p.url, esc(p.project), esc(name)) })
    for _, e in ipairs((r.json or {}).environments or {}) do
      if e.name == p.env then return e.enabled end
    end
    fail("flags unleash: flag %s has no environment %s", name, p.env)
  end,
  set = function(p, name, on)
    return req(p, { method = "POST", retry_non_idempotent = true,
      url = string.format("%s/api/admin/projects/%s/features/%s/environments/%s/%s", p.url,
        esc(p.project), esc(name), esc(p.env), on and "on" or "off") })
  end,
}

providers.launchdarkly = {
  auth = function(s) return { section = s, key = "token", header = "Authorization", scheme = "" } end,
  get = function(p, name)
    local r = req(p, { method = "GET", query = { env = p.env },
      url = string.format("%s/api/v2/flags/%s/%s", p.url, esc(p.project), esc(name)) })
    local e = ((r.json or {}).environments or {})[p.env]
    if e == nil then fail("flags launchdarkly: flag %s has no environment %s", name, p.env) end
    return e.on
  end,
  set = function(p, name, on)
    return req(p, { method = "PATCH", retry_non_idempotent = true,
      url = string.format("%s/api/v2/flags/%s/%s", p.url, esc(p.project), esc(name)),
      headers = { ["Content-Type"] = "application/json; domain-model=launchdarkly.semanticpatch" },
      json = { environmentKey = p.env,
        instructions = { { kind = on and "turnFlagOn" or "turnFlagOff" } } } })
  end,
}

-- Flagsmith: environment is the environment's key; the feature state is
-- found by feature name, then patched by id. The id found by the read that
-- flags.set makes first is kept on p, so the change needs no second lookup.
local function flagsmith_state(p, name)
  local r = req(p, { method = "GET", query = { feature_name = name },
    url = string.format("%s/api/v1/environments/%s/featurestates/", p.url, esc(p.env)) })
  local results = (r.json or {}).results or {}
  for _, fs in ipairs(results) do
    -- segment overrides and identity overrides are not the environment's state
    if fs.feature_segment == nil and fs.identity == nil then
      p.state_ids = p.state_ids or {}
      p.state_ids[name] = fs.id
      return fs
    end
  end
  fail("flags flagsmith: no feature state for %s in environment %s", name, p.env)
end

providers.flagsmith = {
  auth = function(s) return { section = s, key = "token", scheme = "Api-Key" } end,
  get = function(p, name) return flagsmith_state(p, name).enabled end,
  set = function(p, name, on)
    local id = p.state_ids and p.state_ids[name]
    local fs = id ~= nil and { id = id } or flagsmith_state(p, name)
    return req(p, { method = "PATCH", retry_non_idempotent = true,
      url = string.format("%s/api/v1/environments/%s/featurestates/%s/", p.url, esc(p.env),
        esc(tostring(fs.id))),
      json = { enabled = on } })
  end,
}

local function fill(template, vars, escape)
  return (template:gsub("{(%w+)}", function(k)
    local v = vars[k]
    if v == nil then return nil end
    return escape and esc(tostring(v)) or tostring(v)
  end))
end

providers.generic = {
  auth = function(s) return { section = s, key = "token", scheme = "Bearer", optional = true } end,
  get = function(p, name)
    local tmpl = need(p.section, "get_url")
    local r = req(p, { method = "GET", url = fill(tmpl, p.vars(name), true) })
    local path = config.get(p.section, "state_path")
    local v = truthy(at_path(r.json, path))
    if v == nil then fail("flags generic: %s of the answer is not a flag state", path) end
    return v
  end,
  set = function(p, name, on)
    local vars = p.vars(name, on)
    local body = config.get(p.section, "set_body")
    local t = { method = config.get(p.section, "set_method"):upper(),
      url = fill(need(p.section, "set_url"), vars, true) }
    if body ~= nil then
      t.body = fill(body, vars, false)
      t.headers = { ["Content-Type"] = "application/json" }
    end
    return req(p, t)
  end,
}

local function provider(opts)
  opts = opts or {}
  if type(opts) ~= "table" then fail("flags: options must be a table") end
  local section = section_for(opts)
  local kind = config.get(section, "provider") or section:match("^flags%.(.*)$")
  local impl = providers[kind]
  if impl == nil then
    fail("flags: [%s] provider = %s is not one of unleash, launchdarkly, flagsmith, generic",
      section, tostring(kind))
  end
  local p = { section = section, kind = kind, impl = impl, auth = impl.auth(section) }
  p.url = base(section, kind == "launchdarkly" and "https://app.launchdarkly.com"
    or kind == "flagsmith" and "https://api.flagsmith.com" or nil)
  p.env = opts.environment or config.get(section, "environment")
  p.project = opts.project or config.get(section, "project")
  if p.env == nil and kind ~= "generic" then fail("flags: [%s] needs environment", section) end
  p.what = section
  p.vars = function(name, on)
    return { name = name, environment = p.env, project = p.project,
      on = on == nil and "" or tostring(on), state = on == nil and "" or (on and "on" or "off") }
  end
  return p
end


local function word(v)
  if v == true then return "on" elseif v == false then return "off" end
  return "unknown"
end

--- flags.get(name [, opts]): true when the flag is on in the environment.
function M.get(name, opts)
  if type(name) ~= "string" or name == "" then error("flags.get: name must be a string", 2) end
  opts = rb.options(opts, "flags.get", { "environment", "project", "provider" })
  local a = drill.answer("flags", { op = "get", flag = name })
  if a then
    if a.fail then fail("flags.get %s: %s", name, a.fail) end
    return a.state
  end
  -- A recording dry-run keeps the state, not the provider's HTTP; a failed
  -- read (provider down, HTTP error, no config) is kept as its failure.
  drill.hold(true)
  local ok, v = pcall(function()
    local p = provider(opts)
    return p.impl.get(p, name)
  end)
  drill.hold(false)
  if not ok then
    drill.record("flags", { op = "get", flag = name }, { fail = tostring(v) })
    error(v, 0)
  end
  drill.record("flags", { op = "get", flag = name }, { state = v })
  return v
end

-- A drill whose scenario answers flags: the state before from an op = "get"
-- answer (if any), the change recorded as would_run, and an op = "set"
-- answer's fail raised, so the runbook's on_error runs. No config needed.
local function drill_set(name, on, opts)
  local env = type(opts) == "table" and opts.environment or nil
  local b = drill.answer("flags", { op = "get", flag = name, optional = true })
  local before = b and b.state
  drill.would_run { op = "flags", flag = name, environment = env, before = before,
    wanted = on, answered_by = "scenario", title = string.format("flags.set %s %s%s", name,
      word(on), env and (" in " .. tostring(env)) or "") }
  local a = drill.answer("flags", { op = "set", flag = name, optional = true })
  if a and a.fail then fail("flags.set %s: %s", name, a.fail) end
  http.note { op = "flags", flag = name, environment = env, before = before, wanted = on,
    simulated = true, message = string.format("%s: %s -> %s, %s (not sent: drill)", name,
      word(before), word(on), tostring(env)) }
  return strict({ flag = name, environment = env, provider = "drill", before = before,
    wanted = on, simulated = true }, "flags.set", "before after changed environment")
end

--- flags.set(name, on [, opts]): turns the flag on or off. Reads the state
-- before and after; the timeline says "name: on -> off, environment".
-- Returns { flag, environment, provider, before, after, changed, simulated }.
function M.set(name, on, opts)
  if type(name) ~= "string" or name == "" then error("flags.set: name must be a string", 2) end
  if type(on) ~= "boolean" then error("flags.set: on must be true or false", 2) end
  opts = rb.options(opts, "flags.set", { "environment", "project", "provider" })
  if drill.answers("flags") then return drill_set(name, on, opts) end
  local p = provider(opts)
  -- The kill switch matters more than knowing the old state: a failed read
  -- is noted and the change is still made.
  drill.hold(true)
  local ok, before = pcall(p.impl.get, p, name)
  drill.hold(false)
  local before_err = not ok and tostring(before) or nil
  if not ok then before = nil end
  drill.record("flags", { op = "get", flag = name },
    ok and { state = before } or { fail = before_err })
  local r = p.impl.set(p, name, on)
  local res = { flag = name, environment = p.env, provider = p.section, before = before,
    wanted = on, simulated = r.simulated or false }
  local msg
  if r.simulated then
    msg = string.format("%s: %s -> %s, %s (not sent: %s)", name, word(before), word(on),
      tostring(p.env), "dry run")
  else
    res.after = p.impl.get(p, name)
    res.changed = before ~= res.after
    msg = string.format("%s: %s -> %s, %s", name, word(before), word(res.after), tostring(p.env))
    if res.after ~= on then
      http.note { op = "flags", flag = name, environment = p.env, before = before,
        after = res.after, message = msg .. " (expected " .. word(on) .. ")" }
      fail("flags %s: %s is still %s in %s after turning it %s", p.kind, name,
        word(res.after), tostring(p.env), word(on))
    end
  end
  http.note { op = "flags", provider = p.section, flag = name, environment = p.env,
    before = before, after = res.after, wanted = on, simulated = res.simulated,
    before_error = before_err, message = msg }
  return strict(res, "flags.set", "before after changed")
end

return M
