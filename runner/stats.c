/* stats.c: the figures of `runbook stats` read back from the timelines: each
 * run's mode, outcome, first successful write and approval waits, summed up
 * per runbook with medians and 90th percentiles (docs/stats.md). */
#include "runner/stats.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/store.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

double rb_stats_quantile(const double *sorted, size_t n, double q)
{
  if (n == 0)
    return NAN;
  if (q <= 0)
    return sorted[0];
  if (q >= 1)
    return sorted[n - 1];
  double h = (double)(n - 1) * q;
  size_t lo = (size_t)floor(h);
  if (lo + 1 >= n)
    return sorted[n - 1];
  return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

/* Seconds since the epoch for "2026-11-22T09:36:08.312Z", counted in whole
 * milliseconds first so a difference of two is exact to the ms; -1 if
 * malformed. */
static double ts_seconds(const char *ts)
{
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (ts == NULL || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
                           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ms = (int64_t)timegm(&tm) * 1000;
  if (ts[19] == '.')
    ms += (int64_t)llround(atof(ts + 19) * 1000);
  return (double)ms;
}

typedef struct {
  double *v;
  size_t n, cap;
} samples;

static int add_sample(samples *s, double v)
{
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    double *p = realloc(s->v, cap * sizeof *p);
    if (p == NULL)
      return -1;
    s->v = p;
    s->cap = cap;
  }
  s->v[s->n++] = v;
  return 0;
}

/* One run as its events tell it. */
typedef struct {
  char run[64], runbook[256], mode[16], outcome[32];
  double start;     /* wall ms of the run's first start; a resume keeps it */
  double end;       /* its last end, -1 while it has none */
  double mitigated; /* the first write that succeeded, -1 when none did */
  int write_open;   /* a write's intent is on record, its result not yet */
  char gate_step[256];
  double gate_open; /* when the open gate was requested, -1 when none is */
  samples waits;    /* seconds from each gate's request to its answer */
} run_rec;

typedef struct {
  run_rec *runs;
  size_t n, cap;
  int oom;
} collect;

static const char *str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static run_rec *rec_for(collect *c, const char *run)
{
  for (size_t i = c->n; i > 0; i--)
    if (strcmp(c->runs[i - 1].run, run) == 0)
      return &c->runs[i - 1];
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 32;
    run_rec *p = realloc(c->runs, cap * sizeof *p);
    if (p == NULL)
      return NULL;
    c->runs = p;
    c->cap = cap;
  }
  run_rec *r = &c->runs[c->n++];
  memset(r, 0, sizeof *r);
  snprintf(r->run, sizeof r->run, "%s", run);
  r->start = r->end = r->mitigated = r->gate_open = -1;
  return r;
}

static void on_run_event(run_rec *r, const json_t *ev, const char *event, double t)
{
  if (strcmp(event, "started") == 0) {
    if (r->start < 0) {
      r->start = t;
      snprintf(r->runbook, sizeof r->runbook, "%s", str(ev, "runbook"));
      snprintf(r->mode, sizeof r->mode, "%s", str(ev, "mode"));
    }
    r->end = -1; /* a resume reopens it */
    r->outcome[0] = '\0';
  } else if (strcmp(event, "finished") == 0 || strcmp(event, "failed") == 0) {
    r->end = t;
    const char *o = str(json_object_get(ev, "detail"), "outcome");
    snprintf(r->outcome, sizeof r->outcome, "%s",
             strcmp(event, "failed") == 0 ? "failed"
             : o[0]                       ? o
                                          : "unknown");
  }
}

/* A write succeeded: its result came back without an error, a non-zero
 * exit or an HTTP error status (allow_fail lets those finish). */
static int write_ok(const json_t *d)
{
  json_t *code = json_object_get(d, "exit_code"), *st = json_object_get(d, "status");
  if (json_is_integer(code) && json_integer_value(code) != 0)
    return 0;
  if (json_is_integer(st) && json_integer_value(st) >= 400)
    return 0;
  return json_object_get(d, "ok") != json_false();
}

