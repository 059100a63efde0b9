/* common.h: what the Lua binding and the `runbook ssh` CLI share: reading the
 * [ssh] config into engine settings, and one timeline detail per host. */
#ifndef RB_SSH_COMMON_H
#define RB_SSH_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stdlib/rb_host.h"
#include "stdlib/ssh/fanout.h"
#include "stdlib/ssh/inventory.h"

#define RB_SSH_TAIL 2048 /* bytes of each stream kept on the timeline */

/* The [ssh] section, read once. Strings point into the config. */
typedef struct {
  rb_ssh_settings settings;
  const char *inventory; /* NULL: targets are literal [user@]host[:port] */
  int parallel;          /* 0 = engine default */
  int64_t command_ms;    /* default per-command timeout */
  size_t output_max;     /* bytes per stream */
} rb_ssh_config;

/* Reads [ssh] from cfg (which must outlive out). Returns 0 or -1 with err
 * naming the bad key. */
int rb_ssh_config_read(const rb_config *cfg, rb_ssh_config *out, char *err,
                       size_t errlen);
/* Loads the configured inventory, or returns NULL with *none set when none is
 * configured (literal targets). Caller frees. */
rb_ssh_inventory *rb_ssh_config_inventory(const rb_ssh_config *c, int *none, char *err,
                                          size_t errlen);

/* The timeline detail of one host's result: op, host, address, command,
 * exit_code, signal, duration_ms, error, timed_out, truncated, skipped,
 * stdout_tail, stderr_tail. Caller owns it. */
json_t *rb_ssh_result_json(const rb_ssh_result *r, const char *command);
/* The event a result is recorded as: "finished", "failed" or "skipped". */
const char *rb_ssh_result_event(const rb_ssh_result *r);

#endif
