/* stats.c: the figures of `runbook stats`: the runs stats_read.c reads back
 * from the timelines, and the tests `runbook test` recorded, summed up per
 * runbook with medians and 90th percentiles (docs/stats.md). */
#include "runner/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/stats_read.h"
#include "runner/store.h"
#include "runner/base/util.h"

static const char *str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

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

/* A run without an end: waiting or running while a process holds its
 * lease, interrupted when none does (`runbook runs` tells them the same way). */
static void settle_open(rb_store *st, rb_stats_run *r)
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
static json_t *summary(rb_stats_samples *s)
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
  rb_stats_samples ttm, ttr, wait;
} book_samples;

static int wanted(const rb_stats_run *r, int64_t since_ms, const char *const *books,
                  size_t n)
{
  if (r->start < 0 || r->runbook[0] == '\0' || r->start < (double)since_ms)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(books[i], r->runbook) == 0)
      return 1;
  return n == 0;
}

static void count_in(json_t *book, const rb_stats_run *r)
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
static int sample_in(book_samples *bs, const rb_stats_run *r)
{
  if (strcmp(r->mode, "exec") != 0)
    return 0;
  int rc = 0;
  if (r->mitigated >= 0)
    rc |= rb_stats_add_sample(&bs->ttm, (r->mitigated - r->start) / 1000.0);
  if (strcmp(r->outcome, "resolved") == 0 && r->end >= 0)
    rc |= rb_stats_add_sample(&bs->ttr, (r->end - r->start) / 1000.0);
  for (size_t i = 0; i < r->waits.n; i++)
    rc |= rb_stats_add_sample(&bs->wait, r->waits.v[i]);
  return rc;
}

static int by_runbook(const void *a, const void *b)
{
  const rb_stats_run *x = *(rb_stats_run *const *)a, *y = *(rb_stats_run *const *)b;
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

static json_t *sum_up(rb_stats_run **runs, size_t nruns, int64_t since_ms,
                      const char *const *books, size_t n)
{
  json_t *arr = json_array(), *book = NULL;
  book_samples bs;
  memset(&bs, 0, sizeof bs);
  if (nruns > 1)
    qsort(runs, nruns, sizeof *runs, by_runbook);
  for (size_t i = 0; i < nruns; i++) {
    const rb_stats_run *r = runs[i];
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
    double ts = rb_stats_ts_ms(json_string_value(json_object_get(t, "ts")));
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

json_t *rb_stats_collect(rb_stats_cache *cache, const char *state_dir, int64_t since_ms,
                         int64_t now_ms, const char *const *runbooks, size_t n, char *err,
                         size_t errlen)
{
  rb_stats_cache *own = cache ? NULL : rb_stats_cache_new();
  rb_stats_run **runs = NULL;
  size_t nruns = 0;
  json_t *doc = NULL;
  rb_store *st = NULL;
  if (cache == NULL && own == NULL) {
    rb_err(err, errlen, "out of memory");
    goto out;
  }
  if (rb_stats_cache_refresh(cache ? cache : own, state_dir, &runs, &nruns, err,
                             errlen) != 0)
    goto out;
  st = rb_store_open_dir(state_dir, err, errlen);
  for (size_t i = 0; i < nruns; i++)
    settle_open(st, runs[i]);
  json_t *books = sum_up(runs, nruns, since_ms, runbooks, n);
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
  free(runs);
  rb_stats_cache_free(own);
  rb_store_free(st);
  return doc;
}
