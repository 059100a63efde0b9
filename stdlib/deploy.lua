-- deploy.lua: what was deployed recently (a git log, or Kubernetes ReplicaSet
-- revisions), and the Kubernetes `rollout undo` / `rollout status` moves.
local http = require "http"
local config = require "config"
local json = require "json"
local strict = json.strict
local rb = require "stdrb"
local drill = require "drill"

local M = {}

local fail = rb.fail

-- Unix seconds of an RFC 3339 UTC time ("2026-11-22T09:36:08Z").
local function parse_time(s)
  local y, mo, d, h, mi, sec = tostring(s):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- days from civil (proleptic Gregorian), independent of the local zone
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end
M._parse_time = parse_time

local function section_for(service, opts)
  return rb.section("deploy", opts.source,
    { default = service, option = "source", noun = "sources" })
end

local function kind_of(section)
  local k = config.get(section, "source")
  if k == "k8s" then k = "kubernetes" end
  if k ~= "git" and k ~= "kubernetes" then
    fail("deploy: [%s] source must be git or kubernetes (got %s)", section, tostring(k))
  end
  return k
end

-- git -------------------------------------------------------------------

local function git_recent(section, service, within)
  local cmd = require "cmd"
  local repo = config.get(section, "repo")
  if repo == nil then fail("deploy: [%s] needs repo", section) end
  local r = cmd.read({ "git", "-C", repo, "log", "-n", "1",
    "--since=" .. math.floor(within) .. " seconds ago",
    "--format=%H%x1f%ct%x1f%an%x1f%s" })
  local line = (r.stdout or ""):match("^[^\n]+")
  if line == nil then return nil end
  local id, t, author, msg = line:match("^(%x+)\31(%d+)\31([^\31]*)\31(.*)$")
  if id == nil then fail("deploy: git log in %s printed something unexpected", repo) end
  return { id = id, revision = id, time = tonumber(t), author = author, message = msg,
    service = service, source = section }
end

-- The `rollback_command` move: a command of the operator's, run in repo with
-- the revision to go back to as $1 and the current one as $2.
local function git_rollback(section, opts)
  local cmd = require "cmd"
  local repo = config.get(section, "repo")
  if repo == nil then fail("deploy: [%s] needs repo", section) end
  local command = config.get(section, "rollback_command")
  if command == nil then
    fail("deploy.rollback: [%s] is a git source without rollback_command: set it to the "
      .. "command that deploys a revision ($1: the revision to go back to, $2: the current "
      .. "one), or roll back by hand", section)
  end
  local function rev(spec)
    local r = cmd.read({ "git", "-C", repo, "rev-parse", "--verify", "--quiet",
      spec .. "^{commit}" }, { allow_fail = true })
    return (r.stdout or ""):match("^(%x+)")
  end
  local cur = rev("HEAD")
  local to = rev(opts.to_revision and tostring(opts.to_revision) or "HEAD~1")
  if cur == nil then fail("deploy: %s has no commits", repo) end
  if to == nil then
    fail("deploy: %s has no %s to roll back to", repo,
      opts.to_revision and ("revision " .. tostring(opts.to_revision)) or "previous commit")
  end
  local r = cmd.run({ "sh", "-c", command, "rollback_command", to, cur }, { cwd = repo })
  local msg = string.format("%s: %s -> %s%s", repo, cur:sub(1, 12), to:sub(1, 12),
    r.simulated and " (dry run: not run)" or "")
  http.note { op = "deploy", action = "rollback", repo = repo, from = cur, to = to,
    simulated = r.simulated or false, message = msg }
  return strict({ from = cur, to = to, simulated = r.simulated or false }, "deploy.rollback")
end

-- Kubernetes --------------------------------------------------------------

local REV = "deployment.kubernetes.io/revision"

local function k8s(section, service)
  local api = config.get(section, "api_url")
  if api == nil then fail("deploy: [%s] needs api_url", section) end
  return {
    section = section,
    api = api:gsub("/+$", ""),
    ns = config.get(section, "namespace"),
    name = config.get(section, "deployment") or service,
    ca = config.get(section, "ca_bundle"),
  }
end

local function k8s_req(k, t)
  t.ca_bundle = k.ca
  t.auth = { section = k.section, key = "token", scheme = "Bearer", optional = true }
  t.allow_fail = true
  local r = http.request(t)
  if r.simulated then return r end
  if r.status >= 400 then
    local msg = r.json and r.json.message or (r.body or ""):sub(1, 200)
    fail("deploy %s: %s %s/%s: HTTP %d: %s", k.section, t.method, k.ns, k.name, r.status, msg)
  end
  return r
