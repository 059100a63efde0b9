/* util.h: small helpers shared by the runner and the stdlib: clocks, RFC 3339
 * timestamps, durations ("15s", "5m"), ids, checked formatting, suggestions. */
#ifndef RB_UTIL_H
#define RB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds, for deadlines and elapsed times. */
int64_t rb_now_mono_ms(void);
/* Monotonic microseconds, for durations under a millisecond. */
int64_t rb_now_mono_us(void);
/* Wall-clock milliseconds since the epoch. */
int64_t rb_now_wall_ms(void);

/* The process was asked to stop (SIGINT or SIGTERM reached the executor).
 * Set from a signal handler; long waits in plain C (a running command)
 * poll it so they end at once instead of at their own timeout. */
void rb_stop_request(void);
int rb_stop_requested(void);

/* Writes "2026-11-22T09:36:08.312Z" for wall_ms into buf (at least 25 bytes). */
void rb_format_ts(int64_t wall_ms, char *buf, size_t len);

/* Parses "500ms", "15s", "5m", "2h", "1d" or a bare number of seconds into
 * milliseconds. Returns 0, or -1 with a message in err. */
int rb_parse_duration(const char *s, int64_t *out_ms, char *err, size_t errlen);
/* Writes a human duration ("1.2 ms", "3.4 s", "2m05s") into buf. */
void rb_format_elapsed(int64_t us, char *buf, size_t len);

/* snprintf that reports truncation: returns 0, or -1 when out did not fit. */
int rb_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes an error message into err (may be NULL); always returns -1. */
int rb_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes a new random id ("20261122-093608-a3f1") into buf (at least 32 bytes). */
void rb_new_id(char *buf, size_t len);

/* Cuts leading and trailing whitespace in place; returns the first
 * non-space character of s. */
char *rb_trim(char *s);

/* mkdir -p with mode 0700 for the leaves we create. Returns 0 or -errno. */
int rb_mkdirs(const char *path);

/* The candidate closest to word (at most two edits away), or NULL: the
 * "did you mean" of every unknown-name error. cands ends with NULL. */
const char *rb_suggest(const char *word, const char *const *cands);

#endif
