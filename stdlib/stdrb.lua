-- stdrb.lua: what the Lua stdlib modules share: failing with a message,
-- picking a [module.NAME] config section, durations through the C parser.
local config = require "config"

local M = {}

--- fail(fmt, ...): raises the formatted message, without a position (the
-- message names the module and what went wrong).
function M.fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end

--- section(module, want, opts): the [module.NAME] section to use.
-- want is "NAME" or "module.NAME" (or nil); without it, opts.default names
-- a section to prefer when it exists, else the only one there is.
-- opts.option is the option that says which ("provider"), opts.noun what a
-- section is ("providers"), both for the messages.
function M.section(module, want, opts)
  opts = opts or {}
  local prefix = module .. "."
  local all = config.sections(prefix)
  local function have(s)
    for _, n in ipairs(all) do if n == s then return true end end
    return false
  end
  if want ~= nil then
    if type(want) ~= "string" then M.fail("%s: %s must be a section name", module, opts.option) end
    local s = want:sub(1, #prefix) == prefix and want or prefix .. want
    if have(s) then return s end
    M.fail("%s: no [%s] section in the config (have: %s)", module, s,
      #all > 0 and table.concat(all, ", ") or "none")
  end
  if opts.default and have(prefix .. opts.default) then return prefix .. opts.default end
  if #all == 1 then return all[1] end
  if #all == 0 then M.fail("%s: no [%sNAME] section in the config", module, prefix) end
  M.fail("%s: several %s configured (%s): say which with { %s = ... }", module,
    opts.noun or "sections", table.concat(all, ", "), opts.option or "section")
end

--- seconds(v, who, what): seconds in a number, or in a duration string read
-- by the same parser as the settings file ("500ms", "90s", "5m", "2h", "1d").
function M.seconds(v, who, what)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then
    M.fail("%s: %s must be a duration like \"5m\" or seconds", who, what)
  end
  local ok, ms = pcall(config.duration, v)
  if not ok then M.fail("%s: bad %s %q (want e.g. 15s, 5m, 2h)", who, what, v) end
  return ms / 1000
end

-- Edit distance of a and b (insertions, deletions, substitutions).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- options(opts, fn, known): opts, or {} for nil, after refusing a key
-- that is not in the list known, worded as the C modules word it
-- (stdlib/opts.c): "prom.value: unknown option 'serie' (did you mean
-- 'series'?)". The error points at the runbook's line (level 3: the
-- caller of the module function that checks).
function M.options(opts, fn, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fn .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if type(k) ~= "string" then
      error(string.format("%s: options must be named (got a %s key)", fn, type(k)), 3)
    end
    local ok, best, dist = false, nil, 3
    for _, name in ipairs(known) do
      if name == k then ok = true break end
      local d = distance(k, name)
      -- two edits of a three-letter word is another word, not a typo
      if d < dist and d * 2 < #name then best, dist = name, d end
    end
    if not ok then
      error(string.format("%s: unknown option '%s'%s", fn, k,
        best and string.format(" (did you mean '%s'?)", best) or ""), 3)
    end
  end
  return opts
end

return M