end

local function k8s_deployment(k)
  return k8s_req(k, { method = "GET", url = string.format(
    "%s/apis/apps/v1/namespaces/%s/deployments/%s", k.api, http.urlencode(k.ns),
    http.urlencode(k.name)) }).json
end

-- ReplicaSets owned by the deployment, newest revision first, each with its
-- position in the list; and the list's body as the API sent it.
local function k8s_history(k)
  local d = k8s_deployment(k)
  local sel = {}
  for key, v in pairs(((d.spec or {}).selector or {}).matchLabels or {}) do
    sel[#sel + 1] = key .. "=" .. v
  end
  table.sort(sel)
  local r = k8s_req(k, { method = "GET", query = { labelSelector = table.concat(sel, ",") },
    url = string.format("%s/apis/apps/v1/namespaces/%s/replicasets", k.api,
      http.urlencode(k.ns)) })
  local uid = (d.metadata or {}).uid
  local out = {}
  for i, rs in ipairs((r.json or {}).items or {}) do
    local md = rs.metadata or {}
    local owned = uid == nil
    for _, o in ipairs(md.ownerReferences or {}) do
      if o.uid == uid then owned = true end
    end
    local rev = tonumber((md.annotations or {})[REV])
    if owned and rev then
      out[#out + 1] = { rs = rs, revision = rev, time = parse_time(md.creationTimestamp),
        index = i - 1 }
    end
  end
  table.sort(out, function(a, b) return a.revision > b.revision end)
  return d, out, r.body
end

local function images(template)
  local t = {}
  for _, c in ipairs(((template or {}).spec or {}).containers or {}) do t[#t + 1] = c.image end
  return table.concat(t, ",")
end

local function k8s_recent(section, service, within)
  local k = k8s(section, service)
  local _, hist = k8s_history(k)
  local top = hist[1]
  if top == nil or top.time == nil or top.time < os.time() - within then return nil end
  local md = top.rs.metadata
  return { id = md.name, revision = top.revision, time = top.time,
    time_iso = md.creationTimestamp, image = images(top.rs.spec and top.rs.spec.template),
    author = (md.annotations or {})["kubernetes.io/change-cause"],
    message = (md.annotations or {})["kubernetes.io/change-cause"],
    service = service, source = section }
end

-- Drills and recordings ----------------------------------------------------

-- A drill's answer for op on service ("fail" raised), or nil outside drills.
local function answered(op, service)
  local a = drill.answer("deploy", { op = op, service = service })
  if a and a.fail then fail("deploy.%s %s: %s", op, service, a.fail) end
  return a
end

-- f(...) with its own reads kept out of a recording dry-run, which keeps
-- what it returns as the deploy answer instead.
local function recorded(op, service, f, ...)
  drill.hold(true)
  local ok, v = pcall(f, ...)
  drill.hold(false)
  if not ok then -- kept as its failure, so a replay takes the same on_error
    drill.record("deploy", { op = op, service = service }, { fail = tostring(v) })
    error(v, 0)
  end
  local plain = v
  if type(v) == "table" then
    plain = {}
    for k, x in pairs(v) do plain[k] = x end
  end
  drill.record("deploy", { op = op, service = service }, { value = plain })
  return v
end

-- Public ------------------------------------------------------------------

--- deploy.recent(service [, { within = "2h", source = "NAME" }]): the most
-- recent deploy of service inside the window, or nil.
-- Returns { id, revision, time (unix seconds), author, message, source }.
function M.recent(service, opts)
  if type(service) ~= "string" or service == "" then
    error("deploy.recent: service must be a string", 2)
  end
  opts = rb.options(opts, "deploy.recent", { "source", "within" })
  local within = rb.seconds(opts.within or "2h", "deploy.recent", "within")
  local optional = "author message image time_iso id revision time service source"
  local a = answered("recent", service)
  if a then return strict(a.value, "deploy.recent", optional) end
  local function read()
    local section = section_for(service, opts)
    local f = kind_of(section) == "git" and git_recent or k8s_recent
    return f(section, service, within)
  end
  return strict(recorded("recent", service, read), "deploy.recent",
    "author message image time_iso")
end

--- deploy.status(service [, opts]): the `kubectl rollout status` answer:
-- { done, message, replicas, updated, ready, available, revision }.
function M.status(service, opts)
  opts = rb.options(opts, "deploy.status", { "source" })
  local a = answered("status", service)
  if a then return strict(a.value, "deploy.status", "revision") end
  return recorded("status", service, M._status, service, opts)
end

function M._status(service, opts)
  local section = section_for(service, opts)
  if kind_of(section) ~= "kubernetes" then fail("deploy.status needs a kubernetes source") end
  local k = k8s(section, service)
  local d = k8s_deployment(k)
  local spec, st = d.spec or {}, d.status or {}
  local want = spec.replicas or 1
  local res = { replicas = want, updated = st.updatedReplicas or 0, ready = st.readyReplicas or 0,
    available = st.availableReplicas or 0,
    revision = tonumber(((d.metadata or {}).annotations or {})[REV]) }
  if (d.metadata or {}).generation and (st.observedGeneration or 0) < d.metadata.generation then
    res.message = "waiting for the deployment spec update to be observed"
  elseif res.updated < want then
    res.message = string.format("%d of %d new replicas updated", res.updated, want)
  elseif (st.replicas or 0) > res.updated then
    res.message = string.format("%d old replicas pending termination", st.replicas - res.updated)
  elseif res.available < res.updated then
    res.message = string.format("%d of %d updated replicas available", res.available, res.updated)
  else
    res.done = true
    res.message = string.format("deployment %s successfully rolled out", k.name)
  end
  res.done = res.done or false
  return strict(res, "deploy.status", "revision")
end

--- deploy.rollback(service [, opts]): the `kubectl rollout undo` move: the
-- deployment's pod template is replaced by the previous revision's; for a
-- git source, the configured rollback_command deploys the previous commit.
-- opts.to_revision picks another revision. Returns { from, to, simulated }.
function M.rollback(service, opts)
  opts = rb.options(opts, "deploy.rollback", { "source", "to_revision" })
  if drill.answers("deploy") then
    local a = drill.answer("deploy", { op = "rollback", service = service, optional = true })
    local v = a and a.value or {}
    drill.would_run { op = "deploy", action = "rollback", service = service,
      to_revision = opts.to_revision, answered_by = "scenario",
      title = "deploy.rollback " .. service }
    if a and a.fail then fail("deploy.rollback %s: %s", service, a.fail) end
    http.note { op = "deploy", action = "rollback", service = service, simulated = true,
      message = string.format("%s: rollback%s (not sent: drill)", service,
        v.to and (" to " .. tostring(v.to)) or "") }
    return strict({ from = v.from, to = v.to, simulated = true }, "deploy.rollback", "from to")
  end
  local section = section_for(service, opts)
  if kind_of(section) == "git" then return git_rollback(section, opts) end
  local k = k8s(section, service)
  local _, hist, raw = k8s_history(k)
  if #hist < 2 then fail("deploy: %s/%s has no previous revision to roll back to", k.ns, k.name) end
  local cur, prev = hist[1], hist[2]
  if opts.to_revision then
    prev = nil
    for _, h in ipairs(hist) do if h.revision == opts.to_revision then prev = h end end
    if prev == nil then fail("deploy: %s/%s has no revision %s", k.ns, k.name, opts.to_revision) end
  end
  local template = prev.rs.spec.template
  -- The template goes back as the API sent it: through Lua, an empty object
  -- ({} for resources, securityContext, emptyDir) would come out as [].
  local text, perr = json.pick(raw or "", "/items/" .. prev.index .. "/spec/template")
  if text == nil then fail("deploy: %s/%s revision %d: %s", k.ns, k.name, prev.revision, perr) end
  local patch = '[{"op":"replace","path":"/spec/template","value":' .. text .. "}"
  if ((template.metadata or {}).labels or {})["pod-template-hash"] ~= nil then
    -- the new ReplicaSet gets its own hash, as with kubectl rollout undo
    patch = patch .. ',{"op":"remove","path":"/spec/template/metadata/labels/pod-template-hash"}'
  end
  local r = k8s_req(k, { method = "PATCH",
    url = string.format("%s/apis/apps/v1/namespaces/%s/deployments/%s", k.api,
      http.urlencode(k.ns), http.urlencode(k.name)),
    headers = { ["Content-Type"] = "application/json-patch+json" },
    body = patch .. "]" })
  local msg = string.format("%s/%s: revision %d -> %d (%s)%s", k.ns, k.name, cur.revision,
    prev.revision, images(template), r.simulated and " (dry run: not sent)" or "")
  http.note { op = "deploy", action = "rollback", deployment = k.name, namespace = k.ns,
    from = cur.revision, to = prev.revision, simulated = r.simulated or false, message = msg }
  return strict({ from = cur.revision, to = prev.revision, simulated = r.simulated or false }, "deploy.rollback")
end

return M
