/* digest.c: the brief timeline. Keeps the events a postmortem cites and folds
 * a wait's polls (reads, failed-poll notes) into the one row of its verdict. */
#include "runner/digest.h"

#include <stdlib.h>
#include <string.h>

#include "runner/readings.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

typedef struct {
  const char *run; /* only this run, or NULL */
  int full;
  json_t *rows;
} digest_ctx;

static const char *s_of(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static int is(const char *a, const char *b)
{
  return a && b && strcmp(a, b) == 0;
}

/* What row an event makes in the brief timeline, or NULL for none. */
static const char *brief_kind(const json_t *ev)
{
  const char *event = s_of(ev, "event"), *kind = s_of(ev, "kind");
  const json_t *d = json_object_get(ev, "detail");
  if (is(event, "alert_resolved") && kind == NULL)
    return "alert"; /* runbook serve: the alert that opened the incident cleared */
  if (is(kind, "run"))
    return is(event, "note") && !s_of(d, "phase") ? "note" : "run";
  /* A page's resolve (exec's note, a dry-run's would_run): paging, not a fix. */
  if ((is(event, "note") || is(event, "would_run")) && is(s_of(d, "op"), "page"))
    return "page";
  /* The request a page would send (dry-run, drill): a write, but no fix. */
  if (is(event, "would_run") && is(s_of(d, "op"), "http") &&
      (is(kind, "escalate") || is(kind, "resolved") || is(kind, "escalated")))
    return "page_write";
  if (is(event, "decision"))
    return json_object_get(d, "polls") ? "poll" : "decision";
  if (is(event, "approved") || is(event, "denied"))
    return "approval";
  if (is(event, "failed"))
    return "failure";
  if (is(event, "would_run"))
    return "write";
  if (is(event, "finished") && s_of(d, "phase"))
    return "status";
  if (is(event, "finished") && s_of(d, "to"))
    return "escalation";
  /* A write's result: an action's operation that ended, or the action. */
  if (is(kind, "action") && is(event, "finished"))
    return "write";
  if (is(event, "note") && s_of(d, "phase"))
    return "status";
  return NULL;
}

static void add_row(digest_ctx *x, json_t *ev, const char *what, const char *text)
{
  json_array_append_new(x->rows, json_pack("{s:s?, s:s?, s:s?, s:s, s:s, s:O}", "ts",
                                           s_of(ev, "ts"), "run", s_of(ev, "run"), "step",
                                           s_of(ev, "step"), "what", what, "text", text,
                                           "event", ev));
}

/* "verify: polled 20 times over 4m45s, 3.1% -> 0.4%: <question> -> true,
 * taking 'x'" (the readings span when the condition returned readings). */
static char *poll_text(json_t *ev, const char *described)
{
  const json_t *d = json_object_get(ev, "detail");
  json_int_t n = json_integer_value(json_object_get(d, "polls"));
  json_int_t ms = json_integer_value(json_object_get(d, "waited_ms"));
  char took[64], *out = NULL;
  rb_format_elapsed((int64_t)ms * 1000, took, sizeof took);
  const char *step = s_of(ev, "step") ? s_of(ev, "step") : "wait";
  const char *rest = described + (strncmp(described, step, strlen(step)) == 0
                                      ? strlen(step) + (described[strlen(step)] ? 2 : 0)
                                      : 0);
  char span[460];
  rb_readings_span(d, span, sizeof span);
  size_t len = strlen(rest) + strlen(step) + strlen(span) + 96;
  out = malloc(len);
  /* A drill's decision says "after 45 s (simulated)" itself. */
  int sim = json_is_true(json_object_get(d, "simulated"));
  if (out)
    snprintf(out, len, "%s: polled %lld time%s%s%s%s%s: %s", step, (long long)n,
             n == 1 ? "" : "s", sim ? "" : " over ", sim ? "" : took, span[0] ? ", " : "",
             span, rest);
  return out;
}

static int on_event(json_t *ev, void *arg)
{
  digest_ctx *x = arg;
  if (rb_timeline_is_header(ev))
    return 0;
  if (x->run && !is(s_of(ev, "run"), x->run))
    return 0;
  const char *what = x->full ? "event" : brief_kind(ev);
  if (what == NULL)
    return 0;
  char *text = rb_timeline_describe(ev);
  if (text == NULL)
    return -1;
  if (is(what, "poll")) {
    char *p = poll_text(ev, text);
    free(text);
    if (p == NULL)
      return -1;
    text = p;
  }
  add_row(x, ev, what, text);
  free(text);
  return 0;
}

json_t *rb_digest_load(const char *path, const char *run, int full, char *err,
                       size_t errlen)
{
  digest_ctx x = {run, full, json_array()};
  if (rb_timeline_read(path, on_event, &x, NULL, err, errlen) != 0) {
    json_decref(x.rows);
    return NULL;
  }
  if (run && json_array_size(x.rows) == 0) {
    json_decref(x.rows);
    rb_err(err, errlen, "%s has no events of run %s", path, run);
    return NULL;
  }
  return x.rows;
}

static void md_cell(const char *s, FILE *out)
{
  for (; s && *s; s++) {
    if (*s == '|')
      fputc('\\', out);
    fputc(*s == '\n' ? ' ' : *s, out);
  }
}

void rb_digest_table(const json_t *rows, FILE *out)
{
  fputs("| Time (UTC) | Event |\n|------|-------|\n", out);
  char first[11] = "";
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    const char *ts = s_of(r, "ts");
    fputs("| ", out);
    if (ts && strlen(ts) >= 19) {
      if (!first[0])
        memcpy(first, ts, 10);
      if (strncmp(first, ts, 10) != 0)
        fprintf(out, "%.10s ", ts);
      fprintf(out, "%.8s", ts + 11);
    } else {
      fputs("??:??:??", out);
    }
    fputs(" | ", out);
    md_cell(s_of(r, "text"), out);
    fputs(" |\n", out);
  }
}

void rb_digest_markdown(const json_t *rows, int brief, FILE *out)
{
  fputs("## Timeline (All times UTC)\n\n", out);
  const json_t *ev = json_object_get(json_array_get(rows, 0), "event");
  if (ev == NULL) {
    fputs("_No events._\n", out);
    return;
  }
  const char *mode = s_of(ev, "mode"), *ts = s_of(ev, "ts");
  fputs("Incident ", out);
  md_cell(s_of(ev, "incident") ? s_of(ev, "incident") : "(unnamed)", out);
  fputs(", runbook ", out);
  md_cell(s_of(ev, "runbook") ? s_of(ev, "runbook") : "(unknown)", out);
  fprintf(out, ", %.10s%s%s%s", ts ? ts : "(undated)",
          mode && !is(mode, "exec") ? " (" : "", mode && !is(mode, "exec") ? mode : "",
          mode && !is(mode, "exec") ? ")" : "");
  fputs(brief ? " (brief: --full for every event)\n\n" : "\n\n", out);
  rb_digest_table(rows, out);
}
