/* plan_exec.c: `runbook exec NAME --plan RUN`: the checks a saved plan must
 * pass, a dry-run pass that must reproduce it, then the real run. */
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/plan.h"
#include "runner/store.h"
#include "runner/base/util.h"

/* -- which run it is when it has no plan ---------------------------------------- */

typedef struct {
  const char *run;
  rb_run_info info;
  int found;
} run_find;

static int find_cb(const rb_run_info *r, void *arg)
{
  run_find *f = arg;
  if (strcmp(r->run, f->run) != 0)
    return 0;
  f->info = *r;
  f->found = 1;
  return 1;
}

/* Why run has no plan: not a dry-run, not finished, or no such run. */
static int no_plan(const char *state_dir, const char *run, char *err, size_t errlen)
{
  char e[512];
  run_find f;
  memset(&f, 0, sizeof f);
  f.run = run;
  rb_store *st = rb_store_open_dir(state_dir, e, sizeof e);
  if (st != NULL)
    rb_store_list_runs(st, find_cb, &f, e, sizeof e);
  rb_store_free(st);
  if (!f.found)
    return rb_err(err, errlen, "no run %s in %s (a plan is the run id of a dry-run)", run,
                  state_dir);
  if (strcmp(f.info.mode, "dry-run") != 0)
    return rb_err(err, errlen,
                  "run %s was a%s %s, not a dry-run: only a dry-run makes a plan", run,
                  f.info.mode[0] == 'e' ? "n" : "", f.info.mode);
  return rb_err(err, errlen, "dry-run %s did not finish (%s): it left no plan", run,
                f.info.state);
}

/* -- the checks ---------------------------------------------------------------- */

static int refuse(int *code, int c, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(int *code, int c, char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  *code = c;
  return -1;
}

/* Age, preflights, and that the dry-run finished. */
static int check_state(const json_t *plan, const rb_config *cfg, const char *run,
                       int *code, char *err, size_t errlen)
{
  if (!json_is_true(json_object_get(plan, "finished")))
    return refuse(code, RB_EXIT_ABORTED, err, errlen,
                  "dry-run %s did not finish (it ended %s): its plan is not followed",
                  run, json_string_value(json_object_get(plan, "outcome")));
  const json_t *wf = json_object_get(plan, "would_fail");
  if (json_array_size(wf) > 0)
    return refuse(code, RB_EXIT_ABORTED, err, errlen,
                  "dry-run %s found writes that would fail (%s ...): fix them and make a "
                  "new dry-run",
                  run, json_string_value(json_array_get(wf, 0)));
  if (json_is_true(json_object_get(plan, "params_redacted")))
    return refuse(code, RB_EXIT_ABORTED, err, errlen,
                  "plan %s keeps a parameter redacted (it held a secret), so it cannot "
                  "give the exec its parameters",
                  run);
  int64_t max_ms, age;
  char e[512];
  if (rb_config_get_duration(cfg, "plan", "max_age", &max_ms, e, sizeof e) != 0)
    return refuse(code, RB_EXIT_INVALID, err, errlen, "%s", e);
  age =
      rb_now_wall_ms() - (int64_t)json_integer_value(json_object_get(plan, "created_ms"));
  if (age > max_ms) {
    char a[32], m[32];
    rb_format_elapsed(age * 1000, a, sizeof a);
    rb_format_elapsed(max_ms * 1000, m, sizeof m);
    return refuse(code, RB_EXIT_ABORTED, err, errlen,
                  "plan %s is stale: made %s ago (%s), [plan] max_age is %s; make a new "
                  "dry-run",
                  run, a, json_string_value(json_object_get(plan, "created")), m);
  }
  return 0;
}

/* The same runbook file, with the same bytes. */
static int check_runbook(const json_t *plan, const char *path, const char *run, int *code,
                         char *err, size_t errlen)
{
  char real[PATH_MAX], hex[65];
  const char *file = json_string_value(json_object_get(plan, "file"));
  const char *was = json_string_value(json_object_get(plan, "runbook_sha256"));
  if (realpath(path, real) == NULL || file == NULL || strcmp(real, file) != 0)
    return refuse(code, RB_EXIT_ABORTED, err, errlen,
                  "plan %s is of runbook %s (%s), not of %s", run,
                  json_string_value(json_object_get(plan, "runbook")), file ? file : "?",
                  path);
  if (rb_plan_file_digest(path, hex) != 0 || was == NULL || strcmp(hex, was) != 0)
    return refuse(code, RB_EXIT_ABORTED, err, errlen,
                  "the runbook %s changed since plan %s was made (sha256 %.12s then, "
                  "%.12s now): make a new dry-run",
                  path, run, was ? was : "?", hex);
  return 0;
}

json_t *rb_plan_load_checked(const char *state_dir, const rb_config *cfg, const char *run,
                             const char *runbook_path, int *code, char *err,
                             size_t errlen)
{
  int absent = 0;
  *code = RB_EXIT_USAGE;
  json_t *plan = rb_plan_read(state_dir, run, &absent, err, errlen);
  if (plan == NULL) {
    if (absent)
      no_plan(state_dir, run, err, errlen);
    else
      *code = RB_EXIT_INVALID;
    return NULL;
  }
  if (!json_is_object(plan) || json_integer_value(json_object_get(plan, "format")) != 1) {
    *code = RB_EXIT_INVALID;
    rb_err(err, errlen, "the plan of run %s is not one this version reads", run);
  } else if (check_state(plan, cfg, run, code, err, errlen) == 0 &&
             check_runbook(plan, runbook_path, run, code, err, errlen) == 0) {
    *code = RB_EXIT_OK;
    return plan;
  }
  json_decref(plan);
  return NULL;
}

/* -- parameters ------------------------------------------------------------------ */

/* A parameter's typed value as --var text; numbers round-trip exactly. */
static int as_text(const json_t *v, char *buf, size_t len)
{
  if (json_is_string(v))
    return rb_fmt(buf, len, "%s", json_string_value(v));
  if (json_is_integer(v))
    return rb_fmt(buf, len, "%lld", (long long)json_integer_value(v));
  if (json_is_real(v))
    return rb_fmt(buf, len, "%.17g", json_real_value(v));
  if (json_is_boolean(v))
    return rb_fmt(buf, len, "%s", json_is_true(v) ? "true" : "false");
  return -1;
}

/* Whether --var text means the plan's value v. */
static int same_value(const json_t *v, const char *text)
{
  char *end;
  if (json_is_integer(v)) {
    long long n = strtoll(text, &end, 10);
    return *text && *end == '\0' && n == json_integer_value(v);
  }
  if (json_is_real(v)) {
    double d = strtod(text, &end);
    return *text && *end == '\0' && d == json_real_value(v);
  }
  char buf[4096];
  return as_text(v, buf, sizeof buf) == 0 && strcmp(buf, text) == 0;
}

json_t *rb_plan_vars(const json_t *plan, const json_t *explicit_vars, char *err,
                     size_t errlen)
{
  const json_t *params = json_object_get(plan, "params");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)explicit_vars, k, v)
  {
    const json_t *p = json_object_get(params, k);
    if (p == NULL || !same_value(p, json_string_value(v))) {
      char was[4096] = "(not set)";
      if (p)
        as_text(p, was, sizeof was);
      rb_err(err, errlen,
             "--var %s=%s differs from the plan's %s=%s: a plan runs with the parameters "
             "it was made with (make a new dry-run to change them)",
             k, json_string_value(v), k, was);
      return NULL;
    }
  }
  json_t *vars = json_object();
  json_object_foreach((json_t *)params, k, v)
  {
    char buf[4096];
    if (as_text(v, buf, sizeof buf) == 0)
      json_object_set_new(vars, k, json_string(buf));
  }
  return vars;
}

