/* modules.c: the table of C stdlib modules that a runbook's require can
 * open. Adding a module means one declaration in stdlib/modules.h and one
 * row here; the sandbox knows only what it is handed. */
#include "runner/modules.h"

#include <stddef.h>

#include "runner/netplugin.h"
#include "stdlib/modules.h"

const sb_module rb_c_modules[] = {
    {"cmd", luaopen_runbook_cmd, NULL, 0}, {"config", luaopen_runbook_config, NULL, 0},
    {"http", rb_net_open_http, NULL, 0},   {"json", luaopen_runbook_json, NULL, 0},
    {"ssh", rb_net_open_ssh, NULL, 0},     {NULL, NULL, NULL, 0},
};

const sb_module *const rb_stdlib_modules[] = {rb_c_modules, rb_lua_modules, NULL};

const sb_module rb_internal_modules[] = {
    {"drill", luaopen_runbook_drill, NULL, 0},
    {NULL, NULL, NULL, 0},
};
