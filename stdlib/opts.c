/* opts.c: the option check and typed option reads shared by the stdlib C
 * modules, so every module words an unknown or mistyped option the same way. */
#include "stdlib/opts.h"

#include <lauxlib.h>
#include <string.h>

#include "runner/base/util.h"

static const char *retired_hint(const rb_opt_retired *retired, const char *k)
{
  for (; retired && retired->name; retired++)
    if (strcmp(retired->name, k) == 0)
      return retired->hint;
  return NULL;
}

void rb_opts_check(lua_State *L, int idx, const char *fn, const char *const *known,
                   const rb_opt_retired *retired)
{
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: options must be named (got a %s key)", fn, luaL_typename(L, -1));
    const char *k = lua_tostring(L, -1);
    int ok = 0;
    for (int i = 0; known[i] != NULL && !ok; i++)
      ok = strcmp(k, known[i]) == 0;
    if (ok)
      continue;
    const char *hint = retired_hint(retired, k);
    if (hint != NULL)
      luaL_error(L, "%s: unknown option '%s' (%s)", fn, k, hint);
    const char *near = rb_suggest(k, known);
    if (near != NULL)
      luaL_error(L, "%s: unknown option '%s' (did you mean '%s'?)", fn, k, near);
    luaL_error(L, "%s: unknown option '%s'", fn, k);
  }
}

int rb_opts_type_error(lua_State *L, const char *fn, const char *name, const char *want)
{
  const char *got = lua_isinteger(L, -1) || lua_type(L, -1) != LUA_TNUMBER
                        ? luaL_typename(L, -1)
                        : "fractional number";
  return luaL_error(L, "%s: option '%s' must be %s, not a %s", fn, name, want, got);
}

static const char *type_want(int type)
{
  switch (type) {
  case LUA_TBOOLEAN:
    return "a boolean";
  case LUA_TSTRING:
    return "a string";
  case LUA_TTABLE:
    return "a table";
  case LUA_TNUMBER:
    return "a number";
  default:
    return "something else";
  }
}

int rb_opts_field(lua_State *L, int idx, const char *fn, const char *name, int type)
{
  int t = lua_getfield(L, idx, name);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != type)
    rb_opts_type_error(L, fn, name, type_want(type));
  return 1;
}

int rb_opts_bool(lua_State *L, int idx, const char *fn, const char *name, int def)
{
  if (!rb_opts_field(L, idx, fn, name, LUA_TBOOLEAN))
    return def;
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *rb_opts_string(lua_State *L, int idx, const char *fn, const char *name,
                           const char *def)
{
  if (!rb_opts_field(L, idx, fn, name, LUA_TSTRING))
    return def;
  const char *v = lua_tostring(L, -1);
  lua_pop(L, 1); /* the table keeps the string alive */
  return v;
}

lua_Integer rb_opts_int(lua_State *L, int idx, const char *fn, const char *name,
                        lua_Integer lo, lua_Integer hi, lua_Integer def)
{
  if (lua_getfield(L, idx, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (!lua_isinteger(L, -1))
    rb_opts_type_error(L, fn, name, "an integer");
  lua_Integer v = lua_tointeger(L, -1);
  if (v < lo || v > hi)
    luaL_error(L, "%s: option '%s' must be %I..%I, not %I", fn, name, (LUAI_UACINT)lo,
               (LUAI_UACINT)hi, (LUAI_UACINT)v);
  lua_pop(L, 1);
  return v;
}

int64_t rb_opts_duration(lua_State *L, int idx, const char *fn, const char *name,
                         int64_t def)
{
  int t = lua_getfield(L, idx, name);
  int64_t ms = def;
  if (t == LUA_TNUMBER) {
    ms = (int64_t)(lua_tonumber(L, -1) * 1000);
  } else if (t == LUA_TSTRING) {
    char err[200];
    if (rb_parse_duration(lua_tostring(L, -1), &ms, err, sizeof err) != 0)
      luaL_error(L, "%s: option '%s': %s", fn, name, err);
  } else if (t != LUA_TNIL) {
    rb_opts_type_error(L, fn, name, "a duration (\"30s\") or seconds");
  }
  lua_pop(L, 1);
  return ms;
}
