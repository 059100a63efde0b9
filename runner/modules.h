/* modules.h: the stdlib as the sandbox sees it: the C modules, the Lua
 * modules compiled in by stdlib/embed.cmake, and the list sb_new takes. */
#ifndef RB_MODULES_TABLE_H
#define RB_MODULES_TABLE_H

#include "sandbox/sandbox.h"

/* Each ended by an entry whose name is NULL. */
extern const sb_module rb_c_modules[];
extern const sb_module rb_lua_modules[]; /* generated: embedded_lua.c */

/* {rb_c_modules, rb_lua_modules, NULL}, for sb_limits.modules. */
extern const sb_module *const rb_stdlib_modules[];
/* For sb_limits.internal: only the stdlib's Lua modules require these. */
extern const sb_module rb_internal_modules[];

#endif
