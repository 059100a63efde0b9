/* plan.c: the executor's side of plans: a dry-run records its path and
 * writes as they happen; an exec that follows a plan compares each step and
 * each write with it before the step starts or the write is sent. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/plan.h"
#include "runner/base/redact.h"
#include "runner/base/sha256.h"
#include "runner/base/util.h"

struct rb_plan_state {
  int recording;        /* dry-run: path and writes are recorded */
  json_t *path;         /* recorded: one entry per step that ended */
  json_t *writes;       /* recorded: one entry per write, in order */
  json_t *preflight;    /* recorded: every preflight result */
  json_t *params;       /* recorded: the run's params, from its started event */
  const json_t *follow; /* exec --plan: the plan this run must follow */
  size_t next_step, next_write;
  char diverged[2048]; /* why the run left the plan; sticky */
};

void rb_plan_free(rb_plan_state *p)
{
  if (p == NULL)
    return;
  json_decref(p->path);
  json_decref(p->writes);
  json_decref(p->preflight);
  json_decref(p->params);
  free(p);
}

int rb_plan_begin(rb_exec *ex)
{
  int rec = ex->o->mode == RB_MODE_DRY_RUN;
  int follow = ex->o->mode == RB_MODE_EXEC && ex->o->plan != NULL;
  if (!rec && !follow)
    return 0;
  rb_plan_state *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -1;
  p->recording = rec;
  p->follow = follow ? ex->o->plan : NULL;
  p->path = json_array();
  p->writes = json_array();
  p->preflight = json_array();
  ex->plan = p;
  return 0;
}

/* -- what a step did, as the plan keeps it --------------------------------- */

/* The step-ending events: decision, finished, failed (an operation's events
 * of the same names carry "op" and are not steps). */
static json_t *path_entry(const rb_step *s, const char *event, const json_t *d)
{
  json_t *e = json_pack("{s:s, s:s, s:s}", "step", s->id, "kind",
                        rb_step_kind_name(s->kind), "event", event);
  static const char *const keep[] = {"branch",   "next",  "outcome",  "phase",
                                     "message",  "to",    "value",    "approved",
                                     "on_error", "error", "approval", NULL};
  for (size_t i = 0; keep[i]; i++) {
    json_t *v = json_object_get(d, keep[i]);
    if (v)
      json_object_set(e, keep[i], v);
  }
  return e;
}

void rb_plan_on_event(rb_exec *ex, const rb_step *s, const char *event, const json_t *d)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || !p->recording)
    return;
  if (s == NULL && strcmp(event, "started") == 0) {
    json_decref(p->params);
    p->params = json_deep_copy(json_object_get(d, "params"));
    return;
  }
  if (s == NULL || json_object_get(d, "op") != NULL)
    return;
  if (strcmp(event, "decision") != 0 && strcmp(event, "finished") != 0 &&
      strcmp(event, "failed") != 0)
    return;
  json_t *e = path_entry(s, event, d);
  rb_redact_json(e);
  json_array_append_new(p->path, e);
}

/* -- writes ----------------------------------------------------------------- */

static void copy_keys(json_t *dst, const json_t *src, const char *const *keys)
{
  for (size_t i = 0; keys[i]; i++) {
    json_t *v = json_object_get(src, keys[i]);
    if (v)
      json_object_set(dst, keys[i], v);
  }
}

/* A string with each occurrence of run written as {run}. */
static json_t *neutral_str(const char *s, const char *run)
{
  size_t n = strlen(run);
  const char *hit = n ? strstr(s, run) : NULL;
  if (hit == NULL)
    return json_string(s);
  size_t cap = strlen(s) + 1, used = 0;
  char *out = malloc(cap);
  while (out && hit) {
    memcpy(out + used, s, (size_t)(hit - s));
    used += (size_t)(hit - s);
    memcpy(out + used, "{run}", 5); /* never longer than a run id: fits */
    used += 5;
    s = hit + n;
    hit = strstr(s, run);
  }
  if (out)
    snprintf(out + used, cap - used, "%s", s);
  json_t *v = out ? json_string(out) : json_string("{out of memory}");
  free(out);
  return v;
}

json_t *rb_plan_neutral(const json_t *v, const char *run)
{
  if (run == NULL || strlen(run) < 5 ||
      !(json_is_string(v) || json_is_array(v) || json_is_object(v)))
    return json_deep_copy(v);
  if (json_is_string(v))
    return neutral_str(json_string_value(v), run);
  json_t *out = json_is_array(v) ? json_array() : json_object();
  size_t i;
  const char *k;
  json_t *x;
  if (json_is_array(v)) {
    json_array_foreach(v, i, x) json_array_append_new(out, rb_plan_neutral(x, run));
  } else {
    json_object_foreach((json_t *)v, k, x)
        json_object_set_new(out, k, rb_plan_neutral(x, run));
  }
  return out;
}

