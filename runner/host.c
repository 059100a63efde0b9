/* host.c: the glue every stdlib module uses to reach its run: the rb_host in
 * the registry, the read/write gates of dry-run and drill, deadlines, and
 * conversion between Lua values and JSON. */
#include "stdlib/rb_host.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"
#include "runner/run.h"

#define RB_HOST_KEY "rb.host"
#define RB_JSON_MAX_DEPTH 64

rb_host *rb_host_get(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, RB_HOST_KEY);
  rb_host *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (h == NULL)
    luaL_error(L, "internal error: no run attached to this Lua state");
  return h;
}

void rb_host_set(lua_State *L, rb_host *h)
{
  lua_pushlightuserdata(L, h);
  lua_setfield(L, LUA_REGISTRYINDEX, RB_HOST_KEY);
}

/* -- strict results ---------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted field names of table t, comma separated, into buf. */
static void field_list(lua_State *L, int t, char *buf, size_t len)
{
  const char *names[64];
  size_t n = 0, used = 0;
  buf[0] = '\0';
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && n < 64)
      names[n++] = lua_tostring(L, -1); /* the key stays alive in t */
  }
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n && used + 1 < len; i++) {
    int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
    if (w > 0)
      used += (size_t)w;
  }
}

/* __index of a strict result: upvalue 1 the module function's name, 2 the
 * set of optional fields. */
static int strict_index(lua_State *L)
{
  /* Only names are strict: ipairs() and # probe integer keys. */
  if (lua_type(L, 2) != LUA_TSTRING)
    return 0;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
    return 0; /* declared optional: absent means nil */
  lua_pop(L, 1);
  char have[512];
  field_list(L, 1, have, sizeof have);
  luaL_where(L, 1); /* the line of the runbook that read the field */
  lua_pushfstring(L, "%s: " RB_HOST_NO_FIELD " '%s' (it has: %s)",
                  lua_tostring(L, lua_upvalueindex(1)), lua_tostring(L, 2), have);
  lua_concat(L, 2);
  return lua_error(L);
}

int rb_host_result(lua_State *L, const char *what, const char *optional)
{
  if (lua_type(L, -1) != LUA_TTABLE)
    return 1;
  char key[160];
  snprintf(key, sizeof key, "rb.result %s|%s", what, optional ? optional : "");
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, what);
    lua_createtable(L, 0, 4);
    for (const char *p = optional; p && *p;) {
      size_t n = strcspn(p, " ");
      if (n > 0) {
        lua_pushlstring(L, p, n);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      }
      p += n + (p[n] == ' ');
    }
    lua_pushcclosure(L, strict_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
  }
  lua_setmetatable(L, -2);
  return 1;
}

int rb_host_result_lua(lua_State *L)
{
  const char *what = luaL_checkstring(L, 2);
  const char *optional = luaL_optstring(L, 3, NULL);
  lua_settop(L, 1);
  return rb_host_result(L, what, optional);
}

int rb_host_may_write(lua_State *L, const char *what)
{
  rb_host *h = rb_host_get(L);
  switch (rb_gate_decide(h->mode, h->step_id != NULL, h->step_kind, RB_OP_WRITE)) {
  case RB_GATE_RUN:
    return 1;
  case RB_GATE_RECORD:
    return 0;
  case RB_GATE_REFUSE_READONLY:
    return luaL_error(L,
                      "%s: step '%s' is a %s and must stay read-only; "
                      "move the change into an action step",
                      what, h->step_id, rb_step_kind_name(h->step_kind));
  default:
    return luaL_error(L,
                      "%s: side effects are not allowed while the runbook is loading; "
                      "put them inside an action step",
                      what);
  }
}

void rb_host_check_read(lua_State *L, const char *what)
{
  rb_host *h = rb_host_get(L);
  switch (rb_gate_decide(h->mode, h->step_id != NULL, h->step_kind, RB_OP_READ)) {
  case RB_GATE_REFUSE_DRILL:
    luaL_error(L,
               "%s: a drill touches no system; step '%s' reads from one. Give the "
               "step a 'result' in the scenario, or move the read into a check",
               what, h->step_id ? h->step_id : "?");
    break;
  case RB_GATE_RUN:
    break;
  default:
    luaL_error(L, "%s: reads are not allowed while the runbook is loading", what);
  }
}

