/* timeline.h: the incident timeline, one JSON Lines file per incident that is
 * also the run journal. Events are appended and fsync'd one by one, each
 * chained to the previous line by its SHA-256 (docs/timeline.md); a torn last
 * line left by a crash is repaired on open and skipped on read. */
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
 * Under the file lock it then adds "seq" and "prev" (the SHA-256 of the line
 * before it), writing the chain's header event first into an empty file or
 * after lines written before chaining; "seq" and "prev" of ev are replaced.
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
/* Reads every event of path, the chain's header event included. A torn last
 * line (no newline, not a JSON object: a crash mid-write) is skipped with a
 * warning on stderr naming path:line and counted in *skipped (may be NULL).
 * Any other line that is not a JSON object is reported on stderr as an error
 * with its line number; the walk goes on, and returns -1 at the end with err
 * naming the first such line. Returns 0, the callback's non-zero value, or -1
 * with err filled. */
int rb_timeline_read(const char *path, rb_timeline_cb cb, void *arg, int *skipped,
                     char *err, size_t errlen);

/* True for the chain's header event (event "timeline_header"), which opens
 * every chained timeline and is no part of any run. */
int rb_timeline_is_header(const json_t *ev);

/* What rb_timeline_verify found. Line numbers count from 1; 0 means none. */
typedef struct {
  long events;    /* events after a header that chain (the header not counted) */
  long unchained; /* lines before the first header: written before chaining */
  long bad_line;  /* the first line that does not chain */
  char why[256];  /* why bad_line does not chain: edited, deleted, ... */
  long torn_line; /* a torn last line (crash mid-write), not counted */
  char head[65];  /* hex SHA-256 of the last chained line, "" if none */
} rb_tl_verdict;

/* Checks the hash chain of the timeline at path (docs/timeline.md, "Verify").
 * Returns 0 when every line chains from a header at line 1 (torn last line
 * allowed), 1 when not (bad_line, unchained lines or no event at all: see v),
 * or -1 with err when the file cannot be read. */
int rb_timeline_verify(const char *path, rb_tl_verdict *v, char *err, size_t errlen);

/* "after 45 s" for a wait's decision detail (waited_ms), with " (simulated)"
 * when a drill's clock ran it; "" when the detail has no waited_ms. */
void rb_timeline_waited(const json_t *detail, char *buf, size_t len);

typedef enum { RB_TL_TEXT, RB_TL_JSON, RB_TL_MARKDOWN } rb_tl_format;
/* Writes the timeline of path to out: text (one readable line per event),
 * json (the lines exactly as stored, header included) or markdown (the postmortem table
 * "| Time (UTC) | Event |"); text and markdown leave out the header. Returns
 * 0 or -1 with err (also after writing the rest when a middle line is
 * unparseable). */
int rb_timeline_export(const char *path, rb_tl_format fmt, FILE *out, char *err,
                       size_t errlen);
/* One human sentence for an event ("rollback: finished in 1.2 s"), used by the
 * text and markdown exports and the terminal. Caller frees. */
char *rb_timeline_describe(const json_t *ev);

#endif
