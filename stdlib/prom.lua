-- prom.lua: Prometheus HTTP API queries for checks and waits: instant
-- values, labelled series and range queries, with Prometheus's own errors.
local http = require "http"
local config = require "config"
local rb = require "stdrb"
local drill = require "drill"

local M = {}

-- Seconds in "500ms", "15s", "5m", "2h", "1d" or a bare number of seconds.
local function seconds(v, what) return rb.seconds(v, "prom", what) end

-- Prometheus writes sample values as strings, NaN and +Inf included.
local function number(s)
  if s == "NaN" then return 0 / 0 end
  if s == "+Inf" then return math.huge end
  if s == "-Inf" then return -math.huge end
  return tonumber(s)
end

local function base_url(opts)
  local url = opts.url or config.get("prom", "url")
  if url == nil or url == "" then
    error("prom: no Prometheus URL: set url in the [prom] section of the config", 6)
  end
  return (url:gsub("/+$", ""))
end

-- A successful answer can still carry warnings (a remote_read endpoint that
-- failed, so the result may be partial): each goes on the step's timeline as
-- a note and back to the caller as a list of strings, never dropped.
local function warnings_of(j, expr, path)
  local w = j.warnings
  if type(w) ~= "table" or #w == 0 then return nil end
  local list = {}
  for i, x in ipairs(w) do list[i] = tostring(x) end
  http.note { op = "prom", query = expr, api = path, warnings = list }
  return list
end

-- GET path with params; returns the data member of a successful answer and
-- its warnings (nil when there are none).
local function api(path, params, expr, opts)
  local r = http.request {
    method = "GET",
    url = base_url(opts) .. path,
    query = params,
    allow_fail = true,
    timeout = opts.timeout,
    auth = { section = "prom", key = "token", scheme = "Bearer", optional = true },
  }
  local j = r.json
  if type(j) ~= "table" or j.status == nil then
    error(string.format("prom: query %q: HTTP %d from %s, not a Prometheus API answer: %s",
      expr, r.status, path, (r.body or ""):sub(1, 200)), 5)
  end
  if j.status ~= "success" then
    error(string.format("prom: query %q failed: %s: %s", expr,
      tostring(j.errorType or "error"), tostring(j.error or "no message")), 5)
  end
  return j.data, warnings_of(j, expr, path)
end

local function labels(metric)
  local t = {}
  for k, v in pairs(metric or {}) do t[k] = v end
  return t
end

local function series_list(result, matrix)
  local out = {}
  for i, s in ipairs(result) do
    if matrix then
      local values = {}
      for j, p in ipairs(s.values or {}) do values[j] = { time = p[1], value = number(p[2]) } end
      out[i] = { labels = labels(s.metric), values = values }
    else
      out[i] = { labels = labels(s.metric), value = number(s.value[2]), time = s.value[1] }
    end
  end
  return out
end

-- A drill's call-level answer for an instant query, or nil outside drills:
-- { value = n } or { vector = series } as a live answer would be read, or
-- the recorded failure raised as it was. A query no answer covers raises.
local function answered(expr)
  local a = drill.answer("prom", { query = expr })
  if a == nil then return nil end
  if a.fail ~= nil then error(a.fail, 0) end
  if a.vector == nil then return { value = number(a.value) or a.value, time = a.time } end
  local out = {}
  for i, s in ipairs(a.vector) do
    out[i] = { labels = labels(s.labels), value = number(s.value) or s.value, time = s.time }
  end
  return { vector = out }
end

