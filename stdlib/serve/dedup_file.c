/* dedup_file.c: the embedded dedup store: a hash table of live keys backed
 * by an append-only log in the state dir, fsync'd before the listener answers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "stdlib/serve/dedup.h"
#include "runner/base/util.h"

typedef struct {
  char key[RB_DEDUP_KEY_MAX + 1];
  unsigned char used; /* 0 empty, 1 live, 2 deleted (keeps probe chains) */
  unsigned char active;
  unsigned hits;
  int64_t ended_ms;
} slot;

typedef struct {
  rb_dedup base;
  slot *t;
  size_t cap, live, deleted;
  size_t max_keys;
  int64_t window_ms;
  char *dir;      /* NULL: memory only */
  int fd;         /* the log, -1 when memory only */
  size_t lines;   /* lines in the log */
  rb_buf pending; /* lines not yet written */
} store;

/* FNV-1a: keys are short and come from a trusted parse (charset checked). */
static size_t hash(const char *k)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *k; k++)
    h = (h ^ (unsigned char)*k) * 1099511628211ULL;
  return (size_t)h;
}

static slot *find(const store *s, const char *key)
{
  for (size_t i = hash(key) & (s->cap - 1), n = 0; n < s->cap;
       i = (i + 1) & (s->cap - 1), n++) {
    if (s->t[i].used == 0)
      return NULL;
    if (s->t[i].used == 1 && strcmp(s->t[i].key, key) == 0)
      return &s->t[i];
  }
  return NULL;
}

static int grow(store *s, size_t cap);

static slot *insert(store *s, const char *key)
{
  if ((s->live + s->deleted + 1) * 2 > s->cap && grow(s, s->cap * 2) != 0)
    return NULL;
  size_t i = hash(key) & (s->cap - 1);
  while (s->t[i].used == 1)
    i = (i + 1) & (s->cap - 1);
  if (s->t[i].used == 2)
    s->deleted--;
  slot *x = &s->t[i];
  memset(x, 0, sizeof *x);
  snprintf(x->key, sizeof x->key, "%s", key);
  x->used = 1;
  s->live++;
  return x;
}

static int grow(store *s, size_t cap)
{
  slot *old = s->t;
  size_t oldcap = s->cap;
  /* a table whose deletions filled it is rebuilt at the same size */
  if (s->live * 4 < oldcap)
    cap = oldcap;
  s->t = calloc(cap, sizeof *s->t);
  if (s->t == NULL) {
    s->t = old;
    return -1;
  }
  s->cap = cap;
  s->live = s->deleted = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].used == 1)
      *insert(s, old[i].key) = old[i];
  free(old);
  return 0;
}

static void drop(store *s, slot *x)
{
  x->used = 2;
  s->live--;
  s->deleted++;
}

static int expired(const store *s, const slot *x, int64_t now_ms)
{
  return !x->active && now_ms - x->ended_ms >= s->window_ms;
}

static void prune(store *s, int64_t now_ms)
{
  for (size_t i = 0; i < s->cap; i++)
    if (s->t[i].used == 1 && expired(s, &s->t[i], now_ms))
      drop(s, &s->t[i]);
}

static void log_line(store *s, char op, int64_t ms, const char *key)
{
  if (s->fd < 0)
    return;
  char line[RB_DEDUP_KEY_MAX + 40];
  int n = snprintf(line, sizeof line, "%c %lld %s\n", op, (long long)ms, key);
  if (rb_buf_add(&s->pending, line, (size_t)n) == RB_BUF_OK)
    s->lines++;
}

