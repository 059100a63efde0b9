/* postmortem.c: `runbook postmortem INCIDENT`, the postmortem document in
 * markdown with what the timeline knows filled in and prompts for the rest. */
#include "runner/postmortem.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/digest.h"
#include "runner/base/util.h"

static const char *s_of(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static int is(const char *a, const char *b)
{
  return a && b && strcmp(a, b) == 0;
}

/* Seconds since the epoch for "2026-11-22T09:36:08.312Z"; -1 if malformed. */
static double ts_seconds(const char *ts)
{
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (ts == NULL || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
                           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double ms = 0;
  if (ts[19] == '.')
    ms = atof(ts + 19);
  return (double)timegm(&tm) + ms;
}

static void put_since(FILE *out, const char *from, const char *to)
{
  double a = ts_seconds(from), b = ts_seconds(to);
  char buf[64] = "?";
  if (a >= 0 && b >= a)
    rb_format_elapsed((int64_t)((b - a) * 1e6), buf, sizeof buf);
  fputs(buf, out);
}

/* The facts the document is built from, picked out of the brief rows. */
typedef struct {
  const json_t *first, *last;   /* first and last rows */
  const char *detected;         /* ts of the first run's start */
  const char *mitigated;        /* ts of the first write */
  const char *run_resolved;     /* ts of the Resolved update or resolved outcome */
  const char *alert_resolved;   /* ts of serve's first alert_resolved note */
  const char *alert_via;        /* its route: "/alerts/alertmanager" */
  const char *resolved;         /* the earlier of the two (see pick_resolved) */
  const char *outcome, *title;  /* the last run's outcome; the runbook's title */
  const char *actor, *severity; /* who started it; the runbook's severity param */
} facts;

/* Resolved is the earlier of the run's own resolution and the alert's resolved
 * notification: the alert clearing is the monitoring's word that the symptom
 * stopped (a verify may poll on after it), and when the run escalated or
 * failed it is the only word there is. Both are listed, so either can be
 * argued with. Timestamps are UTC RFC 3339 of one width: they sort as text. */
static void pick_resolved(facts *f)
{
  f->resolved = f->run_resolved;
  if (f->alert_resolved && (!f->resolved || strcmp(f->alert_resolved, f->resolved) < 0))
    f->resolved = f->alert_resolved;
}

static void gather(const json_t *rows, facts *f)
{
  memset(f, 0, sizeof *f);
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    const json_t *ev = json_object_get(r, "event"), *d = json_object_get(ev, "detail");
    const char *what = s_of(r, "what"), *event = s_of(ev, "event");
    if (!f->first)
      f->first = r;
    f->last = r;
    if (is(what, "run") && is(event, "started")) {
      if (!f->detected)
        f->detected = s_of(r, "ts");
      f->title = s_of(d, "title") ? s_of(d, "title") : f->title;
      f->actor = s_of(ev, "actor");
      const json_t *sev = json_object_get(json_object_get(d, "params"), "severity");
      if (json_is_string(sev))
        f->severity = json_string_value(sev);
    }
    if (is(what, "write") && !f->mitigated)
      f->mitigated = s_of(r, "ts");
    if (is(what, "status") && is(s_of(d, "phase"), "Resolved") && !f->run_resolved)
      f->run_resolved = s_of(r, "ts");
    if (is(what, "run") && is(event, "finished")) {
      f->outcome = s_of(d, "outcome");
      if (is(f->outcome, "resolved") && !f->run_resolved)
        f->run_resolved = s_of(r, "ts");
    }
    if (is(what, "alert") && !f->alert_resolved) {
      f->alert_resolved = s_of(r, "ts");
      f->alert_via = s_of(d, "via");
    }
  }
  pick_resolved(f);
}

static void put_head(const facts *f, const char *incident, FILE *out)
{
  const char *start = s_of(f->first, "ts"), *end = s_of(f->last, "ts");
  fprintf(out, "# Postmortem: %s (%s)\n\n", f->title ? f->title : "incident", incident);
  fprintf(out, "**Date**: %.10s\n**Duration**: ", start ? start : "(unknown)");
  put_since(out, start, end);
  fprintf(out, " (first to last event on the timeline)\n**Severity**: %s\n",
          f->severity ? f->severity : "_SEV-? (say how bad, by the team's scale)_");
  fputs("**Authors**: _who wrote this_\n**Status**: Draft\n\n", out);
}

static void put_summary(const facts *f, const json_t *rows, FILE *out)
{
  const json_t *ev = json_object_get(f->first, "event");
  fprintf(out, "## Summary\n\nRunbook `%s` ran (%s) for this incident, started by %s",
          s_of(ev, "runbook") ? s_of(ev, "runbook") : "?",
          s_of(ev, "mode") ? s_of(ev, "mode") : "?", f->actor ? f->actor : "?");
  fprintf(out, "; it ended %s. %zu timeline rows below.\n\n",
          f->outcome ? f->outcome : "without an outcome (still open?)",
          json_array_size(rows));
  fputs(
      "_In two or three sentences: what broke, for whom, and what brought it back._\n\n",
      out);
}

static void put_impact(const facts *f, FILE *out)
{
  const char *start = s_of(f->first, "ts"),
             *end = f->resolved ? f->resolved : s_of(f->last, "ts");
  fprintf(out, "## Impact\n\n- **Duration**: %.5s to %.5s UTC (",
          start ? start + 11 : "?", end ? end + 11 : "?");
  put_since(out, start, end);
  fputs(" on the timeline; impact may have begun before the alert)\n"
        "- **Users affected**: _share of requests or customers, which regions or plans_\n"
        "- **Revenue impact**: _orders or payments lost or delayed, if known_\n"
        "- **Support tickets**: _how many came in_\n"
        "- **SLO impact**: _error budget spent_\n\n",
        out);
}

/* "2026-12-01 16:37:15 UTC" from an RFC 3339 timestamp. */
static void put_utc(FILE *out, const char *ts)
{
  if (ts == NULL || strlen(ts) < 19) {
    fputs(ts ? ts : "(unknown)", out);
    return;
  }
  fprintf(out, "%.10s %.8s UTC", ts, ts + 11);
}

/* The route of an alert_resolved note without its "/alerts/" prefix. */
static const char *route(const char *via)
{
  if (via && strncmp(via, "/alerts/", 8) == 0)
    via += 8;
  return via && *via ? via : "?";
}

/* "- **Name**: 2026-12-01 16:40:02 UTC, 3m 5s after detection". */
static void put_when(const facts *f, const char *name, const char *ts, FILE *out)
{
  fprintf(out, "- **%s**: ", name);
  put_utc(out, ts);
  fputs(", ", out);
  put_since(out, f->detected, ts);
  fputs(" after detection", out);
}

static void put_resolved(const facts *f, FILE *out)
{
  if (f->resolved == NULL) {
    fputs("- **Resolved**: not on the timeline\n", out);
    return;
  }
  put_when(f, "Resolved", f->resolved, out);
  if (f->resolved == f->run_resolved)
    fputs(" (the run resolved)\n", out);
  else
    fprintf(out, " (the alert's resolved notification, via %s)\n", route(f->alert_via));
  if (f->run_resolved && f->resolved != f->run_resolved) {
    put_when(f, "Run resolved", f->run_resolved, out);
    fputc('\n', out);
  }
  if (f->alert_resolved && f->resolved != f->alert_resolved) {
    put_when(f, "Alert resolved", f->alert_resolved, out);
    fprintf(out, " (via %s)\n", route(f->alert_via));
  }
  if (f->run_resolved == NULL)
    fprintf(out,
            "- The run did not resolve (it ended %s): the alert clearing is the "
            "only resolution on the timeline\n",
            f->outcome ? f->outcome : "without an outcome");
}

/* One line per page sent or resolved: who was paged, and loudly who was not. */
static void put_pages(const json_t *rows, FILE *out)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    const json_t *d = json_object_get(json_object_get(r, "event"), "detail");
    const json_t *p = is(s_of(r, "what"), "escalation") ? json_object_get(d, "page")
                      : is(s_of(r, "what"), "page")     ? d
                                                        : NULL;
    if (p == NULL)
      continue;
    int resolve = is(s_of(p, "event"), "resolve");
    fprintf(out, "- **%s**: %s", resolve ? "Page resolved" : "Paged",
            s_of(p, "target") ? s_of(p, "target") : "?");
    if (s_of(p, "kind"))
      fprintf(out, " (%s)", s_of(p, "kind"));
    fputs(" at ", out);
    put_utc(out, s_of(r, "ts"));
    if (json_is_false(json_object_get(p, "configured")))
      fprintf(out, ": not sent, %s", s_of(p, "message") ? s_of(p, "message") : "?");
    else if (!json_is_true(json_object_get(p, "ok")))
      fprintf(out, ": FAILED: %s", s_of(p, "error") ? s_of(p, "error") : "?");
    else if (json_is_true(json_object_get(p, "simulated")))
      fprintf(out, ": would be sent (%s: nothing was sent)",
              s_of(json_object_get(r, "event"), "mode")
                  ? s_of(json_object_get(r, "event"), "mode")
                  : "not exec");
    else
      fprintf(out, ": sent (HTTP %d)",
              (int)json_integer_value(json_object_get(p, "status")));
    fputc('\n', out);
  }
}

