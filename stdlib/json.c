/* json.c: the `json` module for runbooks: encode a Lua value to JSON text and
 * decode JSON text, with depth, cycle and size checks. */
#include <lauxlib.h>
#include <malloc.h>
#include <stdlib.h>

#include "stdlib/rb_host.h"
#include "stdlib/modules.h"
#include "stdlib/opts.h"

#define RB_JSON_MAX_TEXT (16u << 20)

/* jansson allocates its tree outside the Lua state, and a tree costs far
 * more than its text ("[{},{},...]": ~25x). While json.decode parses, every
 * jansson allocation counts against the run's memory budget; otherwise a
 * 16 MiB text takes a gigabyte whatever memory_mb says. */
static _Thread_local int g_counting;
static _Thread_local size_t g_left;
static _Thread_local int g_refused;

static void *rb_json_malloc(size_t n)
{
  if (g_counting) {
    if (n > g_left) {
      g_refused = 1;
      return NULL;
    }
    g_left -= n;
  }
  return malloc(n);
}

static void rb_json_count_begin(lua_State *L)
{
  json_set_alloc_funcs(rb_json_malloc, free);
  g_left = rb_host_memory_limit(L);
  g_refused = 0;
  g_counting = 1;
}

static void rb_json_count_end(void)
{
  g_counting = 0;
}

static int json_decode_l(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int allow_fail = 0;
  if (!lua_isnoneornil(L, 2)) {
    static const char *const known[] = {"allow_fail", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    rb_opts_check(L, 2, "json.decode", known, NULL);
    allow_fail = rb_opts_bool(L, 2, "json.decode", "allow_fail", 0);
  }
  lua_settop(L, 1);
  if (len > RB_JSON_MAX_TEXT)
    return luaL_error(L, "json.decode: text larger than 16 MiB");
  json_error_t e;
  rb_json_count_begin(L);
  json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &e);
  int over = g_refused; /* jansson does not always say it ran out */
  rb_json_count_end();
  if (over) {
    json_decref(v);
    return luaL_error(L,
                      "json.decode: the text needs more than the memory budget "
                      "(%d MiB) to parse",
                      (int)(rb_host_memory_limit(L) >> 20));
  }
  if (v == NULL) {
    /* Bad text is the input's failure, not the runbook's: it raises unless
     * the caller said it expects it (docs/design.md, "Stdlib bindings"). */
    if (!allow_fail)
      return luaL_error(L, "json.decode: invalid JSON at line %d column %d: %s", e.line,
                        e.column, e.text);
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at line %d column %d: %s", e.line, e.column, e.text);
    return 2;
  }
  /* The box owns v while the conversion may raise (too deep, no memory). */
  json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = v;
  luaL_setmetatable(L, "rb.json.box");
  rb_json_to_lua(L, v);
  json_decref(v);
  *box = NULL;
  return 1;
}

static int json_encode_l(lua_State *L)
{
  luaL_checkany(L, 1);
  char err[256];
  json_t *v = rb_lua_to_json(L, 1, err, sizeof err);
  if (v == NULL)
    return luaL_error(L, "json.encode: %s", err);
  int flags = JSON_ENCODE_ANY | JSON_COMPACT;
  if (lua_toboolean(L, 2))
    flags = JSON_ENCODE_ANY | JSON_INDENT(2) | JSON_SORT_KEYS;
  char *s = json_dumps(v, flags);
  json_decref(v);
  if (s == NULL)
    return luaL_error(L, "json.encode: cannot serialise value");
  lua_pushstring(L, s);
  free(s);
  return 1;
}

/* Follows an RFC 6901 pointer ("/items/0/spec/template") from v. */
static json_t *json_at(json_t *v, const char *ptr)
{
  char tok[256];
  while (v != NULL && *ptr == '/') {
    size_t n = 0;
    for (ptr++; *ptr && *ptr != '/' && n + 1 < sizeof tok; ptr++) {
      if (ptr[0] == '~' && (ptr[1] == '0' || ptr[1] == '1'))
        tok[n++] = *++ptr == '0' ? '~' : '/';
      else
        tok[n++] = *ptr;
    }
    tok[n] = '\0';
    if (*ptr && *ptr != '/')
      return NULL; /* a token too long to be a key we look for */
    if (json_is_object(v)) {
      v = json_object_get(v, tok);
    } else if (json_is_array(v)) {
      char *end;
      unsigned long i = strtoul(tok, &end, 10);
      v = (*tok && *end == '\0') ? json_array_get(v, i) : NULL;
    } else {
      v = NULL;
    }
  }
  return *ptr == '\0' ? v : NULL;
}

/* json.pick(text, pointer): the JSON text of the value at pointer in text,
 * taken without going through Lua values, so {} stays {} and [] stays []
 * (Lua has one empty table for both). nil, message when it is not there. */
static int json_pick_l(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *ptr = luaL_checkstring(L, 2);
  if (len > RB_JSON_MAX_TEXT)
    return luaL_error(L, "json.pick: text larger than 16 MiB");
  json_error_t e;
  rb_json_count_begin(L);
  json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &e);
  int over = g_refused;
  rb_json_count_end();
  if (over || v == NULL) {
    json_decref(v);
    lua_pushnil(L);
    if (over)
      lua_pushliteral(L, "json.pick: the text needs more than the memory budget");
    else
      lua_pushfstring(L, "json.pick: invalid JSON at line %d column %d: %s", e.line,
                      e.column, e.text);
    return 2;
  }
  json_t *at = json_at(v, ptr);
  char *out = at ? json_dumps(at, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(v);
  if (out == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "json.pick: nothing at %s", ptr);
    return 2;
  }
  lua_pushstring(L, out);
  free(out);
  return 1;
}

static int json_box_gc(lua_State *L)
{
  json_t **box = lua_touserdata(L, 1);
  if (box && *box) {
    json_decref(*box);
    *box = NULL;
  }
  return 0;
}

int luaopen_runbook_json(lua_State *L)
{
  if (luaL_newmetatable(L, "rb.json.box")) {
    lua_pushcfunction(L, json_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"decode", json_decode_l},
                                 {"encode", json_encode_l},
                                 {"pick", json_pick_l},
                                 {"strict", rb_host_result_lua},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
