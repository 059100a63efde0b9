/* config.c: the `config` module: read-only access to the settings file for
 * runbooks and the Lua stdlib. Secrets are never readable from here. */
#include <lauxlib.h>
#include <string.h>

#include "stdlib/rb_host.h"
#include "stdlib/modules.h"

static int config_get(lua_State *L)
{
  const char *section = luaL_checkstring(L, 1);
  const char *key = luaL_checkstring(L, 2);
  size_t n = strlen(key);
  if ((n > 4 && strcmp(key + n - 4, "_env") == 0) ||
      (n > 5 && strcmp(key + n - 5, "_file") == 0))
    return luaL_argerror(L, 2, "secret references are not readable from runbooks");
  const char *v = rb_host_config_string(rb_host_get(L)->config, section, key);
  if (v == NULL)
    lua_pushnil(L);
  else
    lua_pushstring(L, v);
  return 1;
}

static void config_add_section(const char *section, void *arg)
{
  lua_State *L = arg;
  lua_pushstring(L, section);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
}

static int config_sections(lua_State *L)
{
  const char *prefix = luaL_optstring(L, 1, "");
  lua_newtable(L);
  rb_host_config_each_section(rb_host_get(L)->config, prefix, config_add_section, L);
  return 1;
}

int luaopen_runbook_config(lua_State *L)
{
  static const luaL_Reg fns[] = {
      {"get", config_get}, {"sections", config_sections}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
