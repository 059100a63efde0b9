/* drill.h: the "drill" module through which the stdlib's Lua modules reach
 * a drill's call-level answers (C modules call rb_host_drill_answer). */
#ifndef RB_STDLIB_DRILL_H
#define RB_STDLIB_DRILL_H

#include <lua.h>

/* The "drill" module for stdlib modules written in Lua:
 * drill.answer(module, call) returns the answer as a table, or nil. */
int luaopen_runbook_drill(lua_State *L);

#endif