/* -- exec --plan ------------------------------------------------------------------ */

/* The dry-run pass: the same runbook, parameters and incident, reads only.
 * Returns 0 when its plan equals the saved one, else the exit code. */
static int check_pass(const rb_run_opts *o, const json_t *vars)
{
  char id[64], err[2048], diff[3000];
  rb_new_id(id, sizeof id);
  const char *plan_id = json_string_value(json_object_get(o->plan, "plan"));
  if (!o->quiet && !o->json_stream)
    printf("plan %s: checking it again with a dry-run (run %s) before any write\n",
           plan_id, id);
  fflush(stdout);
  rb_run_opts c = *o;
  c.mode = RB_MODE_DRY_RUN;
  c.run_id = id;
  c.vars = (json_t *)vars;
  c.plan = NULL;
  c.plan_check = 1;
  int code = rb_run_execute(&c);
  int absent = 0;
  json_t *now = rb_plan_read(o->state_dir, id, &absent, err, sizeof err);
  int rc = 0;
  if (now == NULL || !json_is_true(json_object_get(now, "finished"))) {
    fprintf(stderr,
            "runbook: plan %s refused before any write: the dry-run pass %s did not "
            "finish (exit %d)\n",
            plan_id, id, code);
    rc = code ? code : RB_EXIT_FAILED;
  } else if (code == RB_EXIT_WOULD_FAIL) {
    fprintf(stderr, "runbook: plan %s refused before any write: a preflight now fails\n",
            plan_id);
    rc = RB_EXIT_MISMATCH;
  } else if (rb_plan_diff(o->plan, now, diff, sizeof diff)) {
    fprintf(stderr,
            "runbook: plan %s refused before any write: the world changed since the plan "
            "(dry-run pass %s)\n%s\n",
            plan_id, id, diff);
    rc = RB_EXIT_MISMATCH;
  }
  json_decref(now);
  return rc;
}

int rb_plan_execute(const rb_run_opts *o)
{
  char err[4096];
  json_t *vars = rb_plan_vars(o->plan, o->vars, err, sizeof err);
  if (vars == NULL) {
    fprintf(stderr, "runbook: plan refused: %s\n", err);
    return RB_EXIT_USAGE;
  }
  int code = check_pass(o, vars);
  if (code == 0) {
    if (!o->quiet && !o->json_stream)
      printf("plan %s: the dry-run pass matches; executing it, each write checked "
             "against the plan\n",
             json_string_value(json_object_get(o->plan, "plan")));
    fflush(stdout);
    rb_run_opts x = *o;
    x.vars = vars;
    code = rb_run_execute(&x);
  }
  json_decref(vars);
  return code;
}

void rb_plan_print_request(const json_t *req, FILE *out)
{
  const json_t *p = json_object_get(req, "plan");
  if (p == NULL)
    return;
  const json_t *left = json_object_get(p, "writes_remaining");
  fprintf(out, "    plan %s (digest %.12s): %zu write%s remain%s\n",
          json_string_value(json_object_get(p, "id")),
          json_string_value(json_object_get(p, "digest")), json_array_size(left),
          json_array_size(left) == 1 ? "" : "s", json_array_size(left) == 1 ? "s" : "");
  size_t i;
  json_t *w;
  json_array_foreach(left, i, w) fprintf(out, "      %s\n", json_string_value(w));
}