/* -- the log on disk -------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int store_sync(rb_dedup *d, char *err, size_t errlen)
{
  store *s = (store *)d;
  if (s->fd < 0 || s->pending.len == 0)
    return 0;
  if (write_all(s->fd, rb_buf_str(&s->pending), s->pending.len) != 0 ||
      fdatasync(s->fd) != 0)
    return rb_err(err, errlen, "%s/dedup.log: %s", s->dir, strerror(errno));
  rb_buf_free(&s->pending);
  rb_buf_init(&s->pending, SIZE_MAX);
  return 0;
}

static void replay_line(store *s, const char *line)
{
  char op, key[RB_DEDUP_KEY_MAX + 1];
  long long ms;
  if (sscanf(line, "%c %lld %160s", &op, &ms, key) != 3)
    return; /* a torn last line: the answer it belonged to was never sent */
  slot *x = find(s, key);
  if (op == 'c' || op == 'f') {
    if (x == NULL && (x = insert(s, key)) == NULL)
      return;
    x->active = op == 'c';
    x->ended_ms = ms;
  } else if (op == 'x' && x) {
    drop(s, x);
  }
}

static int replay(store *s, const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return errno == ENOENT ? 0 : rb_err(err, errlen, "%s: %s", path, strerror(errno));
  char line[RB_DEDUP_KEY_MAX + 64];
  while (fgets(line, sizeof line, f))
    replay_line(s, line);
  fclose(f);
  return 0;
}

/* Rewrites the log with the live keys only, atomically (write, fsync,
 * rename, fsync the directory). */
static int compact(store *s, int64_t now_ms, char *err, size_t errlen)
{
  char path[4200], tmp[4210];
  snprintf(path, sizeof path, "%s/dedup.log", s->dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  prune(s, now_ms);
  rb_buf out;
  rb_buf_init(&out, SIZE_MAX);
  for (size_t i = 0; i < s->cap; i++) {
    const slot *x = &s->t[i];
    if (x->used != 1)
      continue;
    char line[RB_DEDUP_KEY_MAX + 40];
    int n = snprintf(line, sizeof line, "%c %lld %s\n", x->active ? 'c' : 'f',
                     (long long)x->ended_ms, x->key);
    rb_buf_add(&out, line, (size_t)n);
  }
  int rc = -1, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0 && write_all(fd, rb_buf_str(&out), out.len) == 0 && fsync(fd) == 0 &&
      rename(tmp, path) == 0)
    rc = 0;
  if (fd >= 0)
    close(fd);
  rb_buf_free(&out);
  if (rc != 0)
    return rb_err(err, errlen, "%s: %s", tmp, strerror(errno));
  int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  if (s->fd >= 0)
    close(s->fd);
  s->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  s->lines = s->live;
  return s->fd >= 0 ? 0 : rb_err(err, errlen, "%s: %s", path, strerror(errno));
}

/* -- the interface -------------------------------------------------------- */

static int store_claim(rb_dedup *d, const char *key, int64_t now_ms, char *err,
                       size_t errlen)
{
  store *s = (store *)d;
  slot *x = find(s, key);
  if (x && !expired(s, x, now_ms)) {
    x->hits++;
    return 1;
  }
  if (x == NULL && s->live >= s->max_keys)
    prune(s, now_ms);
  if (x == NULL && s->live >= s->max_keys)
    return -1;
  if (x == NULL && (x = insert(s, key)) == NULL) {
    rb_err(err, errlen, "out of memory");
    return -2;
  }
  x->active = 1;
  x->hits = 0;
  x->ended_ms = now_ms;
  log_line(s, 'c', now_ms, key);
  /* dead lines outnumber the live keys: rewrite (pending lines first) */
  if (s->fd >= 0 && s->lines > 2 * s->live + 1024) {
    if (store_sync(d, err, errlen) != 0 || compact(s, now_ms, err, errlen) != 0)
      return -2;
  }
  return 0;
}

static void store_finished(rb_dedup *d, const char *key, int64_t now_ms)
{
  store *s = (store *)d;
  slot *x = find(s, key);
  if (x) {
    x->active = 0;
    x->ended_ms = now_ms;
    log_line(s, 'f', now_ms, key);
  }
}

