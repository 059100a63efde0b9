/* dedup.h: the alert listener's dedup store behind a small interface: which
 * (fingerprint, startsAt) keys already started a run, kept for a window. */
#ifndef RB_DEDUP_H
#define RB_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "stdlib/rb_host.h"

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
  /* Optional (NULL for the state dir): called about once a second by the
   * listener, for a shared store's heartbeat, cleanup and reconnection. */
  void (*tick)(rb_dedup *d);
  /* Optional: 1 when the store can take claims now, 0 when it can not; what
   * says which store and why ("" for the state dir), *errors counts the
   * store's failures. */
  int (*health)(rb_dedup *d, char *what, size_t len, unsigned long *errors);
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

/* The shared store of [store] url (dedup_pg.c): the rb_dedup table of the
 * PostgreSQL database every replica uses, its clock the database's. The
 * replica is named by [store] replica (default HOSTNAME:state_dir). Keys
 * this replica claimed in an earlier life end at open, as in the file
 * store; keys of a replica not heard from for [store] replica_timeout end
 * in the cleanup. Returns NULL with err. */
rb_dedup *rb_dedup_open_pg(const rb_config *cfg, const char *state_dir, int64_t window_ms,
                           size_t max_keys, char *err, size_t errlen);

/* Wrappers over d->ops; rb_dedup_free is NULL-safe. rb_dedup_tick does
 * nothing and rb_dedup_health answers 1 for a store without them. */
int rb_dedup_claim(rb_dedup *d, const char *key, int64_t now_ms, char *err,
                   size_t errlen);
void rb_dedup_finished(rb_dedup *d, const char *key, int64_t now_ms);
void rb_dedup_forget(rb_dedup *d, const char *key);
int rb_dedup_sync(rb_dedup *d, char *err, size_t errlen);
unsigned rb_dedup_hits(const rb_dedup *d, const char *key);
size_t rb_dedup_count(const rb_dedup *d);
void rb_dedup_free(rb_dedup *d);
void rb_dedup_tick(rb_dedup *d);
int rb_dedup_health(rb_dedup *d, char *what, size_t len, unsigned long *errors);

/* 1 when s may be part of a key: printable ASCII without spaces or '|'. */
int rb_dedup_key_part_ok(const char *s, size_t max);

#endif
