/* dedup.h: the alert listener's dedup store behind a small interface: which
 * (fingerprint, startsAt) keys already started a run, kept for a window. */
#ifndef RB_DEDUP_H
#define RB_DEDUP_H

#include <stddef.h>
#include <stdint.h>

/* Longest key: a 64-character fingerprint, '|', startsAt (at most 64). */
#define RB_DEDUP_KEY_MAX 160

/* A key is a duplicate while the run it started is active, and for the
 * window after that run ended. Keys are bounded by the window, never by
 * count: when max_keys live keys are held, a new key is refused (the
 * listener answers 503) instead of forgetting a live one. Not thread-safe:
 * the listener holds its lock around every call.
 *
 * Times are wall-clock milliseconds (they must mean the same after a
 * restart). A backend is a table of these functions; the state dir's
 * append-only file (dedup_file.c) is the embedded one, a database can
 * follow without touching the listener. */
typedef struct rb_dedup rb_dedup;

typedef struct {
  /* 1 duplicate (counted), 0 new (now recorded as active), -1 store full,
   * -2 the store failed (err says why). */
  int (*claim)(rb_dedup *d, const char *key, int64_t now_ms, char *err, size_t errlen);
  /* The run of key ended at now_ms: its window starts. */
  void (*finished)(rb_dedup *d, const char *key, int64_t now_ms);
  /* Forgets key: a claim whose run could not start, so a retry may. */
  void (*forget)(rb_dedup *d, const char *key);
  /* Makes every change so far durable; called before the listener answers.
   * Returns 0, or -1 with err. */
  int (*sync)(rb_dedup *d, char *err, size_t errlen);
  unsigned (*hits)(const rb_dedup *d, const char *key);
  size_t (*count)(const rb_dedup *d); /* live keys */
  void (*free)(rb_dedup *d);
} rb_dedup_ops;

struct rb_dedup {
  const rb_dedup_ops *ops;
};

/* The embedded store: an append-only log <dir>/dedup.log, replayed and
 * compacted (keys older than the window dropped) on open and whenever it
 * holds more dead lines than live keys. dir NULL keeps the keys in memory
 * only. Keys claimed but never finished (the listener died) count as
 * finished at open. Returns NULL with err. */
rb_dedup *rb_dedup_open_file(const char *dir, int64_t window_ms, size_t max_keys,
                             int64_t now_ms, char *err, size_t errlen);

/* Wrappers over d->ops; rb_dedup_free is NULL-safe. */
int rb_dedup_claim(rb_dedup *d, const char *key, int64_t now_ms, char *err,
                   size_t errlen);
void rb_dedup_finished(rb_dedup *d, const char *key, int64_t now_ms);
void rb_dedup_forget(rb_dedup *d, const char *key);
int rb_dedup_sync(rb_dedup *d, char *err, size_t errlen);
unsigned rb_dedup_hits(const rb_dedup *d, const char *key);
size_t rb_dedup_count(const rb_dedup *d);
void rb_dedup_free(rb_dedup *d);

/* 1 when s may be part of a key: printable ASCII without spaces or '|'. */
int rb_dedup_key_part_ok(const char *s, size_t max);

#endif