static void on_op_event(run_rec *r, const json_t *d, const char *event, double t)
{
  if (strcmp(event, "started") == 0) {
    r->write_open = 1; /* only writes record an intent */
  } else if (strcmp(event, "finished") == 0 && r->write_open) {
    r->write_open = 0;
    if (r->mitigated < 0 && write_ok(d))
      r->mitigated = t;
  } else if (strcmp(event, "failed") == 0) {
    r->write_open = 0;
  }
}

static int on_gate_event(run_rec *r, const json_t *ev, const char *event, double t)
{
  const char *step = str(ev, "step");
  if (strcmp(event, "approval_requested") == 0) {
    snprintf(r->gate_step, sizeof r->gate_step, "%s", step);
    r->gate_open = t;
  } else if ((strcmp(event, "approved") == 0 || strcmp(event, "denied") == 0) &&
             r->gate_open >= 0 && strcmp(step, r->gate_step) == 0) {
    double w = t - r->gate_open;
    r->gate_open = -1;
    return add_sample(&r->waits, w < 0 ? 0 : w / 1000.0);
  }
  return 0;
}

static int on_event(json_t *ev, void *arg)
{
  collect *c = arg;
  const char *run = str(ev, "run"), *event = str(ev, "event");
  double t = ts_seconds(str(ev, "ts"));
  if (run[0] == '\0' || t < 0)
    return 0;
  run_rec *r = rec_for(c, run);
  if (r == NULL) {
    c->oom = 1;
    return -1;
  }
  const json_t *d = json_object_get(ev, "detail");
  if (json_is_null(json_object_get(ev, "step")) || strcmp(str(ev, "kind"), "run") == 0)
    on_run_event(r, ev, event, t);
  else if (json_object_get(d, "op") != NULL)
    on_op_event(r, d, event, t);
  else if (on_gate_event(r, ev, event, t) != 0) {
    c->oom = 1;
    return -1;
  }
  return 0;
}

static int read_timelines(const char *state_dir, collect *c, char *err, size_t errlen)
{
  char idir[4200];
  if (rb_fmt(idir, sizeof idir, "%s/incidents", state_dir))
    return rb_err(err, errlen, "state dir path too long");
  struct dirent **names = NULL;
  int n = scandir(idir, &names, NULL, alphasort);
  if (n < 0)
    return 0; /* no timelines yet: no runs */
  for (int i = 0; i < n; i++) {
    size_t len = strlen(names[i]->d_name);
    char path[4600], e2[512];
    if (!c->oom && len > 6 && strcmp(names[i]->d_name + len - 6, ".jsonl") == 0 &&
        rb_fmt(path, sizeof path, "%s/%s", idir, names[i]->d_name) == 0 &&
        rb_timeline_read(path, on_event, c, NULL, e2, sizeof e2) != 0 && !c->oom)
      fprintf(stderr, "runbook: warning: %s\n", e2);
    free(names[i]);
  }
  free(names);
  return c->oom ? rb_err(err, errlen, "out of memory reading the timelines") : 0;
}

/* A run without an end: waiting or running while a process holds its
 * lease, interrupted when none does (`runbook runs` tells them the same way). */
static void settle_open(rb_store *st, run_rec *r)
{
  if (r->end >= 0)
    return;
  char key[200], e2[256];
  rb_owner o;
  int live = st && rb_store_run_key(r->run, key, sizeof key) == 0 &&
             rb_store_holder(st, key, &o, e2, sizeof e2) == 1;
  snprintf(r->outcome, sizeof r->outcome, "%s",
           !live               ? "interrupted"
           : r->gate_open >= 0 ? "waiting"
                               : "running");
}