int64_t rb_host_time_left(lua_State *L, int64_t def_ms)
{
  rb_host *h = rb_host_get(L);
  if (h->step_deadline_ms <= 0)
    return def_ms;
  int64_t left = h->step_deadline_ms - rb_now_mono_ms();
  if (left < 1)
    left = 1;
  return left < def_ms || def_ms <= 0 ? left : def_ms;
}

/* -- Lua -> JSON ---------------------------------------------------------- */

typedef struct {
  char *err;
  size_t errlen;
  int failed;
  int tagged; /* non-finite numbers as {"$float": "NaN"} (rb_lua_to_json_tagged) */
} rb_conv;

#define RB_FLOAT_TAG "$float"

static json_t *rb_to_json(lua_State *L, int idx, int depth, rb_conv *c);

static int rb_is_array(lua_State *L, int idx, size_t *n)
{
  size_t count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    size_t k = (size_t)lua_tointeger(L, -1);
    if (k > max)
      max = k;
    count++;
  }
  *n = max;
  return count == max;
}

/* Whether the table at idx has RB_FLOAT_TAG as its only key. */
static int rb_is_float_tag(lua_State *L, int idx)
{
  lua_pushnil(L);
  if (lua_next(L, idx) == 0)
    return 0;
  int tag =
      lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), RB_FLOAT_TAG) == 0;
  lua_pop(L, 1);
  int more = lua_next(L, idx) != 0;
  lua_pop(L, more ? 2 : 0);
  return tag && !more;
}

static json_t *rb_table_to_json(lua_State *L, int idx, int depth, rb_conv *c)
{
  if (c->tagged && rb_is_float_tag(L, idx)) {
    c->failed = rb_err(c->err, c->errlen,
                       "cannot convert to JSON: a table whose only key is \"" RB_FLOAT_TAG
                       "\" (reserved for NaN and infinities)");
    return NULL;
  }
  /* The "seen" set lives in the registry for the duration of the call. */
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.json.seen");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TNIL) {
    lua_pop(L, 2);
    c->failed =
        rb_err(c->err, c->errlen, "cannot convert to JSON: table contains a cycle");
    return NULL;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);

  size_t n = 0;
  json_t *out = NULL;
  if (rb_is_array(L, idx, &n) && n > 0) {
    out = json_array();
    for (size_t i = 1; i <= n && !c->failed; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      json_t *v = rb_to_json(L, lua_gettop(L), depth + 1, c);
      lua_pop(L, 1);
      if (v)
        json_array_append_new(out, v);
    }
  } else {
    out = json_object();
    lua_pushnil(L);
    while (!c->failed && lua_next(L, idx) != 0) {
      char kbuf[64];
      const char *key = NULL;
      if (lua_type(L, -2) == LUA_TSTRING) {
        key = lua_tostring(L, -2);
      } else if (lua_isinteger(L, -2)) {
        snprintf(kbuf, sizeof kbuf, "%lld", (long long)lua_tointeger(L, -2));
        key = kbuf;
      } else if (lua_type(L, -2) == LUA_TBOOLEAN) {
        key = lua_toboolean(L, -2) ? "true" : "false";
      } else {
        c->failed =
            rb_err(c->err, c->errlen, "cannot convert to JSON: a %s used as a key",
                   luaL_typename(L, -2));
        lua_pop(L, 2);
        break;
      }
      json_t *v = rb_to_json(L, lua_gettop(L), depth + 1, c);
      /* jansson refuses (and frees v for) a key that is not UTF-8 */
      if (v && json_object_set_new(out, key, v) != 0)
        c->failed =
            rb_err(c->err, c->errlen, "cannot convert to JSON: a key is not valid UTF-8");
      lua_pop(L, 1);
    }
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.json.seen");
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  if (c->failed) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *rb_to_json(lua_State *L, int idx, int depth, rb_conv *c)
{
  if (depth > RB_JSON_MAX_DEPTH) {
    c->failed = rb_err(c->err, c->errlen, "cannot convert to JSON: nested deeper than %d",
                       RB_JSON_MAX_DEPTH);
    return NULL;
  }
  if (!lua_checkstack(L, 8)) {
    c->failed = rb_err(c->err, c->errlen, "cannot convert to JSON: out of stack space");
    return NULL;
  }
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return json_null();
  case LUA_TBOOLEAN:
    return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx))) {
      lua_Number x = lua_tonumber(L, idx);
      if (c->tagged)
        return json_pack("{s:s}", RB_FLOAT_TAG,
                         isnan(x) ? "NaN"
                         : x > 0  ? "Infinity"
                                  : "-Infinity");
      c->failed =
          rb_err(c->err, c->errlen, "cannot convert to JSON: number is not finite");
      return NULL;
    }
    return json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    json_t *j = json_stringn_nocheck(s, len);
    return j;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL)
      return json_null();
    /* fallthrough */
  default:
    if (lua_type(L, idx) == LUA_TTABLE)
      return rb_table_to_json(L, idx, depth, c);
    c->failed =
        rb_err(c->err, c->errlen, "cannot convert a %s to JSON", luaL_typename(L, idx));
    return NULL;
  }
}

