/* fuzz_loader.c: libFuzzer target for the runbook loader and validator. Each
 * input is runbook source text, loaded in a fresh sandbox with small budgets. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "runner/config.h"
#include "runner/loader.h"
#include "runner/model.h"
#include "runner/modules.h"
#include "runner/run.h"
#include "sandbox/sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static rb_config *g_cfg;
static char g_path[64];

/* Loading may not record anything: stdlib gates refuse side effects while a
 * runbook loads, so emit only has to exist. */
static int fuzz_emit(rb_host *h, const char *event, json_t *detail)
{
  (void)h;
  (void)event;
  json_decref(detail);
  return 0;
}

static void fuzz_print(void *arg, const char *text, int is_warning)
{
  (void)arg;
  (void)text;
  (void)is_warning;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  g_cfg = rb_config_new_empty();
  /* The loader reads a path; one scratch file per fuzzing process. */
  snprintf(g_path, sizeof g_path, "/tmp/fuzz_loader.%ld.lua", (long)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  FILE *f = fopen(g_path, "wb");
  if (f == NULL)
    return 0;
  if (size > 0 && fwrite(data, 1, size, f) != size) {
    fclose(f);
    return 0;
  }
  fclose(f);

  char err[8192];
  sb_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.memory_bytes = 8u << 20;
  lim.instructions = 2000000;
  lim.print_bytes = 4096;
  lim.print = fuzz_print;
  lim.modules = rb_stdlib_modules;
  sb_state *sb = sb_new(&lim, err, sizeof err);
  if (sb == NULL)
    return 0;
  rb_host host;
  memset(&host, 0, sizeof host);
  host.mode = RB_MODE_DRILL;
  host.config = g_cfg;
  host.incident = "fuzz";
  host.run_id = "fuzz";
  host.emit = fuzz_emit;
  rb_host_set(sb_lua(sb), &host);
  rb_loader_install_dsl(sb);
  sb_set_deadline(sb, rb_now_mono_ms() + 2000, "loading took longer than 2 s");
  rb_model *m = NULL;
  if (rb_loader_load(sb, g_path, &m, err, sizeof err) == 0) {
    char problems[4096];
    rb_model_validate(m, problems, sizeof problems);
    /* Exercise the step-table lookups the executor does next. */
    for (size_t i = 0; i < m->nsteps; i++) {
      rb_loader_push_step(sb, m->steps[i].id);
      lua_pop(sb_lua(sb), 1);
    }
  }
  rb_model_free(m);
  sb_free(sb);
  return 0;
}
