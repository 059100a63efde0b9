/* run_metrics.h: the figures of `runbook stats` as Prometheus metrics for
 * the listener's /metrics (docs/stats.md, "Metrics"). */
#ifndef RB_SERVE_RUN_METRICS_H
#define RB_SERVE_RUN_METRICS_H

#include <jansson.h>
#include <stdio.h>

/* Writes the run families for a stats document (schema "runbook.stats/1")
 * in the text exposition format 0.0.4. */
void rb_serve_run_metrics_write(const json_t *doc, FILE *f);

/* Reads the stats of state_dir through the host and writes them; when they
 * * can not be read, writes runbook_stats_errors as 1 (0 otherwise) and says
 * why on stderr, so a scrape still succeeds with the listener's own metrics. */
void rb_serve_run_metrics(const char *state_dir, FILE *f);

#endif
