/* modules.h: the openers of the stdlib modules written in C; the runner
 * lists them by the name a runbook requires them with (runner/modules.c). */
#ifndef RB_MODULES_H
#define RB_MODULES_H

#include <lua.h>

int luaopen_runbook_cmd(lua_State *L);
int luaopen_runbook_config(lua_State *L);
int luaopen_runbook_drill(lua_State *L); /* stdlib/drill.h */
int luaopen_runbook_http(lua_State *L);
int luaopen_runbook_json(lua_State *L);
int luaopen_runbook_ssh(lua_State *L);

#endif
