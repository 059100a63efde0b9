/* cmd_engine.h: the process engine under the `cmd` module, plain C with no
 * Lua: one argv run with a timeout, capped output, stdin, a working dir
 * and a given environment, in its own process group that dies with us. */
#ifndef RB_CMD_ENGINE_H
#define RB_CMD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "runner/base/buf.h"
#include "stdlib/cmd_env.h"

#define CMD_MAX_ARGS 256
#define CMD_MAX_ENV 64 /* variables a runbook passes to one command */

/* One output stream, capped at [cmd] output_kb; the rest is counted as cut. */
typedef struct {
  rb_buf b;
  int truncated;
} rb_cmd_buf;

typedef struct {
  const char *argv[CMD_MAX_ARGS + 1];
  int argc;
  int64_t timeout_ms;
  size_t output_limit;
  int allow_fail;
  const char *stdin_data;
  size_t stdin_len;
  const char *cwd;
  int env_idx;                        /* stack index of opts.env, 0 = none */
  const char *env_names[CMD_MAX_ENV]; /* its names, sorted, for the timeline */
  int envc;
  /* Called about once a second while a command runs past CMD_WAIT_SAY_MS
   * (elapsed so far), and once with done = 1 when such a command ended, so
   * a long run says what it is waiting for. May be NULL. */
  void (*on_wait)(void *arg, int64_t elapsed_ms, int done);
  void *wait_arg;
} rb_cmd_spec;

#define CMD_WAIT_SAY_MS 5000

typedef struct {
  int exit_code; /* -1 when killed by a signal or not started */
  int signal;
  int timed_out;
  int interrupted; /* the run was asked to stop (SIGINT/SIGTERM): killed */
  int64_t duration_ms;
  rb_cmd_buf out, err;
  char error[256]; /* could not start */
  rb_cmd_env env;  /* owned here so a raise while building it frees it */
} rb_cmd_result;

/* Runs s to completion, timeout or a stop request (rb_stop_requested)
 * and fills r (its buffers are the
 * caller's to free: rb_cmd_result_clear). Returns 0, or -1 when the
 * command could not be started (r->error says why). The command's group is
 * reported to the supervisor while it runs, and killed on timeout. */
int rb_cmd_execute(const rb_cmd_spec *s, rb_cmd_result *r);
/* Frees r's output buffers (not its env). NULL-safe. */
void rb_cmd_result_clear(rb_cmd_result *r);

#endif
