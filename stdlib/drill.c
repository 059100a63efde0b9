/* drill.c: the "drill" module: a drill's call-level answers for the
 * stdlib's Lua modules (prom.lua), through the host interface. */
#include "stdlib/drill.h"

#include <lauxlib.h>

#include "stdlib/rb_host.h"

static int drill_answer_lua(lua_State *L)
{
  const char *module = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  char err[256];
  json_t *call = rb_lua_to_json(L, 2, err, sizeof err);
  if (call == NULL)
    return luaL_error(L, "drill.answer: %s", err);
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

int luaopen_runbook_drill(lua_State *L)
{
  static const luaL_Reg fns[] = {{"answer", drill_answer_lua}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
