/* digest.h: an incident's timeline boiled down to what a postmortem needs
 * (decisions, approvals, writes, status updates, escalations; a wait's polls
 * as one row), shared by the brief markdown timeline, the postmortem and the
 * HTML report. */
#ifndef RB_DIGEST_H
#define RB_DIGEST_H

#include <jansson.h>
#include <stdio.h>

/* Reads the timeline at path and returns an array of rows, one per event
 * worth a row ("full": every event but the header), optionally of one run.
 * A row: {"ts", "run", "step", "what", "text", "event"}; what is one of
 * run, decision, poll, approval, write, status, escalation, failure, note;
 * event is the timeline event itself. Returns NULL with err on a read error
 * or when run is set and has no events. */
json_t *rb_digest_load(const char *path, const char *run, int full, char *err,
                       size_t errlen);
/* Writes rows as the postmortem's "Timeline (All times UTC)" table; brief
 * says so under the heading. */
void rb_digest_markdown(const json_t *rows, int brief, FILE *out);
/* Writes "| Time | Event |" rows only (no heading); for the postmortem. */
void rb_digest_table(const json_t *rows, FILE *out);

#endif
