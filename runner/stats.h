/* stats.h: figures over the runs in the state dir (runs by mode and outcome,
 * time to first mitigation and to resolved, approval waits, drills, tests),
 * behind `runbook stats` and, through the host interface, the listener's /metrics. */
#ifndef RB_STATS_H
#define RB_STATS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The q-quantile (0..1) of the n ascending values in sorted, interpolated
 * linearly between the closest ranks (R-7, numpy's default): the median of
 * 1 2 3 4 is 2.5, the 0.9-quantile of 1..10 is 9.1. Returns NaN when n is 0. */
double rb_stats_quantile(const double *sorted, size_t n, double q);

/* What rb_stats_collect read, kept so that the next call re-reads only the
 * timelines that changed since (the listener's /metrics). Not thread-safe. */
typedef struct rb_stats_cache rb_stats_cache;
rb_stats_cache *rb_stats_cache_new(void);
void rb_stats_cache_free(rb_stats_cache *c); /* NULL-safe */

/* Reads every run of <state_dir>/incidents/ that started at or after
 * since_ms (wall-clock ms; 0 for all) and belongs to one of the n runbooks
 * named (all when n is 0), and returns the document docs/stats.md describes
 * (schema "runbook.stats/1"), which the caller owns. now_ms is the time the
 * document says it was made; cache may be NULL (nothing kept). NULL with err
 * when the state dir can not be read. */
json_t *rb_stats_collect(rb_stats_cache *cache, const char *state_dir, int64_t since_ms,
                         int64_t now_ms, const char *const *runbooks, size_t n, char *err,
                         size_t errlen);

/* The document as the text tables of `runbook stats`. */
void rb_stats_print(const json_t *doc, FILE *out);

/* `runbook stats [--since D] [--json] [RUNBOOK...]`; argv[0] is "stats".
 * Returns an exit code. */
int rb_cli_stats(const char *state_dir, int argc, char **argv);

#endif
