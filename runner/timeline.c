/* timeline.c: the append-only JSON Lines incident timeline (also the run
 * journal): crash-safe hash-chained appends, torn-line repair, reading,
 * chain verification and exports. */
#include "runner/timeline.h"
#include "runner/timeline_mirror.h"

#include "runner/base/redact.h"
#include "runner/base/sha256.h"
#include "runner/base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct rb_timeline {
  int fd;
  int do_fsync;
  char *path;
  /* The chain's tail as of the file length known_end (-1: unknown, read it
   * again). Only appends, which hold the lock, grow the file, and the repair
   * only cuts an unfinished line, so an unchanged length means no other
   * process appended since. */
  off_t known_end;
  long long last_seq; /* "seq" of the last line; -1 when it has none */
  char last_hash[65]; /* hex SHA-256 of the last line */
};

#define RB_TL_HEADER "timeline_header"

/* Longest rendering of a detail value or command in a sentence. */
#define RB_TL_MAXVAL 300

/* Sets *start to the offset just after the last '\n' in bytes [0, end) of
 * the file (0 when there is none). */
static int find_line_start(int fd, const char *path, off_t end, off_t *start, char *err,
                           size_t errlen)
{
  char buf[4096];
  off_t pos = end;
  while (pos > 0) {
    size_t n = pos >= (off_t)sizeof buf ? sizeof buf : (size_t)pos;
    ssize_t got = pread(fd, buf, n, pos - (off_t)n);
    if (got != (ssize_t)n)
      return rb_err(err, errlen, "%s: read: %s", path,
                    got < 0 ? strerror(errno) : "short");
    size_t i = n;
    while (i > 0 && buf[i - 1] != '\n')
      i--;
    if (i > 0) {
      *start = pos - (off_t)n + (off_t)i;
      return 0;
    }
    pos -= (off_t)n;
  }
  *start = 0;
  return 0;
}

/* Cuts the file back to just after its last '\n' when its last byte is not
 * one. Called with the file locked so no append is mid-write. */
static int repair_tail(int fd, const char *path, int *repaired, char *err, size_t errlen)
{
  struct stat st;
  if (fstat(fd, &st) != 0)
    return rb_err(err, errlen, "%s: %s", path, strerror(errno));
  if (st.st_size == 0)
    return 0;
  char last;
  if (pread(fd, &last, 1, st.st_size - 1) != 1)
    return rb_err(err, errlen, "%s: read: %s", path, strerror(errno));
  if (last == '\n')
    return 0;
  off_t pos;
  if (find_line_start(fd, path, st.st_size, &pos, err, errlen) != 0)
    return -1;
  if (ftruncate(fd, pos) != 0)
    return rb_err(err, errlen, "%s: cutting torn last line: %s", path, strerror(errno));
  if (repaired != NULL)
    *repaired = 1;
  return 0;
}

