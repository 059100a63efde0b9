/* drill.c: the "drill" module: a drill's call-level answers for the
 * stdlib's Lua modules (prom, flags, deploy), and a recording dry-run's. */
#include "stdlib/drill.h"

#include <lauxlib.h>

#include "stdlib/rb_host.h"

#define QUIET_KEY "rb.drill.quiet"

static json_t *arg_json(lua_State *L, int idx, const char *fn)
{
  char err[256];
  json_t *j = rb_lua_to_json(L, idx, err, sizeof err);
  if (j == NULL)
    luaL_error(L, "drill.%s: %s", fn, err);
  return j;
}

/* drill.answer(module, call): the scenario's answer, or nil. */
static int drill_answer_lua(lua_State *L)
{
  const char *module = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  json_t *call = arg_json(L, 2, "answer");
  json_t *a = NULL;
  char why[1024];
  int rc = rb_host_drill_answer(L, module, call, &a, why, sizeof why);
  json_decref(call); /* before a raise could skip it */
  if (rc < 0)
    return luaL_error(L, "%s", why);
  if (rc == 0) {
    lua_pushnil(L);
    return 1;
  }
  rb_json_to_lua(L, a);
  json_decref(a);
  return 1;
}

/* drill.answers(module): true when the drill's scenario answers module. */
static int drill_answers_lua(lua_State *L)
{
  const char *module = luaL_checkstring(L, 1);
  json_t *a = NULL;
  char why[16];
  int rc = rb_host_drill_answer(L, module, NULL, &a, why, sizeof why);
  json_decref(a);
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* drill.record(module, call, answer): a recording dry-run keeps it. */
static int drill_record_lua(lua_State *L)
{
  const char *module = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  json_t *call = arg_json(L, 2, "record");
  char e2[64];
  json_t *ans = rb_lua_to_json(L, 3, e2, sizeof e2);
  if (ans != NULL)
    rb_host_drill_record(L, module, call, ans);
  json_decref(call);
  json_decref(ans);
  return 0;
}

/* drill.hold(on): while on, the reads a recorded call makes itself (prom's
 * HTTP request) are not recorded; the runner clears it at each step. */
static int drill_hold_lua(lua_State *L)
{
  if (lua_toboolean(L, 1))
    lua_pushboolean(L, 1);
  else
    lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, QUIET_KEY);
  return 0;
}

/* drill.would_run(detail): a write answered in a drill, on the timeline. */
static int drill_would_run_lua(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  json_t *d = arg_json(L, 1, "would_run");
  rb_host *h = rb_host_get(L);
  if (h->emit != NULL)
    h->emit(h, "would_run", d);
  else
    json_decref(d);
  return 0;
}

int luaopen_runbook_drill(lua_State *L)
{
  static const luaL_Reg fns[] = {
      {"answer", drill_answer_lua},       {"answers", drill_answers_lua},
      {"hold", drill_hold_lua},           {"record", drill_record_lua},
      {"would_run", drill_would_run_lua}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