-- A sample as JSON holds it: Prometheus's own strings for what is not finite.
local function plain(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  return v
end

-- What a recording keeps of an instant answer: what the caller sees, a
-- number as a value (a scalar, or a one-sample vector read as its number),
-- a list of series as a vector, series by series with labels and times.
local function record_instant(expr, rt, res, as_list)
  if rt == "scalar" then
    drill.record("prom", { query = expr }, { value = plain(number(res[2])) })
  elseif rt == "vector" and #res == 1 and not as_list then
    drill.record("prom", { query = expr }, { value = plain(number(res[1].value[2])) })
  elseif rt == "vector" then
    local vec = {}
    for i, s in ipairs(res) do
      vec[i] = { labels = labels(s.metric), value = plain(number(s.value[2])),
        time = s.value[1] }
    end
    drill.record("prom", { query = expr }, { vector = vec })
  end
end

-- The instant query's data, its own HTTP request kept out of a recording
-- dry-run, which keeps the answer (or the failure, raised again) instead.
local function instant(expr, opts, as_list)
  drill.hold(true)
  local ok, data, warn = pcall(api, "/api/v1/query", { query = expr, time = opts.time },
    expr, opts)
  drill.hold(false)
  if not ok then
    drill.record("prom", { query = expr }, { fail = tostring(data) })
    error(data, 0)
  end
  record_instant(expr, data.resultType, data.result, as_list)
  return data, warn
end

-- The range query's data, its HTTP request not recorded (nor is the answer).
local function held(path, params, expr, opts)
  drill.hold(true)
  local ok, data, warn = pcall(api, path, params, expr, opts)
  drill.hold(false)
  if not ok then error(data, 0) end
  return data, warn
end

--- prom.query(expr [, opts]): instant query. A scalar or a one-sample vector
-- gives a bare number (the sample's labels are dropped); with
-- opts.series = true a vector is always a list, so one sample keeps its
-- labels. Otherwise a list of { labels = {...}, value = n, time = t }.
-- opts: time (unix seconds), timeout, url, series. Second result: the
-- answer's warnings (a list of strings, also noted on the timeline) or nil.
function M.query(expr, opts)
  if type(expr) ~= "string" then error("prom.query: expr must be a string", 2) end
  opts = rb.options(opts, "prom.query", { "series", "time", "timeout", "url" })
  local a = answered(expr)
  if a ~= nil and a.vector == nil then
    if opts.series then return { { labels = {}, value = a.value, time = a.time } } end
    return a.value
  end
  if a ~= nil then
    if #a.vector == 1 and not opts.series then return a.vector[1].value end
    return a.vector
  end
  local data, warn = instant(expr, opts, opts.series)
  local rt, res = data.resultType, data.result
  if rt == "scalar" then return number(res[2]), warn end
  if rt == "string" then return res[2], warn end
  if rt == "vector" and #res == 1 and not opts.series then
    return number(res[1].value[2]), warn
  end
  return series_list(res, rt == "matrix"), warn
end

local function too_many(expr, n)
  error(string.format("prom.value: query %q returned %d series, want exactly 1", expr, n), 3)
end

--- prom.value(expr [, opts]): exactly one number, or an error saying why not.
-- A one-sample vector gives its value without its labels (use prom.query
-- with series = true to see them). Second result: warnings, as prom.query.
function M.value(expr, opts)
  if type(expr) ~= "string" then error("prom.value: expr must be a string", 2) end
  opts = rb.options(opts, "prom.value", { "time", "timeout", "url" })
  local a = answered(expr)
  if a ~= nil and a.vector == nil then return a.value end
  if a ~= nil then
    if #a.vector ~= 1 then too_many(expr, #a.vector) end
    return a.vector[1].value
  end
  local data, warn = instant(expr, opts)
  local rt, res = data.resultType, data.result
  if rt == "scalar" then return number(res[2]), warn end
  if rt == "vector" then
    if #res == 1 then return number(res[1].value[2]), warn end
    too_many(expr, #res)
  end
  error(string.format("prom.value: query %q returned a %s, want a number", expr, tostring(rt)), 2)
end

--- prom.range(expr, { start=, end_=, step= }): a range query. start and
-- end_ are unix seconds, or durations back from now ("15m"); end_ defaults
-- to now, start to one hour before it, step to 15s. Returns a list of
-- { labels = {...}, values = { { time = t, value = n }, ... } }, and the
-- answer's warnings as prom.query.
function M.range(expr, opts)
  if type(expr) ~= "string" then error("prom.range: expr must be a string", 2) end
  opts = rb.options(opts, "prom.range", { "end_", "start", "step", "timeout", "url" })
  local now = os.time()
  local function when(v, def, what)
    if v == nil then return def end
    if type(v) == "number" and v > 1e9 then return v end
    return now - seconds(v, what)
  end
  local finish = when(opts.end_, now, "end_")
  local start = when(opts.start, finish - 3600, "start")
  local step = seconds(opts.step or "15s", "step")
  if start > finish then error("prom.range: start is after end_", 2) end
  local data, warn = held("/api/v1/query_range",
    { query = expr, start = start, ["end"] = finish, step = step }, expr, opts)
  return series_list(data.result or {}, true), warn
end

return M