/* -- summing up ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* {"count", "sum_s", "median_s", "p90_s"}, the figures null when count is 0. */
static json_t *summary(samples *s)
{
  if (s->n > 1)
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
  double sum = 0;
  for (size_t i = 0; i < s->n; i++)
    sum += s->v[i];
  json_t *o = json_pack("{s:I, s:f}", "count", (json_int_t)s->n, "sum_s", sum);
  json_object_set_new(o, "median_s",
                      s->n ? json_real(rb_stats_quantile(s->v, s->n, 0.5)) : json_null());
  json_object_set_new(o, "p90_s",
                      s->n ? json_real(rb_stats_quantile(s->v, s->n, 0.9)) : json_null());
  return o;
}

typedef struct {
  samples ttm, ttr, wait;
} book_samples;

static int wanted(const run_rec *r, int64_t since_ms, const char *const *books, size_t n)
{
  if (r->start < 0 || r->runbook[0] == '\0' || r->start < (double)since_ms)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(books[i], r->runbook) == 0)
      return 1;
  return n == 0;
}

static void count_in(json_t *book, const run_rec *r)
{
  json_t *by = json_object_get(book, "by_mode");
  json_t *m = json_object_get(by, r->mode);
  if (m == NULL) {
    m = json_object();
    json_object_set_new(by, r->mode, m);
  }
  json_t *k = json_object_get(m, r->outcome);
  json_object_set_new(m, r->outcome, json_integer(json_integer_value(k) + 1));
  json_object_set_new(
      book, "runs", json_integer(json_integer_value(json_object_get(book, "runs")) + 1));
  if (strcmp(r->mode, "drill") == 0)
    json_object_set_new(
        book, "drills",
        json_integer(json_integer_value(json_object_get(book, "drills")) + 1));
}

/* Times count for real runs only: a dry-run or a drill mitigates nothing. */
static int sample_in(book_samples *bs, const run_rec *r)
{
  if (strcmp(r->mode, "exec") != 0)
    return 0;
  int rc = 0;
  if (r->mitigated >= 0)
    rc |= add_sample(&bs->ttm, (r->mitigated - r->start) / 1000.0);
  if (strcmp(r->outcome, "resolved") == 0 && r->end >= 0)
    rc |= add_sample(&bs->ttr, (r->end - r->start) / 1000.0);
  for (size_t i = 0; i < r->waits.n; i++)
    rc |= add_sample(&bs->wait, r->waits.v[i]);
  return rc;
}

static int by_runbook(const void *a, const void *b)
{
  const run_rec *x = a, *y = b;
  int c = strcmp(x->runbook, y->runbook);
  return c ? c : (x->start > y->start) - (x->start < y->start);
}

static json_t *book_doc(const char *name)
{
  return json_pack("{s:s, s:i, s:{}, s:i, s:{s:i, s:i, s:i}}", "runbook", name, "runs", 0,
                   "by_mode", "drills", 0, "tests", "runs", 0, "passed", 0, "failed", 0);
}

static void book_close(json_t *book, book_samples *bs)
{
  json_object_set_new(book, "time_to_mitigate", summary(&bs->ttm));
  json_object_set_new(book, "time_to_resolve", summary(&bs->ttr));
  json_object_set_new(book, "approval_wait", summary(&bs->wait));
  free(bs->ttm.v);
  free(bs->ttr.v);
  free(bs->wait.v);
  memset(bs, 0, sizeof *bs);
}

static json_t *sum_up(collect *c, int64_t since_ms, const char *const *books, size_t n)
{
  json_t *arr = json_array(), *book = NULL;
  book_samples bs;
  memset(&bs, 0, sizeof bs);
  if (c->n > 1)
    qsort(c->runs, c->n, sizeof *c->runs, by_runbook);
  for (size_t i = 0; i < c->n; i++) {
    const run_rec *r = &c->runs[i];
    if (!wanted(r, since_ms, books, n))
      continue;
    if (book == NULL || strcmp(str(book, "runbook"), r->runbook) != 0) {
      if (book)
        book_close(book, &bs);
      book = book_doc(r->runbook);
      json_array_append_new(arr, book);
    }
    count_in(book, r);
    if (sample_in(&bs, r) != 0) {
      book_close(book, &bs);
      json_decref(arr);
      return NULL;
    }
  }
  if (book)
    book_close(book, &bs);
  return arr;
}

