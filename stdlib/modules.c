/* modules.c: the table of C stdlib modules that the sandbox's require can
 * open. Adding a module means one declaration in modules.h and one row here. */
#include "stdlib/modules.h"

#include <stddef.h>

const rb_c_module rb_c_modules[] = {
    {"cmd", luaopen_runbook_cmd}, {"config", luaopen_runbook_config},
    {"http", rb_net_open_http},   {"json", luaopen_runbook_json},
    {"ssh", rb_net_open_ssh},     {NULL, NULL},
};