static void store_forget(rb_dedup *d, const char *key)
{
  store *s = (store *)d;
  slot *x = find(s, key);
  if (x) {
    drop(s, x);
    log_line(s, 'x', 0, key);
  }
}

static unsigned store_hits(const rb_dedup *d, const char *key)
{
  const slot *x = find((const store *)d, key);
  return x ? x->hits : 0;
}

static size_t store_count(const rb_dedup *d)
{
  return ((const store *)d)->live;
}

static void store_free(rb_dedup *d)
{
  store *s = (store *)d;
  char err[256];
  store_sync(d, err, sizeof err);
  if (s->fd >= 0)
    close(s->fd);
  rb_buf_free(&s->pending);
  free(s->t);
  free(s->dir);
  free(s);
}

static const rb_dedup_ops file_ops = {store_claim, store_finished, store_forget,
                                      store_sync,  store_hits,     store_count,
                                      store_free,  NULL,           NULL};

rb_dedup *rb_dedup_open_file(const char *dir, int64_t window_ms, size_t max_keys,
                             int64_t now_ms, char *err, size_t errlen)
{
  store *s = calloc(1, sizeof *s);
  if (s == NULL || (s->t = calloc(1024, sizeof *s->t)) == NULL) {
    free(s);
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  s->base.ops = &file_ops;
  s->cap = 1024;
  s->fd = -1;
  s->window_ms = window_ms;
  s->max_keys = max_keys ? max_keys : 1;
  rb_buf_init(&s->pending, SIZE_MAX);
  if (dir == NULL)
    return &s->base;
  char path[4200];
  s->dir = strdup(dir);
  snprintf(path, sizeof path, "%s/dedup.log", dir);
  if (s->dir == NULL || (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
    rb_err(err, errlen, "%s: %s", dir, s->dir ? strerror(errno) : "out of memory");
    goto fail;
  }
  if (replay(s, path, err, errlen) != 0)
    goto fail;
  /* a run that was active when the listener stopped: its window starts now */
  for (size_t i = 0; i < s->cap; i++)
    if (s->t[i].used == 1 && s->t[i].active) {
      s->t[i].active = 0;
      s->t[i].ended_ms = now_ms;
    }
  if (compact(s, now_ms, err, errlen) != 0)
    goto fail;
  return &s->base;
fail:
  store_free(&s->base);
  return NULL;
}

/* -- wrappers ------------------------------------------------------------- */

int rb_dedup_claim(rb_dedup *d, const char *key, int64_t now_ms, char *err, size_t errlen)
{
  return d->ops->claim(d, key, now_ms, err, errlen);
}

void rb_dedup_finished(rb_dedup *d, const char *key, int64_t now_ms)
{
  d->ops->finished(d, key, now_ms);
}

void rb_dedup_forget(rb_dedup *d, const char *key)
{
  d->ops->forget(d, key);
}

int rb_dedup_sync(rb_dedup *d, char *err, size_t errlen)
{
  return d->ops->sync(d, err, errlen);
}

unsigned rb_dedup_hits(const rb_dedup *d, const char *key)
{
  return d->ops->hits(d, key);
}

size_t rb_dedup_count(const rb_dedup *d)
{
  return d->ops->count(d);
}

void rb_dedup_free(rb_dedup *d)
{
  if (d)
    d->ops->free(d);
}

int rb_dedup_key_part_ok(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] <= ' ' || s[i] > '~' || s[i] == '|')
      return 0;
  return 1;
}

void rb_dedup_tick(rb_dedup *d)
{
  if (d->ops->tick)
    d->ops->tick(d);
}

int rb_dedup_health(rb_dedup *d, char *what, size_t len, unsigned long *errors)
{
  if (d->ops->health)
    return d->ops->health(d, what, len, errors);
  snprintf(what, len, "%s", ""); /* the state dir: nothing to say */
  *errors = 0;
  return 1;
}
