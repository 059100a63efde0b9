/* netplugin.h: the network half of runbook lives in plugins loaded on
 * first use: runbook-http.so (libcurl), runbook-ssh.so (libssh2) and
 * runbook-serve.so (libmicrohttpd, the alert listener).
 * Linking those libraries into the binary cost every invocation ~15M
 * instructions of symbol relocation and library start-up (a drill,
 * `runbook list`, `runbook approve` included); loading each only when a
 * runbook really uses it keeps cold starts fast. */
#ifndef RB_NETPLUGIN_H
#define RB_NETPLUGIN_H

#include <stddef.h>

#include "stdlib/rb_host.h"

/* The descriptor of runbook-<plugin>.so ("http", "ssh", "serve"), loading
 * it on first use from the binary's own directory or <prefix>/lib/runbook.
 * NULL with err when it can not be loaded, exports no descriptor, names
 * another plugin or was built against another RB_HOST_ABI_VERSION. A plugin
 * resolves the host interface against the binary, so all share one config
 * and one secret registry. */
const rb_plugin *rb_net_plugin(const char *plugin, char *err, size_t errlen);

/* Checks a descriptor read from file against what the loader expected:
 * 0, or -1 with err saying what differs. */
int rb_net_check(const rb_plugin *d, const char *plugin, const char *file, char *err,
                 size_t errlen);

/* The http and ssh modules as require returns them: a stand-in whose first
 * field read loads the plugin and opens the real module (netmodules.c). */
int rb_net_open_http(lua_State *L);
int rb_net_open_ssh(lua_State *L);

#endif
