/* plugin.c: the descriptor of runbook-http.so, the one symbol it exports:
 * the http module, no subcommand. */
#include <stddef.h>

#include "stdlib/modules.h"
#include "stdlib/rb_host.h"

const rb_plugin rb_plugin_descriptor = {
    .abi_version = RB_HOST_ABI_VERSION,
    .name = "http",
    .open = luaopen_runbook_http,
    .cli = NULL,
};
