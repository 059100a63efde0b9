/* serve.h: `runbook serve`, the alert listener: Alertmanager webhooks in,
 * runs of `runbook exec` out, plus /healthz, /metrics and approvals. */
#ifndef RB_SERVE_H
#define RB_SERVE_H

#include "stdlib/rb_host.h"

/* Runs the listener until SIGTERM or SIGINT; argv[0] is "serve". Returns an
 * exit code of the runbook command (0 after a graceful stop). */
int rb_cli_serve(const rb_config *cfg, const char *state_dir, int argc, char **argv);

/* `runbook store migrate|status|runs|pull` (store_cli.c); argv[0] is
 * "store". */
int rb_cli_store(const rb_config *cfg, const char *state_dir, int argc, char **argv);

#endif