static json_t *rb_lua_to_json_conv(lua_State *L, int idx, char *err, size_t errlen,
                                   int tagged);

json_t *rb_lua_to_json(lua_State *L, int idx, char *err, size_t errlen)
{
  return rb_lua_to_json_conv(L, idx, err, errlen, 0);
}

json_t *rb_lua_to_json_tagged(lua_State *L, int idx, char *err, size_t errlen)
{
  return rb_lua_to_json_conv(L, idx, err, errlen, 1);
}

static json_t *rb_lua_to_json_conv(lua_State *L, int idx, char *err, size_t errlen,
                                   int tagged)
{
  rb_conv c = {err, errlen, 0, tagged};
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L); /* a failure deep in a table leaves a key behind */
  if (!lua_checkstack(L, 16)) {
    rb_err(err, errlen, "cannot convert to JSON: out of stack space");
    return NULL;
  }
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "rb.json.seen");
  json_t *out = rb_to_json(L, idx, 0, &c);
  lua_settop(L, top);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "rb.json.seen");
  /* json_stringn_nocheck accepted any bytes; the dumper rejects invalid
   * UTF-8 later, so check now and say which. */
  if (out != NULL && json_dumpb(out, NULL, 0, JSON_ENCODE_ANY) == 0) {
    json_decref(out);
    rb_err(err, errlen, "cannot convert to JSON: a string is not valid UTF-8");
    return NULL;
  }
  return out;
}

/* -- JSON -> Lua ---------------------------------------------------------- */

/* {"$float": "NaN" | "Infinity" | "-Infinity"} as its number, else 0. */
static int rb_float_tag(const json_t *v, lua_Number *x)
{
  const char *s = json_string_value(json_object_get(v, RB_FLOAT_TAG));
  if (json_object_size(v) != 1 || s == NULL)
    return 0;
  if (strcmp(s, "NaN") == 0)
    *x = NAN;
  else if (strcmp(s, "Infinity") == 0)
    *x = HUGE_VAL;
  else if (strcmp(s, "-Infinity") == 0)
    *x = -HUGE_VAL;
  else
    return 0;
  return 1;
}

static void rb_push_json(lua_State *L, const json_t *v, int depth, int tagged)
{
  if (depth > RB_JSON_MAX_DEPTH)
    luaL_error(L, "JSON nested deeper than %d", RB_JSON_MAX_DEPTH);
  luaL_checkstack(L, 4, "JSON too deep");
  lua_Number num;
  if (tagged && json_is_object(v) && rb_float_tag(v, &num)) {
    lua_pushnumber(L, num);
    return;
  }
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *x;
    lua_createtable(L, 0, (int)json_object_size(v));
    json_object_foreach((json_t *)v, k, x)
    {
      if (json_is_null(x))
        continue;
      rb_push_json(L, x, depth + 1, tagged);
      lua_setfield(L, -2, k);
    }
    break;
  }
  case JSON_ARRAY: {
    size_t i;
    json_t *x;
    lua_createtable(L, (int)json_array_size(v), 0);
    json_array_foreach(v, i, x)
    {
      if (json_is_null(x))
        lua_pushlightuserdata(L, NULL);
      else
        rb_push_json(L, x, depth + 1, tagged);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(v));
    break;
  case JSON_REAL:
    lua_pushnumber(L, json_real_value(v));
    break;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    break;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    break;
  default:
    lua_pushnil(L);
  }
}

void rb_json_to_lua(lua_State *L, const json_t *v)
{
  rb_push_json(L, v, 0, 0);
}

void rb_json_to_lua_tagged(lua_State *L, const json_t *v)
{
  rb_push_json(L, v, 0, 1);
}
