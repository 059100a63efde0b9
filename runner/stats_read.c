/* stats_read.c: each run of the timelines read back for `runbook stats`
 * (start, end, outcome, first successful write, approval waits), and the
 * per-file cache that lets /metrics re-read only the timelines that grew. */
#include "runner/stats_read.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "runner/timeline.h"
#include "runner/base/util.h"

/* Milliseconds since the epoch for "2026-11-22T09:36:08.312Z", whole ms so
 * that a difference of two is exact to the ms; -1 if malformed. */
double rb_stats_ts_ms(const char *ts)
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

int rb_stats_add_sample(rb_stats_samples *s, double v)
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

typedef struct {
  rb_stats_run *runs;
  size_t n, cap;
  int oom;
} collect;

static const char *str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static rb_stats_run *rec_for(collect *c, const char *run)
{
  for (size_t i = c->n; i > 0; i--)
    if (strcmp(c->runs[i - 1].run, run) == 0)
      return &c->runs[i - 1];
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 32;
    rb_stats_run *p = realloc(c->runs, cap * sizeof *p);
    if (p == NULL)
      return NULL;
    c->runs = p;
    c->cap = cap;
  }
  rb_stats_run *r = &c->runs[c->n++];
  memset(r, 0, sizeof *r);
  snprintf(r->run, sizeof r->run, "%s", run);
  r->start = r->end = r->mitigated = r->gate_open = -1;
  return r;
}

static void on_run_event(rb_stats_run *r, const json_t *ev, const char *event, double t)
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

static void on_op_event(rb_stats_run *r, const json_t *d, const char *event, double t)
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

static int on_gate_event(rb_stats_run *r, const json_t *ev, const char *event, double t)
{
  const char *step = str(ev, "step");
  if (strcmp(event, "approval_requested") == 0) {
    snprintf(r->gate_step, sizeof r->gate_step, "%s", step);
    r->gate_open = t;
  } else if ((strcmp(event, "approved") == 0 || strcmp(event, "denied") == 0) &&
             r->gate_open >= 0 && strcmp(step, r->gate_step) == 0) {
    double w = t - r->gate_open;
    r->gate_open = -1;
    return rb_stats_add_sample(&r->waits, w < 0 ? 0 : w / 1000.0);
  }
  return 0;
}

static int on_event(json_t *ev, void *arg)
{
  collect *c = arg;
  const char *run = str(ev, "run"), *event = str(ev, "event");
  double t = rb_stats_ts_ms(str(ev, "ts"));
  if (run[0] == '\0' || t < 0)
    return 0;
  rb_stats_run *r = rec_for(c, run);
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

/* -- the cache ----------------------------------------------------------- */

/* One timeline file and the runs it held when it had this size and mtime. */
typedef struct {
  char *name;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  collect runs;
} file_entry;

struct rb_stats_cache {
  char dir[4200];
  file_entry *files;
  size_t n;
};

rb_stats_cache *rb_stats_cache_new(void)
{
  return calloc(1, sizeof(rb_stats_cache));
}

static void entry_clear(file_entry *f)
{
  for (size_t i = 0; i < f->runs.n; i++)
    free(f->runs.runs[i].waits.v);
  free(f->runs.runs);
  free(f->name);
  memset(f, 0, sizeof *f);
}

void rb_stats_cache_free(rb_stats_cache *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++)
    entry_clear(&c->files[i]);
  free(c->files);
  free(c);
}

static int same_file(const file_entry *f, const struct stat *st)
{
  return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
         f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Reads one timeline into f (cleared first). -1 when out of memory. */
static int read_entry(file_entry *f, const char *dir, const char *name,
                      const struct stat *st)
{
  char path[4600], e2[512];
  for (size_t i = 0; i < f->runs.n; i++)
    free(f->runs.runs[i].waits.v);
  free(f->runs.runs);
  memset(&f->runs, 0, sizeof f->runs);
  f->dev = st->st_dev;
  f->ino = st->st_ino;
  f->size = st->st_size;
  f->mtime = st->st_mtim;
  if (rb_fmt(path, sizeof path, "%s/%s", dir, name) == 0 &&
      rb_timeline_read(path, on_event, &f->runs, NULL, e2, sizeof e2) != 0 &&
      !f->runs.oom)
    fprintf(stderr, "runbook: warning: %s\n", e2);
  return f->runs.oom ? -1 : 0;
}

static int is_timeline(const struct dirent *d)
{
  size_t len = strlen(d->d_name);
  return len > 6 && d->d_name[0] != '.' && strcmp(d->d_name + len - 6, ".jsonl") == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* The entry for name: the cached one when the file did not change (both
 * lists are in strcmp order, so the old list is walked once, from *k). */
static int refresh_entry(rb_stats_cache *c, size_t *k, file_entry *out, const char *name)
{
  char path[4600];
  struct stat st;
  memset(out, 0, sizeof *out);
  while (*k < c->n && strcmp(c->files[*k].name, name) < 0)
    entry_clear(&c->files[(*k)++]); /* gone since */
  if (*k < c->n && strcmp(c->files[*k].name, name) == 0) {
    *out = c->files[*k];
    memset(&c->files[(*k)++], 0, sizeof *out);
  } else if ((out->name = strdup(name)) == NULL) {
    return -1;
  }
  if (rb_fmt(path, sizeof path, "%s/%s", c->dir, name) != 0 || stat(path, &st) != 0)
    return 0; /* removed meanwhile: no runs */
  return same_file(out, &st) ? 0 : read_entry(out, c->dir, name, &st);
}

static int collect_runs(rb_stats_cache *c, rb_stats_run ***runs, size_t *n)
{
  size_t total = 0;
  for (size_t i = 0; i < c->n; i++)
    total += c->files[i].runs.n;
  *runs = calloc(total ? total : 1, sizeof **runs);
  if (*runs == NULL)
    return -1;
  *n = 0;
  for (size_t i = 0; i < c->n; i++)
    for (size_t j = 0; j < c->files[i].runs.n; j++)
      (*runs)[(*n)++] = &c->files[i].runs.runs[j];
  return 0;
}

int rb_stats_cache_refresh(rb_stats_cache *c, const char *state_dir, rb_stats_run ***runs,
                           size_t *n, char *err, size_t errlen)
{
  char dir[sizeof c->dir];
  if (rb_fmt(dir, sizeof dir, "%s/incidents", state_dir) != 0)
    return rb_err(err, errlen, "state dir path too long");
  if (strcmp(dir, c->dir) != 0) { /* another state dir: nothing cached applies */
    for (size_t i = 0; i < c->n; i++)
      entry_clear(&c->files[i]);
    c->n = 0;
    snprintf(c->dir, sizeof c->dir, "%s", dir);
  }
  struct dirent **names = NULL;
  int m = scandir(dir, &names, is_timeline, by_name);
  file_entry *fresh = calloc(m > 0 ? (size_t)m : 1, sizeof *fresh);
  int rc = fresh ? 0 : -1;
  size_t k = 0;
  for (int i = 0; i < m; i++) {
    if (rc == 0)
      rc = refresh_entry(c, &k, &fresh[i], names[i]->d_name);
    free(names[i]);
  }
  free(names);
  for (; k < c->n; k++)
    entry_clear(&c->files[k]);
  free(c->files);
  c->files = fresh;
  c->n = m > 0 ? (size_t)m : 0;
  if (rc != 0 || collect_runs(c, runs, n) != 0) {
    for (size_t i = 0; fresh && i < c->n; i++)
      entry_clear(&c->files[i]);
    c->n = 0;
    return rb_err(err, errlen, "out of memory reading the timelines");
  }
  return 0;
}