static void put_times(const facts *f, const json_t *rows, FILE *out)
{
  fputs("## Detection and mitigation\n\n", out);
  fputs("- **Detected**: ", out);
  put_utc(out, f->detected);
  fputs(" (the runbook started)\n", out);
  if (f->mitigated) {
    fputs("- **First mitigation**: ", out);
    put_utc(out, f->mitigated);
    fputs(", ", out);
    put_since(out, f->detected, f->mitigated);
    fputs(" after detection\n", out);
  } else {
    fputs("- **First mitigation**: none on the timeline\n", out);
  }
  put_resolved(f, out);
  put_pages(rows, out);
  fputs("- _When did impact really start (dashboards, first customer report)?_\n\n", out);
}

static void put_prompts(FILE *out)
{
  fputs("## Root Cause Analysis\n\n### What Happened\n\n"
        "_The chain of failure, from the change or event that set it off to the symptom "
        "the alert saw. The decisions in the timeline are the evidence the runbook "
        "read._\n\n"
        "### 5 Whys Analysis\n\n"
        "_Ask why the symptom happened, then why that cause existed, until the answer is "
        "something the team can change._\n\n"
        "### Contributing Factors\n\n_What made it worse, longer or harder to see._\n\n"
        "## What Went Well\n\n_Which steps, alerts and people helped._\n\n"
        "## What Went Poorly\n\n_Where time was lost; what the runbook did not know._\n\n"
        "## Action Items\n\n| Priority | Action | Owner | Due Date | Status |\n"
        "|----------|--------|-------|----------|--------|\n"
        "| _P0-P2_ | _one change that keeps this from recurring or shortens it_ | "
        "_@someone_ | _date_ | To Do |\n\n"
        "## Lessons Learned\n\n_What holds beyond this incident._\n",
        out);
}

int rb_postmortem_write(const char *path, const char *incident, FILE *out, char *err,
                        size_t errlen)
{
  json_t *rows = rb_digest_load(path, NULL, 0, err, errlen);
  if (rows == NULL)
    return -1;
  if (json_array_size(rows) == 0) {
    json_decref(rows);
    return rb_err(err, errlen, "%s: no events to write a postmortem from", path);
  }
  facts f;
  gather(rows, &f);
  put_head(&f, incident, out);
  put_summary(&f, rows, out);
  put_impact(&f, out);
  put_times(&f, rows, out);
  rb_digest_markdown(rows, 1, out);
  fputc('\n', out);
  put_prompts(out);
  json_decref(rows);
  return 0;
}
