/* plan_file.c: plans on disk and `exec --plan`: saving a dry-run's plan
 * with the run, the checks before one is followed, the comparison of two. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/exec.h"
#include "runner/plan.h"
#include "runner/store.h"
#include "runner/base/redact.h"
#include "runner/base/sha256.h"
#include "runner/base/util.h"

static const rb_config_key plan_keys[] = {
    {"max_age", RB_CFG_DURATION, "1h", NULL, 0, 0,
     "how old a dry-run's plan may be for `exec --plan` to follow it; an older plan is "
     "refused (exit 4): make a new dry-run"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_plan = {
    "plan", "following a dry-run's plan (`exec --plan`, docs/plans.md)", plan_keys};

json_t *rb_plan_read(const char *state_dir, const char *run, int *absent, char *err,
                     size_t errlen)
{
  rb_store *st = rb_store_open_dir(state_dir, err, errlen);
  char *text = st ? rb_store_get_doc(st, run, RB_PLAN_DOC, absent, err, errlen) : NULL;
  rb_store_free(st);
  if (text == NULL)
    return NULL;
  json_error_t je;
  json_t *plan = json_loads(text, 0, &je);
  free(text);
  if (plan == NULL)
    rb_err(err, errlen, "the plan of run %s is not JSON: %s (line %d)", run, je.text,
           je.line);
  return plan;
}

/* The SHA-256 of a file's bytes (a runbook: small). Returns 0 or -1. */
int rb_plan_file_digest(const char *path, char hex[65])
{
  FILE *f = fopen(path, "rbe");
  if (f == NULL)
    return -1;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  int bad = buf == NULL;
  while (!bad) {
    if (n == cap) {
      char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
      if (nb == NULL) {
        bad = 1;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  bad = bad || ferror(f);
  fclose(f);
  if (!bad)
    rb_sha256_hex(buf, n, hex);
  free(buf);
  return bad ? -1 : 0;
}

/* -- what two plans are compared on ----------------------------------------- */

/* A path entry without what was read: values change between two looks at
 * the same world; the branch they picked must not. */
static json_t *step_key(const json_t *e, const char *run)
{
  json_t *k = rb_plan_neutral(e, run); /* a message may name its own run */
  json_object_del(k, "value");
  json_object_del(k, "error");
  return k;
}

static json_t *write_key(const json_t *w, const char *run)
{
  (void)run; /* its digest was taken with the run's id written as {run} */
  return json_pack("{s:O, s:O?}", "digest", json_object_get(w, "digest"), "flag",
                   json_object_get(w, "flag"));
}

static json_t *keys_of(const json_t *a, const char *run,
                       json_t *(*fn)(const json_t *, const char *))
{
  json_t *out = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) json_array_append_new(out, fn(v, run));
  return out;
}

/* The plan's digest: the runbook, the params, the path and the writes. */
static void plan_digest(const json_t *plan, char hex[65])
{
  const char *run = json_string_value(json_object_get(plan, "run"));
  json_t *c = json_pack("{s:O?, s:O?, s:o, s:o}", "runbook_sha256",
                        json_object_get(plan, "runbook_sha256"), "params",
                        json_object_get(plan, "params"), "path",
                        keys_of(json_object_get(plan, "path"), run, step_key), "writes",
                        keys_of(json_object_get(plan, "writes"), run, write_key));
  char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
  rb_sha256_hex(s ? s : "", s ? strlen(s) : 0, hex);
  free(s);
  json_decref(c);
}

static const char *str(const json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

void rb_plan_write_line(const json_t *w, char *out, size_t len)
{
  const char *op = str(w, "op");
  char *cmd = json_dumps(json_object_get(w, "command"), JSON_COMPACT | JSON_ENCODE_ANY);
  if (strcmp(op, "ssh") == 0)
    snprintf(out, len, "[%s] ssh %s: %s", str(w, "step"), str(w, "host"),
             str(w, "command"));
  else if (strcmp(op, "http") == 0)
    snprintf(out, len, "[%s] http %s %s (body sha256 %.12s)", str(w, "step"),
             str(w, "method"), str(w, "url"), str(w, "body_sha256"));
  else if (strcmp(op, "cmd") == 0)
    snprintf(out, len, "[%s] cmd %s", str(w, "step"), cmd ? cmd : "?");
  else
    snprintf(out, len, "[%s] %s (digest %.12s)", str(w, "step"), op, str(w, "digest"));
  free(cmd);
  const json_t *body = json_object_get(w, "body"); /* a plan's, not an intent's */
  char *b =
      body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
  if (b) {
    size_t n = strlen(out);
    snprintf(out + n, len - n, " body %.160s%s", b, strlen(b) > 160 ? "..." : "");
    free(b);
  }
  const json_t *f = json_object_get(w, "flag");
  if (f) {
    char *from = json_dumps(json_object_get(f, "from"), JSON_ENCODE_ANY);
    char *to = json_dumps(json_object_get(f, "to"), JSON_ENCODE_ANY);
    size_t n = strlen(out);
    snprintf(out + n, len - n, "; flag %s: %s -> %s, %s", str(f, "flag"),
             from ? from : "unknown", to ? to : "?", str(f, "environment"));
    free(from);
    free(to);
  }
}

void rb_plan_step_line(const json_t *e, char *out, size_t len)
{
  char *v = json_dumps(json_object_get(e, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
  snprintf(out, len, "'%s' (%s, %s)", str(e, "step"), str(e, "kind"), str(e, "event"));
  size_t n = strlen(out);
  if (json_object_get(e, "branch"))
    snprintf(out + n, len - n, " -> branch '%s' (read %s)", str(e, "branch"),
             v ? v : "nothing");
  else if (json_object_get(e, "next"))
    snprintf(out + n, len - n, " -> '%s'", str(e, "next"));
  else if (json_object_get(e, "outcome"))
    snprintf(out + n, len - n, ": %s", str(e, "outcome"));
  n = strlen(out);
  if (json_object_get(e, "message"))
    snprintf(out + n, len - n, " \"%s\"", str(e, "message"));
  free(v);
}

int rb_plan_diff(const json_t *plan, const json_t *now, char *diff, size_t len)
{
  const json_t *pa = json_object_get(plan, "path"), *na = json_object_get(now, "path");
  const char *prun = json_string_value(json_object_get(plan, "run"));
  const char *nrun = json_string_value(json_object_get(now, "run"));
  char a[1200], b[1200];
  for (size_t i = 0; i < json_array_size(pa) || i < json_array_size(na); i++) {
    const json_t *pe = json_array_get(pa, i), *ne = json_array_get(na, i);
    json_t *pk = pe ? step_key(pe, prun) : NULL, *nk = ne ? step_key(ne, nrun) : NULL;
    int same = pk && nk && json_equal(pk, nk);
    json_decref(pk);
    json_decref(nk);
    if (same)
      continue;
    snprintf(a, sizeof a, "(the plan ends)");
    snprintf(b, sizeof b, "(the run ends)");
    if (pe)
      rb_plan_step_line(pe, a, sizeof a);
    if (ne)
      rb_plan_step_line(ne, b, sizeof b);
    snprintf(diff, len, "the path differs at step %zu:\n  plan: %s\n  now:  %s", i + 1, a,
             b);
    return 1;
  }
  const json_t *pw = json_object_get(plan, "writes"),
               *nw = json_object_get(now, "writes");
  for (size_t i = 0; i < json_array_size(pw) || i < json_array_size(nw); i++) {
    const json_t *pe = json_array_get(pw, i), *ne = json_array_get(nw, i);
    json_t *pk = pe ? write_key(pe, prun) : NULL, *nk = ne ? write_key(ne, nrun) : NULL;
    int same = pk && nk && json_equal(pk, nk);
    json_decref(pk);
    json_decref(nk);
    if (same)
      continue;
    snprintf(a, sizeof a, "(no more writes)");
    snprintf(b, sizeof b, "(no more writes)");
    if (pe)
      rb_plan_write_line(pe, a, sizeof a);
    if (ne)
      rb_plan_write_line(ne, b, sizeof b);
    snprintf(diff, len, "write %zu differs:\n  plan: %s\n  now:  %s", i + 1, a, b);
    return 1;
  }
  return 0;
}

/* -- saving ----------------------------------------------------------------- */

/* Saves plan with the run in the run store; where says where. */
static int save(rb_exec *ex, const json_t *plan, char *where, size_t wlen, char *err,
                size_t errlen)
{
  char *text = json_dumps(plan, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (text == NULL)
    return rb_err(err, errlen, "out of memory");
  rb_store *st = ex->o->store, *own = NULL;
  if (st == NULL)
    st = own = rb_store_open_dir(ex->o->state_dir, err, errlen);
  size_t n = strlen(text);
  text[n] = '\n'; /* the NUL becomes the file's last newline: n + 1 bytes */
  int rc = st ? rb_store_put_doc(st, ex->o->run_id, RB_PLAN_DOC, text, n + 1, where, wlen,
                                 err, errlen)
              : -1;
  free(text);
  rb_store_free(own);
  return rc;
}

/* The whole plan of a dry-run that ended. */
static json_t *build(rb_exec *ex, int finished, rb_outcome outcome)
{
  json_t *plan = rb_plan_recorded(ex);
  if (plan == NULL)
    return NULL;
  char ts[32], hex[65] = "", real[PATH_MAX];
  int64_t now = rb_now_wall_ms();
  rb_format_ts(now, ts, sizeof ts);
  if (rb_plan_file_digest(ex->o->runbook_path, hex) != 0)
    hex[0] = '\0';
  const char *file = realpath(ex->o->runbook_path, real) ? real : ex->o->runbook_path;
  json_t *meta =
      json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s}", "format",
                1, "plan", ex->o->run_id, "run", ex->o->run_id, "mode", "dry-run",
                "incident", ex->o->incident, "runbook", ex->m->name, "file", file,
                "runbook_sha256", hex, "created", ts, "created_ms", (json_int_t)now,
                "finished", finished, "outcome", rb_outcome_name(outcome));
  json_object_update(plan, meta);
  json_decref(meta);
  if (ex->would_fail)
    json_object_set(plan, "would_fail", ex->would_fail);
  /* A parameter that held a secret is kept redacted: such a plan cannot
   * give the exec its parameters back, and is refused there. */
  json_t *params = json_object_get(plan, "params");
  json_t *shown = json_deep_copy(params ? params : json_null());
  rb_redact_json(shown);
  if (!json_equal(shown, params))
    json_object_set_new(plan, "params_redacted", json_true());
  json_object_set_new(plan, "params", shown);
  plan_digest(plan, hex);
  json_object_set_new(plan, "digest", json_string(hex));
  return plan;
}

void rb_plan_finish(rb_exec *ex, int finished, rb_outcome outcome, json_t *fin)
{
  if (ex->plan == NULL)
    return;
  if (ex->o->mode == RB_MODE_EXEC) { /* following a plan */
    json_object_set_new(fin, "plan",
                        json_pack("{s:O, s:O}", "id",
                                  json_object_get(ex->o->plan, "plan"), "digest",
                                  json_object_get(ex->o->plan, "digest")));
    if (rb_plan_diverged(ex))
      json_object_set_new(fin, "plan_diverged", json_string(rb_plan_diverged(ex)));
    return;
  }
  json_t *plan = build(ex, finished, outcome);
  char path[4400], err[1024];
  if (plan == NULL || save(ex, plan, path, sizeof path, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: the plan could not be saved: %s\n",
            plan ? err : "out of memory");
    json_decref(plan);
    return;
  }
  json_object_set_new(
      fin, "plan",
      json_pack("{s:s, s:O, s:s, s:I, s:b}", "id", ex->o->run_id, "digest",
                json_object_get(plan, "digest"), "file", path, "writes",
                (json_int_t)json_array_size(json_object_get(plan, "writes")),
                "executable", finished && ex->would_fail == NULL));
  json_decref(plan);
}

int rb_plan_exit(rb_exec *ex, const json_t *p, int code)
{
  if (ex->plan == NULL)
    return code;
  if (ex->o->mode == RB_MODE_EXEC) {
    if (rb_plan_diverged(ex))
      return RB_EXIT_MISMATCH;
    size_t unsent = rb_plan_unsent(ex);
    if (unsent)
      fprintf(stderr, "runbook: the run ended with %zu of its plan's writes not sent\n",
              unsent);
    return code;
  }
  if (p == NULL || ex->o->plan_check)
    return code;
  rb_console_say(ex, "plan: %s (%lld writes, digest %.12s) saved in %s", str(p, "id"),
                 (long long)json_integer_value(json_object_get(p, "writes")),
                 str(p, "digest"), str(p, "file"));
  if (json_is_true(json_object_get(p, "executable")))
    rb_console_say(ex, "      execute it with: runbook exec %s --plan %s", ex->m->name,
                   str(p, "id"));
  else
    rb_console_say(ex, "      not executable: %s",
                   ex->would_fail ? "a preflight failed" : "the dry-run did not finish");
  return code;
}
