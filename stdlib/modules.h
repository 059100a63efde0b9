/* modules.h: the stdlib modules written in C, by the name a runbook requires
 * them with. The sandbox's require knows these names and nothing else. */
#ifndef RB_MODULES_H
#define RB_MODULES_H

#include <lua.h>

typedef struct {
  const char *name;
  lua_CFunction open;
} rb_c_module;

/* Terminated by an entry whose name is NULL. */
extern const rb_c_module rb_c_modules[];

int luaopen_runbook_cmd(lua_State *L);
int luaopen_runbook_config(lua_State *L);
int luaopen_runbook_http(lua_State *L);
/* http and ssh live in runbook-net.so: these load it and call the above. */
int rb_net_open_http(lua_State *L);
int rb_net_open_ssh(lua_State *L);
int luaopen_runbook_json(lua_State *L);
int luaopen_runbook_ssh(lua_State *L);

#endif