/* Finishes one write: its digest over the exact (unredacted) fields, the
 * run's own id written as {run}, then the redacted copy the plan shows. */
static json_t *seal(json_t *core, const char *run, const json_t *show_extra)
{
  json_t *hashed = rb_plan_neutral(core, run);
  char *s = json_dumps(hashed, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  json_decref(hashed);
  char hex[65];
  rb_sha256_hex(s ? s : "", s ? strlen(s) : 0, hex);
  free(s);
  if (show_extra) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)show_extra, k, v) json_object_set(core, k, v);
  }
  rb_redact_json(core);
  json_object_set_new(core, "digest", json_string(hex));
  return core;
}

/* The writes an operation's would_run (dry-run) or started (exec) event
 * describes, in the one form both compare in: ssh one per host; http by
 * method, URL and the body's SHA-256; cmd by argv and env names. */
json_t *rb_plan_writes_of(const char *step, const char *run, const json_t *d)
{
  static const char *const http_keys[] = {"method", "url", "url_from", "body_plan_sha256",
                                          NULL};
  static const char *const cmd_keys[] = {"command", "env", NULL};
  static const char *const ssh_keys[] = {"host", "command", NULL}; /* would_run: one */
  json_t *out = json_array();
  const char *op = json_string_value(json_object_get(d, "op"));
  if (op == NULL)
    op = "?";
  const json_t *hosts = json_object_get(d, "hosts");
  if (strcmp(op, "ssh") == 0 && json_array_size(hosts) > 0) { /* started: the fan-out */
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h)
    {
      json_array_append_new(
          out, seal(json_pack("{s:s, s:s, s:O, s:O?}", "step", step, "op", "ssh", "host",
                              h, "command", json_object_get(d, "command")),
                    run, NULL));
    }
    return out;
  }
  json_t *core = json_pack("{s:s, s:s}", "step", step, "op", op);
  json_t *extra = NULL;
  if (strcmp(op, "http") == 0) {
    copy_keys(core, d, http_keys);
    if (json_object_get(core, "body_plan_sha256") == NULL) /* fail closed: all bytes */
      json_object_set(core, "body_sha256", json_object_get(d, "body_sha256"));
    extra = json_pack("{s:O?, s:O?}", "body_sha256", json_object_get(d, "body_sha256"),
                      "body", json_object_get(d, "body"));
  } else if (strcmp(op, "cmd") == 0) {
    copy_keys(core, d, cmd_keys);
  } else if (strcmp(op, "ssh") == 0) {
    copy_keys(core, d, ssh_keys);
  } else { /* an operation this file does not know: all of it, to fail closed */
    json_object_update(core, (json_t *)d);
    json_object_del(core, "preflight");
  }
  json_array_append_new(out, seal(core, run, extra));
  json_decref(extra);
  return out;
}

/* dry-run: a flag change's note names the flag and its states; they join
 * the write the step sent last. */
static void note_flag(rb_plan_state *p, const char *step, const json_t *d)
{
  size_t n = json_array_size(p->writes);
  json_t *last = n ? json_array_get(p->writes, n - 1) : NULL;
  if (last == NULL || strcmp(json_string_value(json_object_get(last, "step")), step) != 0)
    return;
  json_t *f = json_pack("{s:O?, s:O?, s:O?, s:O?}", "flag", json_object_get(d, "flag"),
                        "environment", json_object_get(d, "environment"), "from",
                        json_object_get(d, "before"), "to", json_object_get(d, "wanted"));
  json_object_set_new(last, "flag", f);
}

static void record_op(rb_plan_state *p, const char *step, const char *run,
                      const char *event, const json_t *d)
{
  const char *op = json_string_value(json_object_get(d, "op"));
  if (strcmp(event, "note") == 0 && op && strcmp(op, "flags") == 0) {
    note_flag(p, step, d);
    return;
  }
  if (strcmp(event, "would_run") != 0 || op == NULL)
    return;
  json_t *w = rb_plan_writes_of(step, run, d);
  json_array_extend(p->writes, w);
  json_decref(w);
  const json_t *pf = json_object_get(d, "preflight");
  if (pf) {
    json_t *e = json_deep_copy(pf);
    json_object_set_new(e, "step", json_string(step));
    rb_redact_json(e);
    json_array_append_new(p->preflight, e);
  }
}

static int diverge(rb_exec *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int diverge(rb_exec *ex, const char *fmt, ...)
{
  rb_plan_state *p = ex->plan;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->diverged, sizeof p->diverged, fmt, ap);
  va_end(ap);
  char *safe = rb_redact_str(p->diverged);
  fprintf(stderr, "runbook: refused by the plan: %s\n", safe ? safe : p->diverged);
  free(safe);
  rb_event_emit(ex, ex->cur, "note", -1,
                json_pack("{s:s, s:s, s:s}", "plan",
                          json_string_value(json_object_get(p->follow, "plan")),
                          "plan_diverged", p->diverged, "message",
                          "the run left its plan; nothing more is sent"));
  return -1;
}

