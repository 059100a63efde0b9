/* report.h: `runbook report INCIDENT --html FILE`, one self-contained page
 * per incident: each run's graph with its path lit, the timeline, decisions,
 * approvals, writes and status updates. */
#ifndef RB_REPORT_H
#define RB_REPORT_H

#include <stddef.h>

#include "runner/config.h"

/* Writes the report of the incident whose timeline is at tl_path to
 * html_path (through a temporary file renamed into place). The graph is SVG
 * from Graphviz's `dot` when it runs, the text tree otherwise. Returns an
 * exit code; errors go to stderr. */
int rb_report_html(const char *tl_path, const char *incident, const rb_config *cfg,
                   const char *state_dir, const char *html_path, int report_fd);

#endif