/* The entry of runbook name in arr (sorted by name), made with zeros at its
 * place when there is none yet. */
static json_t *book_in(json_t *arr, const char *name)
{
  size_t i;
  json_t *b;
  json_array_foreach(arr, i, b)
  {
    int c = strcmp(str(b, "runbook"), name);
    if (c == 0)
      return b;
    if (c > 0)
      break;
  }
  book_samples bs;
  memset(&bs, 0, sizeof bs);
  b = book_doc(name);
  book_close(b, &bs);
  json_array_insert_new(arr, i, b);
  return b;
}

static void count_test(json_t *book, int ok)
{
  json_t *t = json_object_get(book, "tests");
  const char *keys[] = {"runs", ok ? "passed" : "failed"};
  for (int k = 0; k < 2; k++)
    json_object_set_new(
        t, keys[k], json_integer(json_integer_value(json_object_get(t, keys[k])) + 1));
}

/* The results `runbook test` recorded in <state_dir>/tests.jsonl, one line
 * per scenario; a line that is not one is named on stderr and skipped. */
static void add_tests(json_t *arr, const char *state_dir, int64_t since_ms,
                      const char *const *books, size_t n)
{
  char path[4200];
  if (rb_fmt(path, sizeof path, "%s/tests.jsonl", state_dir) != 0)
    return;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  char *line = NULL;
  size_t cap = 0;
  for (long no = 1; getline(&line, &cap, f) >= 0; no++) {
    json_t *t = json_loads(line, 0, NULL);
    const char *name = json_string_value(json_object_get(t, "runbook"));
    double ts = ts_seconds(json_string_value(json_object_get(t, "ts")));
    json_t *ok = json_object_get(t, "ok");
    if (name == NULL || ts < 0 || !json_is_boolean(ok)) {
      fprintf(stderr, "runbook: warning: %s:%ld: not a test result, skipped\n", path, no);
    } else if (ts >= (double)since_ms) {
      int want = n == 0;
      for (size_t i = 0; i < n; i++)
        want |= strcmp(books[i], name) == 0;
      if (want)
        count_test(book_in(arr, name), json_is_true(ok));
    }
    json_decref(t);
  }
  free(line);
  fclose(f);
}

json_t *rb_stats_collect(const char *state_dir, int64_t since_ms, int64_t now_ms,
                         const char *const *runbooks, size_t n, char *err, size_t errlen)
{
  collect c;
  memset(&c, 0, sizeof c);
  json_t *doc = NULL;
  rb_store *st = NULL;
  if (read_timelines(state_dir, &c, err, errlen) != 0)
    goto out;
  st = rb_store_open_dir(state_dir, err, errlen);
  for (size_t i = 0; i < c.n; i++)
    settle_open(st, &c.runs[i]);
  json_t *books = sum_up(&c, since_ms, runbooks, n);
  if (books == NULL) {
    rb_err(err, errlen, "out of memory summing up the runs");
    goto out;
  }
  add_tests(books, state_dir, since_ms, runbooks, n);
  for (size_t i = 0; i < n; i++)
    (void)book_in(books, runbooks[i]); /* "no runs" is an answer, not a missing row */
  char now[32], since[32];
  rb_format_ts(now_ms, now, sizeof now);
  rb_format_ts(since_ms, since, sizeof since);
  doc = json_pack("{s:s, s:s, s:s, s:o}", "schema", "runbook.stats/1", "state_dir",
                  state_dir, "generated", now, "runbooks", books);
  json_object_set_new(doc, "since", since_ms > 0 ? json_string(since) : json_null());
out:
  for (size_t i = 0; i < c.n; i++)
    free(c.runs[i].waits.v);
  free(c.runs);
  rb_store_free(st);
  return doc;
}