/* exec --plan: each write must be the plan's next one, or it is not sent. */
static int check_op(rb_exec *ex, const char *step, const json_t *d)
{
  rb_plan_state *p = ex->plan;
  if (p->diverged[0])
    return -1; /* nothing more leaves once the run left the plan */
  const json_t *planned = json_object_get(p->follow, "writes");
  json_t *now = rb_plan_writes_of(step, ex->o->run_id, d);
  size_t i;
  json_t *w;
  int rc = 0;
  json_array_foreach(now, i, w)
  {
    const json_t *want = json_array_get(planned, p->next_write);
    char a[1024], b[1024];
    rb_plan_write_line(w, b, sizeof b);
    if (want == NULL) {
      rc = diverge(ex, "write %zu is not in the plan (it has %zu): now %s",
                   p->next_write + 1, json_array_size(planned), b);
      break;
    }
    if (!json_equal(json_object_get(want, "digest"), json_object_get(w, "digest"))) {
      rb_plan_write_line(want, a, sizeof a);
      rc = diverge(ex, "write %zu differs: plan %s; now %s", p->next_write + 1, a, b);
      break;
    }
    p->next_write++;
  }
  json_decref(now);
  return rc;
}

int rb_plan_on_op(rb_exec *ex, const char *event, const json_t *d)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || ex->cur == NULL)
    return 0;
  if (p->recording) {
    record_op(p, ex->cur->id, ex->o->run_id, event, d);
    return 0;
  }
  if (p->follow && strcmp(event, "started") == 0 && json_object_get(d, "op"))
    return check_op(ex, ex->cur->id, d);
  return 0;
}

/* -- following: steps, the end, gates --------------------------------------- */

int rb_plan_step(rb_exec *ex, const rb_step *s, char *err, size_t len)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || p->follow == NULL)
    return 0;
  if (p->diverged[0])
    return rb_err(err, len, "%s", p->diverged);
  const json_t *path = json_object_get(p->follow, "path");
  const json_t *want = json_array_get(path, p->next_step);
  const char *id = json_string_value(json_object_get(want, "step"));
  if (id == NULL || strcmp(id, s->id) != 0) {
    char a[1024] = "the end of the plan";
    if (want)
      rb_plan_step_line(want, a, sizeof a);
    ex->cur = s;
    diverge(ex, "step %zu differs: plan %s; now step '%s'", p->next_step + 1, a, s->id);
    return rb_err(err, len, "%s", p->diverged);
  }
  p->next_step++;
  return 0;
}

const char *rb_plan_diverged(const rb_exec *ex)
{
  return ex->plan && ex->plan->diverged[0] ? ex->plan->diverged : NULL;
}

json_t *rb_plan_gate_info(rb_exec *ex)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || p->follow == NULL)
    return NULL;
  json_t *left = json_array();
  const json_t *writes = json_object_get(p->follow, "writes");
  for (size_t i = p->next_write; i < json_array_size(writes); i++) {
    char line[1024];
    rb_plan_write_line(json_array_get(writes, i), line, sizeof line);
    json_array_append_new(left, json_string(line));
  }
  return json_pack("{s:O, s:O, s:o}", "id", json_object_get(p->follow, "plan"), "digest",
                   json_object_get(p->follow, "digest"), "writes_remaining", left);
}

/* The recorded plan of this dry-run (new reference), for plan_file.c. */
json_t *rb_plan_recorded(const rb_exec *ex)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || !p->recording)
    return NULL;
  return json_pack("{s:O, s:O, s:O, s:O?}", "path", p->path, "writes", p->writes,
                   "preflight", p->preflight, "params", p->params);
}

/* exec --plan at the end: the writes the plan still had. */
size_t rb_plan_unsent(const rb_exec *ex)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || p->follow == NULL)
    return 0;
  size_t n = json_array_size(json_object_get(p->follow, "writes"));
  return n > p->next_write ? n - p->next_write : 0;
}

void rb_plan_gate_say(rb_exec *ex, const json_t *req)
{
  const json_t *p = json_object_get(req, "plan");
  if (p == NULL)
    return;
  const json_t *left = json_object_get(p, "writes_remaining");
  rb_console_say(ex, "      plan %s (digest %.12s): %zu planned writes remain:",
                 json_string_value(json_object_get(p, "id")),
                 json_string_value(json_object_get(p, "digest")), json_array_size(left));
  size_t i;
  json_t *w;
  json_array_foreach(left, i, w) rb_console_say(ex, "        %s", json_string_value(w));
}

void rb_plan_gate_note(rb_exec *ex, json_t *detail)
{
  rb_plan_state *p = ex->plan;
  if (p == NULL || p->follow == NULL)
    return;
  json_object_set(detail, "plan", json_object_get(p->follow, "plan"));
  json_object_set(detail, "plan_digest", json_object_get(p->follow, "digest"));
}
