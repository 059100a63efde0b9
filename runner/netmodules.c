/* netmodules.c: the stdlib modules that live in plugins (http in
 * runbook-http.so, ssh in runbook-ssh.so). `require` returns a stand-in
 * table at once; the first field read loads the plugin, opens the real
 * module and copies it in. A drill or a runbook that only names a module
 * at its top never pays for loading libcurl or libssh2. */
#include <lauxlib.h>
#include <string.h>

#include "runner/netplugin.h"

/* Upvalue: plugin name. Stack: the stand-in, the key. */
static int standin_index(lua_State *L)
{
  const char *plugin = lua_tostring(L, lua_upvalueindex(1));
  char err[768];
  const rb_plugin *p = rb_net_plugin(plugin, err, sizeof err);
  if (p == NULL)
    return luaL_error(L, "module '%s': %s", plugin, err);
  if (p->open == NULL)
    return luaL_error(L, "module '%s': the plugin provides no module", plugin);
  lua_pushcfunction(L, p->open);
  lua_pushstring(L, plugin);
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "module '%s': the plugin did not return a table", plugin);
  /* Copy the real module in and drop the stand-in's metatable. */
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 1);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setmetatable(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, 1);
  return 1;
}

static int standin(lua_State *L, const char *plugin)
{
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, plugin);
  lua_pushcclosure(L, standin_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 1;
}

int rb_net_open_http(lua_State *L)
{
  return standin(L, "http");
}

int rb_net_open_ssh(lua_State *L)
{
  return standin(L, "ssh");
}
