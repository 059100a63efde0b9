/* stats_read.h: the runs of the state dir's timelines as `runbook stats`
 * sums them up, each file's runs cached by its identity, size and mtime, so
 * that asking again (the listener's /metrics at every scrape) reads only
 * the timelines that grew. Private to stats*.c. */
#ifndef RB_STATS_READ_H
#define RB_STATS_READ_H

#include <stddef.h>
#include <stdint.h>

#include "runner/stats.h"

typedef struct {
  double *v;
  size_t n, cap;
} rb_stats_samples;

/* One run as its events tell it. Times are wall-clock ms, -1 for none. */
typedef struct {
  char run[64], runbook[256], mode[16], outcome[32];
  double start;     /* the run's first start; a resume keeps it */
  double end;       /* its last end, -1 while it has none */
  double mitigated; /* the first write that succeeded */
  int write_open;   /* a write's intent is on record, its result not yet */
  char gate_step[256];
  double gate_open;       /* when the open gate was requested */
  rb_stats_samples waits; /* seconds from each gate's request to its answer */
} rb_stats_run;

/* 0, or -1 when out of memory. */
int rb_stats_add_sample(rb_stats_samples *s, double v);
/* Wall ms of "2026-11-22T09:36:08.312Z", whole ms; -1 if malformed. */
double rb_stats_ts_ms(const char *ts);

/* Brings c up to date with the timelines in <state_dir>/incidents (c is flushed when
 * it last read another dir) and sets *runs to every run, pointers into c
 * valid until the next refresh or rb_stats_cache_free; the caller frees the
 * array. Returns 0, or -1 with err (out of memory). */
int rb_stats_cache_refresh(rb_stats_cache *c, const char *state_dir, rb_stats_run ***runs,
                           size_t *n, char *err, size_t errlen);

#endif
