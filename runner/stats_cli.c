/* stats_cli.c: `runbook stats`: the options, and the figures of stats.c as
 * two text tables (runs by mode and outcome; times) or as JSON. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runner/run.h"
#include "runner/stats.h"
#include "runner/base/util.h"

/* "1.20 s" for seconds, "-" for null. */
static void put_secs(const json_t *v, char *buf, size_t len)
{
  if (!json_is_number(v)) {
    snprintf(buf, len, "-");
    return;
  }
  rb_format_elapsed((int64_t)llround(json_number_value(v) * 1e6), buf, len);
}

static void print_modes(const json_t *book, FILE *out)
{
  const char *name = json_string_value(json_object_get(book, "runbook"));
  const char *mode;
  json_t *outcomes;
  json_object_foreach(json_object_get(book, "by_mode"), mode, outcomes)
  {
    json_int_t total = 0;
    char line[1024] = "";
    size_t o = 0;
    const char *k;
    json_t *v;
    json_object_foreach(outcomes, k, v)
    {
      total += json_integer_value(v);
      int w = snprintf(line + o, sizeof line - o, "%s%s %lld", o ? ", " : "", k,
                       (long long)json_integer_value(v));
      if (w > 0 && (size_t)w < sizeof line - o)
        o += (size_t)w;
    }
    fprintf(out, "%-24s %-8s %5lld  %s\n", name, mode, (long long)total, line);
  }
}

/* "1.20 s / 2.00 s (2)": median and p90, or total and median, and the count. */
static void put_pair(const json_t *sum, const char *a, const char *b, char *buf,
                     size_t len)
{
  char x[32], y[32];
  if (json_integer_value(json_object_get(sum, "count")) == 0) {
    snprintf(buf, len, "- (0)");
    return;
  }
  put_secs(json_object_get(sum, a), x, sizeof x);
  put_secs(json_object_get(sum, b), y, sizeof y);
  snprintf(buf, len, "%s / %s (%lld)", x, y,
           (long long)json_integer_value(json_object_get(sum, "count")));
}

static void print_times(const json_t *book, FILE *out)
{
  char m[96], r[96], w[96];
  put_pair(json_object_get(book, "time_to_mitigate"), "median_s", "p90_s", m, sizeof m);
  put_pair(json_object_get(book, "time_to_resolve"), "median_s", "p90_s", r, sizeof r);
  json_t *wait = json_object_get(book, "approval_wait");
  put_pair(wait, "sum_s", "median_s", w, sizeof w);
  const json_t *t = json_object_get(book, "tests");
  char tests[64];
  snprintf(tests, sizeof tests, "%lld/%lld",
           (long long)json_integer_value(json_object_get(t, "passed")),
           (long long)json_integer_value(json_object_get(t, "runs")));
  fprintf(out, "%-24s %-26s %-26s %-28s %6lld %s\n",
          json_string_value(json_object_get(book, "runbook")), m, r, w,
          (long long)json_integer_value(json_object_get(book, "drills")), tests);
}

void rb_stats_print(const json_t *doc, FILE *out)
{
  const json_t *books = json_object_get(doc, "runbooks");
  const char *since = json_string_value(json_object_get(doc, "since"));
  fprintf(out, "runs in %s%s%s\n\n", json_string_value(json_object_get(doc, "state_dir")),
          since ? " since " : "", since ? since : "");
  if (json_array_size(books) == 0) {
    fputs("no runs\n", out);
    return;
  }
  /* a runbook with tests only has no row here */
  fprintf(out, "%-24s %-8s %5s  %s\n", "RUNBOOK", "MODE", "RUNS", "OUTCOMES");
  size_t i;
  json_t *b;
  json_array_foreach(books, i, b) print_modes(b, out);
  fprintf(out,
          "\nexec runs only; median / p90 (samples), approval waits total / median\n");
  fprintf(out, "%-24s %-26s %-26s %-28s %6s %s\n", "RUNBOOK", "TO FIRST MITIGATION",
          "TO RESOLVED", "WAITING FOR APPROVAL", "DRILLS", "TESTS PASSED");
  json_array_foreach(books, i, b) print_times(b, out);
}

static int since_ms(const char *arg, int64_t now, int64_t *out)
{
  int64_t ms = 0;
  char err[256];
  if (rb_parse_duration(arg, &ms, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: stats: --since: %s\n", err);
    return -1;
  }
  if (ms <= 0) {
    fprintf(stderr, "runbook: stats: --since must be longer than 0, not '%s'\n", arg);
    return -1;
  }
  *out = now - ms;
  return 0;
}

int rb_cli_stats(const char *state_dir, int argc, char **argv)
{
  static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {NULL, 0, NULL, 0}};
  int64_t now = rb_now_wall_ms(), since = 0;
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 's' && since_ms(optarg, now, &since) != 0)
      return RB_EXIT_USAGE;
    if (c == 'j')
      json = 1;
    if (c == '?') {
      fprintf(stderr, "runbook: stats: unknown option or missing value: '%s'\n",
              argv[optind - 1]);
      return RB_EXIT_USAGE;
    }
  }
  char err[1024];
  json_t *doc =
      rb_stats_collect(NULL, state_dir, since, now, (const char *const *)argv + optind,
                       (size_t)(argc - optind), err, sizeof err);
  if (doc == NULL) {
    fprintf(stderr, "runbook: stats: %s\n", err);
    return RB_EXIT_FAILED;
  }
  if (json) {
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    fputc('\n', stdout);
  } else {
    rb_stats_print(doc, stdout);
  }
  json_decref(doc);
  return RB_EXIT_OK;
}
