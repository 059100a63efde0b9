/* open.c: opening a runbook: a sandbox under the configured budgets, the
 * file loaded under the load budget, and the graph validated. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/loader.h"
#include "runner/modules.h"
#include "runner/supervise.h"
#include "runner/base/util.h"

#define RB_LOAD_BUDGET_MS 10000

/* Reads the sandbox budgets from the config. */
static int limits_from_config(const rb_config *cfg, sb_limits *lim, char *err,
                              size_t errlen)
{
  long mem_mb, instr, out_kb;
  memset(lim, 0, sizeof *lim);
  /* defaults and bounds: the [sandbox] table in config_keys.c */
  if (rb_config_get_int(cfg, "sandbox", "memory_mb", &mem_mb, err, errlen) ||
      rb_config_get_int(cfg, "sandbox", "instructions", &instr, err, errlen) ||
      rb_config_get_int(cfg, "sandbox", "output_kb", &out_kb, err, errlen))
    return -1;
  lim->memory_bytes = (size_t)mem_mb << 20;
  lim->instructions = instr;
  lim->print_bytes = (size_t)out_kb << 10;
  return 0;
}

/* Creates the sandbox, loads the runbook under the load budget and
 * validates it. Returns RB_EXIT_OK with *sb_out and *m_out (the caller frees
 * both), or RB_EXIT_INVALID / RB_EXIT_FAILED with every problem, one per
 * line, in err. Prints nothing. */
int rb_runbook_open(const char *path, const rb_config *cfg, rb_host *host,
                    void (*print)(void *, const char *, int), void *print_arg, int rfd,
                    sb_state **sb_out, rb_model **m_out, char *err, size_t errlen)
{
  sb_limits lim;
  if (limits_from_config(cfg, &lim, err, errlen) != 0)
    return RB_EXIT_INVALID;
  lim.print = print;
  lim.print_arg = print_arg;
  lim.modules = rb_stdlib_modules;
  lim.internal = rb_internal_modules;
  sb_state *sb = sb_new(&lim, err, errlen);
  if (sb == NULL)
    return RB_EXIT_FAILED;
  rb_host_set(sb_lua(sb), host);
  rb_loader_install_dsl(sb);
  rb_model *m = NULL;
  int64_t deadline = rb_now_mono_ms() + RB_LOAD_BUDGET_MS;
  sb_set_deadline(sb, deadline, "loading the runbook took longer than 10 s");
  rb_supervise_step(rfd, deadline, "(load)");
  int rc = rb_loader_load(sb, path, &m, err, errlen);
  rb_supervise_ended(rfd);
  sb_set_deadline(sb, 0, NULL);
  if (rc == 0 && rb_model_validate(m, err, errlen) != 0) {
    size_t n = strlen(err);
    if (n && err[n - 1] == '\n')
      err[n - 1] = '\0';
    rc = -1;
  }
  if (rc != 0) {
    rb_model_free(m);
    sb_free(sb);
    return RB_EXIT_INVALID;
  }
  *sb_out = sb;
  *m_out = m;
  return RB_EXIT_OK;
}

/* open_runbook, printing its problems to stderr. */
int rb_runbook_load(const char *path, const rb_config *cfg, rb_host *host,
                    void (*print)(void *, const char *, int), void *print_arg,
                    sb_state **sb_out, rb_model **m_out, int rfd)
{
  char err[8192];
  int code = rb_runbook_open(path, cfg, host, print, print_arg, rfd, sb_out, m_out, err,
                             sizeof err);
  if (code != RB_EXIT_OK)
    fprintf(stderr, "%s%s\n", code == RB_EXIT_FAILED ? "runbook: " : "", err);
  return code;
}
