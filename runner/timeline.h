/* timeline.h: the incident timeline, one JSON Lines file per incident that is
 * also the run journal. Events are appended and fsync'd one by one; a torn
 * last line left by a crash is repaired on open and skipped on read. */
#ifndef RB_TIMELINE_H
#define RB_TIMELINE_H

#include <jansson.h>
#include <stdio.h>

typedef struct rb_timeline rb_timeline;

/* Opens path for appending, creating it (0600) if needed. A last line without
 * its newline (a write torn by a crash) is cut off, and *repaired is set to 1.
 * do_fsync=0 skips fsync (tests only). Caller frees with rb_timeline_free. */
rb_timeline *rb_timeline_open(const char *path, int do_fsync, int *repaired, char *err,
                              size_t errlen);
/* Closes the file. NULL-safe. */
void rb_timeline_free(rb_timeline *tl);
/* Appends ev as one line and fsyncs it before returning. Sets "ts" to now
 * (RFC 3339 UTC, ms) if absent, and scrubs secrets (rb_redact_json) first.
 * ev is not stolen. Returns 0, or -1 with a message in err. */
int rb_timeline_append(rb_timeline *tl, json_t *ev, char *err, size_t errlen);
const char *rb_timeline_path(const rb_timeline *tl);
/* Flushes everything appended so far to disk (fdatasync). For timelines
 * opened with do_fsync=0, such as a drill's, which touch no system and so
 * are made durable once, at the end. Returns 0 or -1 with err. */
int rb_timeline_sync(rb_timeline *tl, char *err, size_t errlen);

/* Called with each event in file order; ev is borrowed. A non-zero return
 * stops the walk and is returned by rb_timeline_read. */
typedef int (*rb_timeline_cb)(json_t *ev, void *arg);
/* Reads every event of path. A line that is not a JSON object is skipped with
 * a warning on stderr naming path:line; *skipped (may be NULL) counts them.
 * Returns 0, the callback's non-zero value, or -1 with err filled. */
int rb_timeline_read(const char *path, rb_timeline_cb cb, void *arg, int *skipped,
                     char *err, size_t errlen);

typedef enum { RB_TL_TEXT, RB_TL_JSON, RB_TL_MARKDOWN } rb_tl_format;
/* Writes the timeline of path to out: text (one readable line per event),
 * json (the JSON Lines as stored) or markdown (the postmortem table
 * "| Time (UTC) | Event |"). Returns 0 or -1 with err. */
int rb_timeline_export(const char *path, rb_tl_format fmt, FILE *out, char *err,
                       size_t errlen);
/* One human sentence for an event ("rollback: finished in 1.2 s"), used by the
 * text and markdown exports and the terminal. Caller frees. */
char *rb_timeline_describe(const json_t *ev);

#endif
