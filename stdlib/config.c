/* config.c: the `config` module: read-only access to the settings file, and
 * its duration parser, for runbooks and the Lua stdlib. Secrets never. */
#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

#include "runner/base/util.h"
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

/* config.duration("90s") -> 90000: the C duration parser (milliseconds), so
 * the Lua stdlib reads "15s", "5m", "2h" exactly as the settings file does. */
static int config_duration(lua_State *L)
{
  const char *s = luaL_checkstring(L, 1);
  int64_t ms = 0;
  char err[200];
  if (rb_parse_duration(s, &ms, err, sizeof err) != 0)
    return luaL_error(L, "config.duration: %s", err);
  lua_pushinteger(L, (lua_Integer)ms);
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
  static const luaL_Reg fns[] = {{"duration", config_duration},
                                 {"get", config_get},
                                 {"sections", config_sections},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
