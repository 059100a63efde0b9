/* run_metrics.c: the run figures of the state dir on /metrics: runs by
 * runbook, mode and outcome, open runs, and summaries (median, p90, sum,
 * count) of time to mitigate, to resolve and waiting for approval. */
#include "stdlib/serve/run_metrics.h"

#include <string.h>

#include "stdlib/rb_host.h"

/* A label value as the exposition format wants it: \, " and newline escaped. */
static void put_label(FILE *f, const char *v)
{
  for (; v && *v; v++) {
    if (*v == '\\' || *v == '"')
      fprintf(f, "\\%c", *v);
    else if (*v == '\n')
      fputs("\\n", f);
    else
      fputc(*v, f);
  }
}

static int is_open(const char *outcome)
{
  return strcmp(outcome, "running") == 0 || strcmp(outcome, "waiting") == 0 ||
         strcmp(outcome, "interrupted") == 0;
}

/* runbook_runs_total (ended runs) or runbook_runs_open (the others). */
static void put_runs(const json_t *books, int open, FILE *f)
{
  const char *name = open ? "runbook_runs_open" : "runbook_runs_total";
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name,
          open ? "Runs in the state dir without an end, by runbook, mode and state."
               : "Runs in the state dir that ended, by runbook, mode and outcome.",
          name, open ? "gauge" : "counter");
  size_t i;
  json_t *b;
  json_array_foreach(books, i, b)
  {
    const char *mode, *outcome;
    json_t *outcomes, *n;
    json_object_foreach(json_object_get(b, "by_mode"), mode, outcomes)
    {
      json_object_foreach(outcomes, outcome, n)
      {
        if (is_open(outcome) != open)
          continue;
        fprintf(f, "%s{runbook=\"", name);
        put_label(f, json_string_value(json_object_get(b, "runbook")));
        fprintf(f, "\",mode=\"");
        put_label(f, mode);
        fprintf(f, "\",%s=\"", open ? "state" : "outcome");
        put_label(f, outcome);
        fprintf(f, "\"} %lld\n", (long long)json_integer_value(n));
      }
    }
  }
}

static void put_quantile(FILE *f, const char *name, const char *book, const char *q,
                         const json_t *v)
{
  fprintf(f, "%s{runbook=\"", name);
  put_label(f, book);
  if (json_is_number(v))
    fprintf(f, "\",quantile=\"%s\"} %.6f\n", q, json_number_value(v));
  else
    fprintf(f, "\",quantile=\"%s\"} NaN\n", q);
}

/* One summary family over every runbook: quantiles 0.5 and 0.9, _sum, _count. */
static void put_summary(const json_t *books, const char *key, const char *name,
                        const char *help, FILE *f)
{
  fprintf(f, "# HELP %s %s\n# TYPE %s summary\n", name, help, name);
  size_t i;
  json_t *b;
  json_array_foreach(books, i, b)
  {
    const char *book = json_string_value(json_object_get(b, "runbook"));
    const json_t *s = json_object_get(b, key);
    put_quantile(f, name, book, "0.5", json_object_get(s, "median_s"));
    put_quantile(f, name, book, "0.9", json_object_get(s, "p90_s"));
    fprintf(f, "%s_sum{runbook=\"", name);
    put_label(f, book);
    fprintf(f, "\"} %.6f\n%s_count{runbook=\"",
            json_number_value(json_object_get(s, "sum_s")), name);
    put_label(f, book);
    fprintf(f, "\"} %lld\n", (long long)json_integer_value(json_object_get(s, "count")));
  }
}

/* runbook_tests_total: the scenarios `runbook test` ran, by result. */
static void put_tests(const json_t *books, FILE *f)
{
  fputs("# HELP runbook_tests_total Scenarios run by runbook test, by runbook and "
        "result.\n# TYPE runbook_tests_total counter\n",
        f);
  size_t i;
  json_t *b;
  json_array_foreach(books, i, b)
  {
    const json_t *t = json_object_get(b, "tests");
    for (int ok = 1; ok >= 0; ok--) {
      fputs("runbook_tests_total{runbook=\"", f);
      put_label(f, json_string_value(json_object_get(b, "runbook")));
      fprintf(
          f, "\",result=\"%s\"} %lld\n", ok ? "passed" : "failed",
          (long long)json_integer_value(json_object_get(t, ok ? "passed" : "failed")));
    }
  }
}

void rb_serve_run_metrics_write(const json_t *doc, FILE *f)
{
  const json_t *books = json_object_get(doc, "runbooks");
  put_runs(books, 0, f);
  put_runs(books, 1, f);
  put_tests(books, f);
  put_summary(books, "time_to_mitigate", "runbook_time_to_mitigate_seconds",
              "Exec runs: from the run's start to its first write that succeeded.", f);
  put_summary(books, "time_to_resolve", "runbook_time_to_resolve_seconds",
              "Exec runs that resolved: from the run's start to its end.", f);
  put_summary(books, "approval_wait", "runbook_approval_wait_seconds",
              "Exec runs: each approval gate, from its request to its answer.", f);
}

void rb_serve_run_metrics(const char *state_dir, FILE *f)
{
  char err[512];
  json_t *doc = rb_host_stats(state_dir, 0, err, sizeof err);
  fprintf(f,
          "# HELP runbook_stats_errors Whether the run figures below could not be "
          "read from the state dir (1) or could (0).\n"
          "# TYPE runbook_stats_errors gauge\nrunbook_stats_errors %d\n",
          doc == NULL);
  if (doc == NULL) {
    fprintf(stderr, "runbook serve: /metrics: run stats: %s\n", err);
    return;
  }
  rb_serve_run_metrics_write(doc, f);
  json_decref(doc);
}
