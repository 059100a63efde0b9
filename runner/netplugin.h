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

/* The address of symbol `name` in runbook-<plugin>.so ("http", "ssh", "serve"),
 * loading it on first use from the binary's own directory or
 * <prefix>/lib/runbook. NULL with err when it can not be loaded. A plugin
 * resolves the runner's functions (config, redaction, timeline) against
 * the binary, so all share one secret registry. */
void *rb_net_symbol(const char *plugin, const char *name, char *err, size_t errlen);

#endif