rb_timeline *rb_timeline_open(const char *path, int do_fsync, int *repaired, char *err,
                              size_t errlen)
{
  if (repaired != NULL)
    *repaired = 0;
  rb_timeline *tl = calloc(1, sizeof *tl);
  if (tl == NULL || (tl->path = strdup(path)) == NULL) {
    free(tl);
    rb_err(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  tl->do_fsync = do_fsync;
  tl->known_end = -1;
  tl->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (tl->fd < 0) {
    rb_err(err, errlen, "%s: %s", path, strerror(errno));
    goto fail;
  }
  if (flock(tl->fd, LOCK_EX) != 0) {
    rb_err(err, errlen, "%s: lock: %s", path, strerror(errno));
    goto fail;
  }
  int rep = 0;
  int rc = repair_tail(tl->fd, path, &rep, err, errlen);
  if (repaired != NULL)
    *repaired = rep;
  if (rc == 0 && rep && do_fsync)
    fdatasync(tl->fd);
  flock(tl->fd, LOCK_UN);
  if (rc != 0)
    goto fail;
  return tl;
fail:
  rb_timeline_free(tl);
  return NULL;
}

void rb_timeline_free(rb_timeline *tl)
{
  if (tl == NULL)
    return;
  if (tl->fd >= 0)
    close(tl->fd);
  free(tl->path);
  free(tl);
}

int rb_timeline_sync(rb_timeline *tl, char *err, size_t errlen)
{
  if (fdatasync(tl->fd) != 0)
    return rb_err(err, errlen, "%s: fsync: %s", tl->path, strerror(errno));
  return 0;
}

const char *rb_timeline_path(const rb_timeline *tl)
{
  return tl ? tl->path : NULL;
}

/* A scrubbed deep copy of ev with "ts" first, added when absent. The caller's
 * event is left untouched. Caller decrefs. */
static json_t *prepare_event(json_t *ev)
{
  json_t *out = json_object();
  if (out == NULL)
    return NULL;
  json_t *ts = json_object_get(ev, "ts");
  if (ts != NULL) {
    json_object_set_new(out, "ts", json_deep_copy(ts));
  } else {
    char buf[32];
    rb_format_ts(rb_now_wall_ms(), buf, sizeof buf);
    json_object_set_new(out, "ts", json_string(buf));
  }
  const char *k;
  json_t *v;
  json_object_foreach(ev, k, v)
  {
    if (strcmp(k, "ts") != 0 && json_object_set_new(out, k, json_deep_copy(v)) != 0) {
      json_decref(out);
      return NULL;
    }
  }
  rb_redact_json(out);
  return out;
}

/* Writes all of buf in one write() where the kernel allows, continuing after
 * a partial write or EINTR. */
static int write_all(int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The canonical form of a line for the chain: its exact bytes, without the
 * newline. out gets 64 lowercase hex digits. */
static void hash_line(const char *line, size_t len, char out[65])
{
  rb_sha256_hex(line, len, out);
}

/* Reads the last line of the file (which ends in '\n' at end - 1) into the
 * chain's tail: its hash, and its "seq" if it is a chained event. */
static int load_tail(rb_timeline *tl, off_t end, char *err, size_t errlen)
{
  off_t start;
  if (find_line_start(tl->fd, tl->path, end - 1, &start, err, errlen) != 0)
    return -1;
  size_t len = (size_t)(end - 1 - start);
  char *line = malloc(len + 1);
  if (line == NULL)
    return rb_err(err, errlen, "%s: out of memory", tl->path);
  ssize_t got = len ? pread(tl->fd, line, len, start) : 0;
  if (got != (ssize_t)len) {
    free(line);
    return rb_err(err, errlen, "%s: read: %s", tl->path,
                  got < 0 ? strerror(errno) : "short");
  }
  hash_line(line, len, tl->last_hash);
  json_t *ev = json_loadb(line, len, 0, NULL);
  json_t *seq = json_object_get(ev, "seq");
  tl->last_seq = json_is_integer(seq) && json_integer_value(seq) >= 0
                     ? (long long)json_integer_value(seq)
                     : -1;
  json_decref(ev);
  free(line);
  return 0;
}

/* Brings the chain's tail up to date with the file, under the lock: cuts a
 * torn line a crashed writer left, then rereads the last line unless this
 * handle wrote it. st->st_size is kept current. */
static int sync_tail(rb_timeline *tl, struct stat *st, char *err, size_t errlen)
{
  if (tl->known_end >= 0 && tl->known_end == st->st_size)
    return 0;
  int rep = 0;
  if (repair_tail(tl->fd, tl->path, &rep, err, errlen) != 0)
    return -1;
  if (rep && fstat(tl->fd, st) != 0)
    return rb_err(err, errlen, "%s: %s", tl->path, strerror(errno));
  tl->last_seq = -1;
  tl->last_hash[0] = '\0';
  if (st->st_size > 0 && load_tail(tl, st->st_size, err, errlen) != 0)
    return -1;
  tl->known_end = st->st_size;
  return 0;
}

/* Appends to m the line body ("{...}", no newline) with the chain fields
 * after its last member, and the newline; then hashes what it added. */
static void put_chained(FILE *m, const char *body, long long seq, const char *prev,
                        char hash[65], char **buf, size_t *len)
{
  fflush(m);
  size_t from = *len;
  size_t blen = strlen(body);
  fprintf(m, "%.*s%sseq\":%lld", (int)(blen - 1), body, blen > 2 ? ",\"" : "\"", seq);
  if (prev != NULL && prev[0] != '\0')
    fprintf(m, ",\"prev\":\"%s\"", prev);
  fputc('}', m);
  fflush(m);
  hash_line(*buf + from, *len - from, hash);
  fputc('\n', m);
}

/* The header that opens a chain: in an empty file, or after lines written
 * before chaining (then it chains to the last of them). It takes the time of
 * the event it comes with, so times never go backwards. */
static char *header_body(const char *ts)
{
  json_t *h =
      json_pack("{s:s, s:s, s:s}", "ts", ts, "event", RB_TL_HEADER, "chain", "sha256");
  char *s = h ? json_dumps(h, JSON_COMPACT) : NULL;
  json_decref(h);
  return s;
}

/* Builds, under the lock, the bytes to append for body: a header first when
 * the last line is not a chained event, then body chained to it. *seq and
 * hash get the appended event's. Caller frees *out. */
static int chain_lines(rb_timeline *tl, const char *body, const char *ts, char **out,
                       size_t *outlen, long long *seq, char hash[65])
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m == NULL)
    return -1;
  long long last = tl->last_seq;
  char prev[65];
  snprintf(prev, sizeof prev, "%s", tl->last_hash);
  if (last < 0) {
    char *h = header_body(ts);
    if (h == NULL) {
      fclose(m);
      free(buf);
      return -1;
    }
    char hh[65];
    put_chained(m, h, 0, prev, hh, &buf, &len);
    free(h);
    memcpy(prev, hh, sizeof prev);
    last = 0;
  }
  *seq = last + 1;
  put_chained(m, body, *seq, prev, hash, &buf, &len);
  if (fclose(m) != 0) {
    free(buf);
    return -1;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

/* Appends body as the next link of the chain, all under the file lock: the
 * tail is read, the line (with a header first when needed) written in one
 * write(), cut back off if the write fails part way, then made durable. So
 * concurrent appenders from other processes chain one after the other, and
 * a concurrent open cannot take a half-written line for a torn one. */
static int write_chained(rb_timeline *tl, const char *body, const char *ts, char *err,
                         size_t errlen)
{
  if (flock(tl->fd, LOCK_EX) != 0)
    return rb_err(err, errlen, "%s: lock: %s", tl->path, strerror(errno));
  int rc = -1;
  char *lines = NULL;
  size_t len = 0;
  long long seq = 0;
  char hash[65];
  struct stat st;
  if (fstat(tl->fd, &st) != 0) {
    rb_err(err, errlen, "%s: %s", tl->path, strerror(errno));
    goto out;
  }
  if (sync_tail(tl, &st, err, errlen) != 0)
    goto out;
  if (chain_lines(tl, body, ts, &lines, &len, &seq, hash) != 0) {
    rb_err(err, errlen, "%s: out of memory", tl->path);
    goto out;
  }
  tl->known_end = -1;
  if (write_all(tl->fd, lines, len) != 0) {
    rb_err(err, errlen, "%s: write: %s", tl->path, strerror(errno));
    if (ftruncate(tl->fd, st.st_size) != 0) {
      /* the torn line is cut by the next open or append */
    }
    goto out;
  }
  tl->known_end = st.st_size + (off_t)len;
  tl->last_seq = seq;
  memcpy(tl->last_hash, hash, sizeof hash);
  if (tl->do_fsync && fdatasync(tl->fd) != 0) {
    rb_err(err, errlen, "%s: fsync: %s", tl->path, strerror(errno));
    goto out;
  }
  /* a run of a serve replica: durable in the shared store too, or failed */
  if (rb_timeline_mirror(tl->path, lines, len, err, errlen) != 0)
    goto out;
  rc = 0;
out:
  free(lines);
  flock(tl->fd, LOCK_UN);
  return rc;
}

int rb_timeline_append(rb_timeline *tl, json_t *ev, char *err, size_t errlen)
{
  if (tl == NULL || !json_is_object(ev))
    return rb_err(err, errlen, "timeline: event is not a JSON object");
  int rc = -1;
  char *body = NULL;
  json_t *copy = prepare_event(ev);
  if (copy == NULL) {
    rb_err(err, errlen, "%s: out of memory", tl->path);
    goto out;
  }
  /* the chain's fields are the writer's, never the caller's */
  json_object_del(copy, "seq");
  json_object_del(copy, "prev");
  body = json_dumps(copy, JSON_COMPACT);
  if (body == NULL) {
    rb_err(err, errlen, "%s: event cannot be serialised", tl->path);
    goto out;
  }
  const char *ts = json_string_value(json_object_get(copy, "ts"));
  rc = write_chained(tl, body, ts ? ts : "", err, errlen);
out:
  free(body);
  json_decref(copy);
  return rc;
}

static int blank(const char *s)
{
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
      return 0;
  return 1;
}

int rb_timeline_is_header(const json_t *ev)
{
  const char *e = json_string_value(json_object_get(ev, "event"));
  return e != NULL && strcmp(e, RB_TL_HEADER) == 0;
}

/* Called with each event and its line exactly as stored (len bytes, no
 * newline). */
typedef int (*line_cb)(json_t *ev, const char *raw, size_t len, void *arg);

/* The walk behind rb_timeline_read, also handing out the raw line. */
static int read_lines(const char *path, line_cb cb, void *arg, int *skipped, char *err,
                      size_t errlen)
{
  if (skipped != NULL)
    *skipped = 0;
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return rb_err(err, errlen, "%s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0, first_bad = 0;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (blank(line))
      continue;
    int ended = line[n - 1] == '\n';
    json_t *ev = json_loadb(line, (size_t)n, 0, NULL);
    if (!json_is_object(ev)) {
      json_decref(ev);
      if (!ended) {
        /* only the last line can lack its newline: a crash mid-write */
        fprintf(stderr, "warning: %s:%ld: ignoring torn last timeline line\n", path,
                lineno);
        if (skipped != NULL)
          (*skipped)++;
      } else {
        fprintf(stderr,
                "error: %s:%ld: unparseable timeline line (complete, so not torn)\n",
                path, lineno);
        first_bad = first_bad ? first_bad : lineno;
      }
      continue;
    }
    if (cb != NULL)
      rc = cb(ev, line, (size_t)n - (size_t)ended, arg);
    json_decref(ev);
  }
  if (rc == 0 && ferror(f))
    rc = rb_err(err, errlen, "%s: read: %s", path, strerror(errno));
  if (rc == 0 && first_bad)
    rc = rb_err(err, errlen,
                "%s:%ld: unparseable line in the timeline (not a torn last line: edited "
                "or damaged)",
                path, first_bad);
  free(line);
  fclose(f);
  return rc;
}

typedef struct {
  rb_timeline_cb cb;
  void *arg;
} read_ctx;

static int forward_event(json_t *ev, const char *raw, size_t len, void *arg)
{
  (void)raw;
  (void)len;
  read_ctx *r = arg;
  return r->cb ? r->cb(ev, r->arg) : 0;
}

int rb_timeline_read(const char *path, rb_timeline_cb cb, void *arg, int *skipped,
                     char *err, size_t errlen)
{
  read_ctx r = {cb, arg};
  return read_lines(path, forward_event, &r, skipped, err, errlen);
}

/* ---- verify ---- */

enum { VL_EVENT, VL_HEADER, VL_PLAIN, VL_BAD, VL_TORN };

/* One non-blank line as verify sees it. */
typedef struct {
  int kind;
  long lineno;
  long long seq; /* -1 when absent or not a non-negative integer */
  char hash[65];
  char prev[65]; /* "" when absent */
} vline;

typedef struct {
  vline *v;
  size_t n, cap;
} vlines;

static int classify_line(vline *l, const char *line, size_t n)
{
  int ended = n > 0 && line[n - 1] == '\n';
  size_t len = n - (size_t)ended;
  hash_line(line, len, l->hash);
  l->seq = -1;
  l->prev[0] = '\0';
  json_t *ev = json_loadb(line, len, 0, NULL);
  if (!json_is_object(ev)) {
    json_decref(ev);
    return ended ? VL_BAD : VL_TORN;
  }
  json_t *seq = json_object_get(ev, "seq");
  const char *prev = json_string_value(json_object_get(ev, "prev"));
  if (json_is_integer(seq) && json_integer_value(seq) >= 0)
    l->seq = (long long)json_integer_value(seq);
  if (prev != NULL)
    snprintf(l->prev, sizeof l->prev, "%s", prev);
  int kind = rb_timeline_is_header(ev)     ? VL_HEADER
             : seq != NULL || prev != NULL ? VL_EVENT
                                           : VL_PLAIN;
  json_decref(ev);
  return kind;
}

static int load_vlines(const char *path, vlines *out, char *err, size_t errlen)
{
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return rb_err(err, errlen, "%s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (blank(line))
      continue;
    if (out->n == out->cap) {
      size_t nc = out->cap ? out->cap * 2 : 64;
      vline *nv = realloc(out->v, nc * sizeof *nv);
      if (nv == NULL) {
        rc = rb_err(err, errlen, "%s: out of memory", path);
        break;
      }
      out->v = nv;
      out->cap = nc;
    }
    vline *l = &out->v[out->n++];
    l->lineno = lineno;
    l->kind = classify_line(l, line, (size_t)n);
  }
  if (rc == 0 && ferror(f))
    rc = rb_err(err, errlen, "%s: read: %s", path, strerror(errno));
  free(line);
  fclose(f);
  return rc;
}

static int bad(rb_tl_verdict *v, long lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(rb_tl_verdict *v, long lineno, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->why, sizeof v->why, fmt, ap);
  va_end(ap);
  v->bad_line = lineno;
  return 1;
}

/* Says why line k does not chain to line k - 1 (both chained events or the
 * header). Another line's hash in its "prev" means lines were moved; a gap in
 * "seq" that lines were deleted; else the previous line's bytes changed. */
static int diagnose(const vlines *ls, size_t k, rb_tl_verdict *v)
{
  const vline *e = &ls->v[k], *p = &ls->v[k - 1];
  for (size_t j = 0; e->prev[0] && j < ls->n; j++) {
    if (j == k - 1 || strcmp(ls->v[j].hash, e->prev) != 0)
      continue;
    if (j > k)
      return bad(v, e->lineno, "reordered: it chains to line %ld, which comes after it",
                 ls->v[j].lineno);
    return bad(v, e->lineno, "reordered or duplicated: it chains to line %ld, not %ld",
               ls->v[j].lineno, p->lineno);
  }
  if (e->seq >= 0 && e->seq <= p->seq)
    return bad(v, e->lineno, "reordered: seq %lld after seq %lld", e->seq, p->seq);
  if (e->seq > p->seq + 1)
    return bad(v, e->lineno,
               "deleted: %lld event(s) missing before it (seq %lld after %lld)",
               e->seq - p->seq - 1, e->seq, p->seq);
  if (e->seq < 0 || e->prev[0] == '\0')
    return bad(v, e->lineno, "edited: its seq or prev field is missing or malformed");
  if (p->kind == VL_EVENT)
    v->events--; /* it chained to its own predecessor, yet is the bad one */
  return bad(v, p->lineno, "edited: its SHA-256 is not the one line %ld records",
             e->lineno);
}

/* Checks line k given the lines before it; 1 stops the walk at a bad line. */
static int verify_one(const vlines *ls, size_t k, int *chained, rb_tl_verdict *v)
{
  const vline *e = &ls->v[k], *p = k ? &ls->v[k - 1] : NULL;
  switch (e->kind) {
  case VL_TORN:
    v->torn_line = e->lineno;
    return 0;
  case VL_BAD:
    return bad(v, e->lineno, "unparseable: not a JSON object (and not a torn last line)");
  case VL_PLAIN:
    if (*chained)
      return bad(v, e->lineno, "no hash: added or rewritten outside the chain");
    v->unchained++;
    return 0;
  case VL_HEADER:
    if (*chained)
      return bad(v, e->lineno, "a second header: the chain restarts here");
    if (p == NULL && e->prev[0])
      return bad(v, e->lineno,
                 "the header names a previous line: lines before it deleted");
    if (p != NULL && strcmp(e->prev, p->hash) != 0)
      return bad(v, e->lineno, "the header does not chain to line %ld", p->lineno);
    *chained = 1;
    break;
  default:
    if (!*chained)
      return bad(v, e->lineno, "no header before it: the chain's start was deleted");
    if (e->seq != p->seq + 1 || strcmp(e->prev, p->hash) != 0)
      return diagnose(ls, k, v);
    v->events++;
  }
  memcpy(v->head, e->hash, sizeof v->head);
  return 0;
}

int rb_timeline_verify(const char *path, rb_tl_verdict *v, char *err, size_t errlen)
{
  memset(v, 0, sizeof *v);
  vlines ls = {0};
  if (load_vlines(path, &ls, err, errlen) != 0) {
    free(ls.v);
    return -1;
  }
  int chained = 0, rc = 0;
  for (size_t k = 0; rc == 0 && k < ls.n; k++)
    rc = verify_one(&ls, k, &chained, v);
  free(ls.v);
  if (rc == 0 && (v->unchained > 0 || !chained))
    rc = 1;
  return rc;
}

/* ---- describe ---- */

static const char *str_of(const json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

/* Appends a JSON value as text: strings bare, arrays of strings joined with
 * spaces (commands), anything else compact JSON; cut at RB_TL_MAXVAL. */
static void put_value(FILE *m, const json_t *v)
{
  char *own = NULL;
  const char *s = json_string_value(v);
  if (s == NULL && json_is_array(v)) {
    size_t i;
    json_t *el;
    int all_str = 1;
    json_array_foreach(v, i, el) all_str &= json_is_string(el);
    if (all_str) {
      size_t len = 0;
      json_array_foreach(v, i, el) len += json_string_length(el) + 1;
      own = calloc(1, len + 1);
      if (own != NULL)
        json_array_foreach(v, i, el)
        {
          if (i > 0)
            strcat(own, " ");
          strcat(own, json_string_value(el));
        }
    }
  }
  if (s == NULL && own == NULL && v != NULL)
    own = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (s == NULL)
    s = own ? own : "?";
  size_t len = strlen(s);
  if (len > RB_TL_MAXVAL)
    fprintf(m, "%.*s...", RB_TL_MAXVAL, s);
  else
    fputs(s, m);
  free(own);
}

/* Appends what an action touched: ` `cmd` on host`, ` POST url`, results. */
static void put_action(FILE *m, const json_t *d)
{
  json_t *cmd = json_object_get(d, "command");
  json_t *host = json_object_get(d, "host");
  if (cmd != NULL) {
    fputs(" `", m);
    put_value(m, cmd);
    fputc('`', m);
  }
  const char *url = str_of(d, "url");
  if (url != NULL) {
    const char *method = str_of(d, "method");
    fprintf(m, " %s %s", method ? method : "GET", url);
    const char *from = str_of(d, "url_from");
    if (from != NULL) /* a secret URL: say which setting it comes from */
      fprintf(m, " (%s)", from);
  }
  if (host != NULL) {
    fputs(" on ", m);
    put_value(m, host);
  }
}

static void put_results(FILE *m, const json_t *d)
{
  json_t *code = json_object_get(d, "exit_code");
  if (json_is_integer(code))
    fprintf(m, ", exit %lld", (long long)json_integer_value(code));
  json_t *status = json_object_get(d, "status");
  if (json_is_integer(status))
    fprintf(m, ", HTTP %lld", (long long)json_integer_value(status));
  json_t *value = json_object_get(d, "value");
  if (value != NULL) {
    fputs(" -> ", m);
    put_value(m, value);
  }
}

static void put_duration(FILE *m, const json_t *ev, const char *prefix)
{
  json_t *d = json_object_get(ev, "duration_ms");
  if (!json_is_number(d))
    return;
  double ms = json_number_value(d);
  if (ms < 0 || ms > 1e12)
    return;
  char buf[32];
  rb_format_elapsed((int64_t)(ms * 1000), buf, sizeof buf);
  fprintf(m, "%s%s", prefix, buf);
}

void rb_timeline_waited(const json_t *d, char *buf, size_t len)
{
  const json_t *w = json_object_get(d, "waited_ms");
  buf[0] = '\0';
  if (!json_is_integer(w) || json_integer_value(w) < 0)
    return;
  long long ms = (long long)json_integer_value(w);
  char t[32];
  /* Whole seconds read as the interval a runbook states ("every 15s"). */
  if (ms % 1000 == 0 && ms < 60000)
    snprintf(t, sizeof t, "%lld s", ms / 1000);
  else
    rb_format_elapsed(ms * 1000, t, sizeof t);
  snprintf(buf, len, "after %s%s", t,
           json_is_true(json_object_get(d, "simulated")) ? " (simulated)" : "");
}

static const char *who(const json_t *ev, const json_t *d)
{
  const char *w = str_of(d, "approver");
  if (w == NULL)
    w = str_of(d, "by");
  if (w == NULL)
    w = str_of(ev, "actor");
  return w;
}

static int eq(const char *a, const char *b)
{
  return a != NULL && strcmp(a, b) == 0;
}

static void describe_run(FILE *m, const json_t *ev, const char *event, const json_t *d)
{
  const char *mode = str_of(ev, "mode");
  const char *book = str_of(ev, "runbook");
  const char *msg = str_of(d, "error") ? str_of(d, "error") : str_of(d, "message");
  fprintf(m, "run %s", event ? event : "event");
  if (eq(event, "started")) {
    if (mode || book)
      fprintf(m, " (%s%s%s)", mode ? mode : "", mode && book ? " of " : "",
              book ? book : "");
    if (str_of(ev, "actor"))
      fprintf(m, " by %s", str_of(ev, "actor"));
  } else if (eq(event, "finished")) {
    if (str_of(d, "outcome"))
      fprintf(m, ": %s", str_of(d, "outcome"));
    put_duration(m, ev, " after ");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "pages_failed"), i, f)
    {
      fprintf(m, "; %s", json_string_value(f) ? json_string_value(f) : "?");
    }
  } else if (msg != NULL) {
    fprintf(m, ": %s", msg);
  }
}

/* A dry-run's check of the target: " [preflight ok]" or the reason. */
static void put_preflight(FILE *m, const json_t *pf)
{
  if (pf == NULL)
    return;
  if (json_is_true(json_object_get(pf, "ok")))
    fputs(" [preflight ok]", m);
  else
    fprintf(m, " [would fail: %s]", str_of(pf, "reason") ? str_of(pf, "reason") : "?");
}

/* An escalation's page (detail.page of an escalate step, or a resolve's
 * note): whom it reached, or loudly that it reached nobody. */
static void put_page(FILE *m, const json_t *p, int resolve)
{
  if (p == NULL)
    return;
  const char *to = str_of(p, "target") ? str_of(p, "target") : "?";
  const char *what = resolve ? "resolve of the page to" : "page to";
  if (json_is_false(json_object_get(p, "configured")))
    fprintf(m, "%swould page %s: %s", resolve ? "" : "; ", to,
            str_of(p, "message") ? str_of(p, "message") : "not configured");
  else if (!json_is_true(json_object_get(p, "ok")))
    fprintf(m, "%s%s %s FAILED: %s", resolve ? "" : "; ", what, to,
            str_of(p, "error") ? str_of(p, "error") : "?");
  else if (json_is_true(json_object_get(p, "simulated")))
    fprintf(m, "%swould %s %s (%s)", resolve ? "" : "; ",
            resolve ? "resolve the page to" : "page", to,
            str_of(p, "kind") ? str_of(p, "kind") : "?");
  else
    fprintf(m, "%s%s %s (%s, HTTP %d)", resolve ? "" : "; ",
            resolve ? "resolved the page to" : "paged", to,
            str_of(p, "kind") ? str_of(p, "kind") : "?",
            (int)json_integer_value(json_object_get(p, "status")));
}

static void describe_step(FILE *m, const json_t *ev, const char *event, const json_t *d)
{
  const char *title = str_of(d, "title");
  const char *msg = str_of(d, "message");
  if (eq(event, "decision")) {
    const char *q = str_of(d, "question") ? str_of(d, "question") : title;
    fprintf(m, "%s -> ", q ? q : "decided");
    put_value(m, json_object_get(d, "value"));
    char waited[64]; /* a drill's simulated clock; exec's is in duration_ms */
    rb_timeline_waited(d, waited, sizeof waited);
    if (waited[0] && json_is_true(json_object_get(d, "simulated")))
      fprintf(m, " %s", waited);
    if (str_of(d, "branch"))
      fprintf(m, ", taking '%s'", str_of(d, "branch"));
  } else if (eq(event, "would_run") && eq(str_of(d, "op"), "page")) {
    put_page(m, d, 1);
  } else if (eq(event, "note") && eq(str_of(d, "op"), "page")) {
    put_page(m, d, 1);
  } else if (eq(event, "would_run")) {
    fputs("would run", m);
    if (json_object_get(d, "command") || json_object_get(d, "url"))
      put_action(m, d);
    else if (title)
      fprintf(m, " (%s)", title);
    put_preflight(m, json_object_get(d, "preflight"));
  } else if (eq(event, "started")) {
    fputs("started", m);
    if (title)
      fprintf(m, " (%s)", title);
    put_action(m, d);
  } else if (eq(event, "finished") && str_of(d, "phase") && msg) {
    /* a status update: what the stakeholders were told */
    fprintf(m, "status update [%s]: %s", str_of(d, "phase"), msg);
  } else if (eq(event, "finished") && str_of(d, "to")) {
    fprintf(m, "escalated to %s%s%s", str_of(d, "to"), msg ? ": " : "", msg ? msg : "");
    put_page(m, json_object_get(d, "page"), 0);
  } else if (eq(event, "finished")) {
    fputs("finished", m);
    put_duration(m, ev, " in ");
    put_action(m, d);
    put_results(m, d);
    if (str_of(d, "outcome"))
      fprintf(m, ": %s", str_of(d, "outcome"));
  } else if (eq(event, "failed")) {
    fputs("failed", m);
    if (str_of(d, "error"))
      fprintf(m, ": %s", str_of(d, "error"));
    put_action(m, d);
    put_results(m, d);
  } else if (eq(event, "approval_requested")) {
    const char *q = str_of(d, "question") ? str_of(d, "question") : title;
    fprintf(m, "approval requested%s%s", q ? ": " : "", q ? q : "");
  } else if (eq(event, "approved") || eq(event, "denied")) {
    const char *w = who(ev, d);
    fprintf(m, "%s%s%s", event, w ? " by " : "", w ? w : "");
    if (msg)
      fprintf(m, ": %s", msg);
  } else {
    fputs(event ? event : "event", m);
    const char *text = msg ? msg : str_of(d, "reason") ? str_of(d, "reason") : title;
    if (str_of(d, "phase"))
      fprintf(m, " [%s]", str_of(d, "phase"));
    if (text)
      fprintf(m, ": %s", text);
  }
}

/* Control bytes (newlines, ESC from remote output) would break a line of text
 * or a table row, or drive the terminal: they become spaces. */
static void flatten(char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = ' ';
}

/* `runbook serve`'s note that the alert which opened the incident resolved:
 * "alert resolved (via alertmanager): NAME", the route without "/alerts/". */
static void describe_alert_resolved(FILE *m, const json_t *ev, const json_t *d)
{
  const char *via = str_of(d, "via"), *actor = str_of(ev, "actor");
  if (via && strncmp(via, "/alerts/", 8) == 0)
    via += 8;
  fprintf(m, "alert resolved (via %s)", via && *via ? via : "?");
  if (actor && strncmp(actor, "alert:", 6) == 0 && actor[6])
    fprintf(m, ": %s", actor + 6);
}

/* with_step=0 leaves out the "step: " prefix (the text export has a column). */
static char *describe(const json_t *ev, int with_step)
{
  if (!json_is_object(ev))
    return strdup("(not an event)");
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m == NULL)
    return NULL;
  const char *step = str_of(ev, "step");
  const char *kind = str_of(ev, "kind");
  const char *event = str_of(ev, "event");
  json_t *d = json_object_get(ev, "detail");
  if (!json_is_object(d))
    d = NULL;
  int alert = eq(event, "alert_resolved") && kind == NULL;
  int run_level = !alert && (eq(kind, "run") || (step == NULL && kind == NULL));
  if (alert) {
    describe_alert_resolved(m, ev, d);
  } else if (run_level) {
    describe_run(m, ev, event, d);
  } else {
    if (with_step)
      fprintf(m, "%s: ", step ? step : kind);
    describe_step(m, ev, event, d);
  }
  if (fclose(m) != 0) {
    free(buf);
    return NULL;
  }
  flatten(buf);
  if (!with_step) {
    /* the text export's columns already say "run started" or "failed" */
    const char *ev_word = event ? event : "event";
    size_t skip = run_level ? strlen("run ") : 0;
    size_t wl = strlen(ev_word);
    if (strncmp(buf + skip, ev_word, wl) == 0 &&
        (run_level || buf[skip + wl] == ':' || buf[skip + wl] == '\0')) {
      skip += wl;
      while (buf[skip] == ':' || buf[skip] == ' ')
        skip++;
      memmove(buf, buf + skip, strlen(buf + skip) + 1);
    }
  }
  return buf;
}

char *rb_timeline_describe(const json_t *ev)
{
  return describe(ev, 1);
}

/* ---- exports ---- */

typedef struct {
  rb_tl_format fmt;
  FILE *out;
  char date[11]; /* the date of the first event, shown once */
  int rows;
  char *err;
  size_t errlen;
  const char *path;
} export_ctx;

/* Splits "2026-11-22T09:36:08.312Z" into date and time; 0 when malformed. */
static int split_ts(const char *ts, char date[11], char time[13])
{
  if (ts == NULL || strlen(ts) < 19 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' ||
      ts[13] != ':' || ts[16] != ':')
    return 0;
  memcpy(date, ts, 10);
  date[10] = '\0';
  size_t n = 8;
  if (ts[19] == '.' && strlen(ts) >= 23)
    n = 12;
  memcpy(time, ts + 11, n);
  time[n] = '\0';
  return 1;
}

/* The time column: time of day, with the date in front once it differs from
 * the first event's (an incident that runs past midnight UTC). */
static void put_time(export_ctx *x, const json_t *ev, int with_ms)
{
  char date[11], time[13];
  if (!split_ts(str_of(ev, "ts"), date, time)) {
    fputs(with_ms ? "??:??:??.???" : "??:??:??", x->out);
    return;
  }
  if (!with_ms)
    time[8] = '\0';
  if (x->date[0] == '\0')
    memcpy(x->date, date, sizeof date);
  if (strcmp(date, x->date) != 0)
    fprintf(x->out, "%s ", date);
  fputs(time, x->out);
}

static void put_md_cell(FILE *out, const char *s)
{
  for (; *s; s++) {
    if (*s == '|')
      fputc('\\', out);
    fputc(*s, out);
  }
}

static void markdown_head(export_ctx *x, const json_t *ev)
{
  char date[11], time[13];
  if (split_ts(str_of(ev, "ts"), date, time))
    memcpy(x->date, date, sizeof date);
  const char *inc = str_of(ev, "incident");
  const char *book = str_of(ev, "runbook");
  const char *mode = str_of(ev, "mode");
  fputs("## Timeline (All times UTC)\n\n", x->out);
  char line[512];
  snprintf(line, sizeof line, "Incident %s, runbook %s, %s%s%s%s",
           inc ? inc : "(unnamed)", book ? book : "(unknown)",
           x->date[0] ? x->date : "(undated)", mode && !eq(mode, "exec") ? " (" : "",
           mode && !eq(mode, "exec") ? mode : "", mode && !eq(mode, "exec") ? ")" : "");
  flatten(line);
  put_md_cell(x->out, line);
  fputs("\n\n| Time (UTC) | Event |\n|------|-------|\n", x->out);
}

static int export_one(json_t *ev, const char *raw, size_t len, void *arg)
{
  export_ctx *x = arg;
  if (x->fmt == RB_TL_JSON) {
    /* the exact bytes, so the export can be verified like the file */
    fwrite(raw, 1, len, x->out);
    fputc('\n', x->out);
    return 0;
  }
  if (rb_timeline_is_header(ev))
    return 0;
  if (x->fmt == RB_TL_MARKDOWN && x->rows == 0)
    markdown_head(x, ev);
  x->rows++;
  char *text = describe(ev, x->fmt == RB_TL_MARKDOWN);
  if (text == NULL)
    return rb_err(x->err, x->errlen, "%s: out of memory while exporting", x->path);
  if (x->fmt == RB_TL_MARKDOWN) {
    fputs("| ", x->out);
    put_time(x, ev, 0);
    fputs(" | ", x->out);
    put_md_cell(x->out, text);
    fputs(" |\n", x->out);
  } else {
    const char *step = str_of(ev, "step") ? str_of(ev, "step") : str_of(ev, "kind");
    const char *event = str_of(ev, "event");
    if (step == NULL && eq(event, "alert_resolved"))
      step = "alert"; /* serve's note, not the run's */
    char col[256];
    snprintf(col, sizeof col, "%s  %s", step ? step : "run", event ? event : "?");
    flatten(col);
    put_time(x, ev, 1);
    /* The event is in its own column: do not say it twice. */
    const char *rest = text;
    size_t n = event ? strlen(event) : 0;
    size_t i = 0;
    while (i < n && (rest[i] == event[i] || (event[i] == '_' && rest[i] == ' ')))
      i++;
    if (n && i == n && (rest[n] == ' ' || rest[n] == ':'))
      rest += n + (rest[n] == ':' ? 2 : 1);
    fprintf(x->out, "  %s  %s\n", col, rest);
  }
  free(text);
  return 0;
}

int rb_timeline_export(const char *path, rb_tl_format fmt, FILE *out, char *err,
                       size_t errlen)
{
  export_ctx x = {.fmt = fmt, .out = out, .err = err, .errlen = errlen, .path = path};
  int rc = read_lines(path, export_one, &x, NULL, err, errlen);
  if (rc == 0 && fmt == RB_TL_MARKDOWN && x.rows == 0)
    fputs("## Timeline (All times UTC)\n\n_No events._\n", out);
  if (rc == 0 && ferror(out))
    rc = rb_err(err, errlen, "%s: writing the export failed", path);
  return rc;
}
