/* timeline.c: the append-only JSON Lines incident timeline (also the run
 * journal): crash-safe appends, torn-line repair, reading and exports. */
#include "runner/timeline.h"

#include "runner/redact.h"
#include "runner/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct rb_timeline {
  int fd;
  int do_fsync;
  char *path;
};

/* Longest rendering of a detail value or command in a sentence. */
#define RB_TL_MAXVAL 300

/* Cuts the file back to just after its last '\n' when its last byte is not
 * one. Called with the file locked so no append is mid-write. */
static int repair_tail(int fd, const char *path, int *repaired, char *err, size_t errlen)
{
  struct stat st;
  if (fstat(fd, &st) != 0)
    return rb_err(err, errlen, "%s: %s", path, strerror(errno));
  off_t end = st.st_size;
  if (end == 0)
    return 0;
  char buf[4096];
  off_t pos = end;
  int first = 1;
  while (pos > 0) {
    size_t n = pos >= (off_t)sizeof buf ? sizeof buf : (size_t)pos;
    ssize_t got = pread(fd, buf, n, pos - (off_t)n);
    if (got != (ssize_t)n)
      return rb_err(err, errlen, "%s: read: %s", path,
                    got < 0 ? strerror(errno) : "short");
    if (first && buf[n - 1] == '\n')
      return 0;
    first = 0;
    size_t i = n;
    while (i > 0 && buf[i - 1] != '\n')
      i--;
    if (i > 0) {
      pos = pos - (off_t)n + (off_t)i;
      break;
    }
    pos -= (off_t)n;
  }
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

/* Appends one line under the file lock (so a concurrent open cannot take a
 * half-written line for a torn one), cutting it back off if the write fails
 * part way, then makes it durable. */
static int write_line(rb_timeline *tl, const char *line, size_t len, char *err,
                      size_t errlen)
{
  if (flock(tl->fd, LOCK_EX) != 0)
    return rb_err(err, errlen, "%s: lock: %s", tl->path, strerror(errno));
  int rc = 0;
  struct stat st;
  int have_size = fstat(tl->fd, &st) == 0;
  if (write_all(tl->fd, line, len) != 0) {
    rc = rb_err(err, errlen, "%s: write: %s", tl->path, strerror(errno));
    if (have_size && ftruncate(tl->fd, st.st_size) != 0) {
      /* the torn line is cut on the next open */
    }
  } else if (tl->do_fsync && fdatasync(tl->fd) != 0) {
    rc = rb_err(err, errlen, "%s: fsync: %s", tl->path, strerror(errno));
  }
  flock(tl->fd, LOCK_UN);
  return rc;
}

int rb_timeline_append(rb_timeline *tl, json_t *ev, char *err, size_t errlen)
{
  if (tl == NULL || !json_is_object(ev))
    return rb_err(err, errlen, "timeline: event is not a JSON object");
  int rc = -1;
  char *line = NULL;
  json_t *copy = prepare_event(ev);
  if (copy == NULL) {
    rb_err(err, errlen, "%s: out of memory", tl->path);
    goto out;
  }
  char *s = json_dumps(copy, JSON_COMPACT);
  if (s == NULL) {
    rb_err(err, errlen, "%s: event cannot be serialised", tl->path);
    goto out;
  }
  size_t len = strlen(s);
  line = realloc(s, len + 2);
  if (line == NULL) {
    free(s);
    rb_err(err, errlen, "%s: out of memory", tl->path);
    goto out;
  }
  line[len] = '\n';
  line[len + 1] = '\0';
  rc = write_line(tl, line, len + 1, err, errlen);
out:
  free(line);
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

int rb_timeline_read(const char *path, rb_timeline_cb cb, void *arg, int *skipped,
                     char *err, size_t errlen)
{
  if (skipped != NULL)
    *skipped = 0;
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
    json_t *ev = json_loadb(line, (size_t)n, 0, NULL);
    if (!json_is_object(ev)) {
      json_decref(ev);
      fprintf(stderr, "warning: %s:%ld: ignoring torn or invalid timeline line\n", path,
              lineno);
      if (skipped != NULL)
        (*skipped)++;
      continue;
    }
    if (cb != NULL)
      rc = cb(ev, arg);
    json_decref(ev);
  }
  if (rc == 0 && ferror(f))
    rc = rb_err(err, errlen, "%s: read: %s", path, strerror(errno));
  free(line);
  fclose(f);
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
  } else if (msg != NULL) {
    fprintf(m, ": %s", msg);
  }
}

static void describe_step(FILE *m, const json_t *ev, const char *event, const json_t *d)
{
  const char *title = str_of(d, "title");
  const char *msg = str_of(d, "message");
  if (eq(event, "decision")) {
    const char *q = str_of(d, "question") ? str_of(d, "question") : title;
    fprintf(m, "%s -> ", q ? q : "decided");
    put_value(m, json_object_get(d, "value"));
    if (str_of(d, "branch"))
      fprintf(m, ", taking '%s'", str_of(d, "branch"));
  } else if (eq(event, "would_run")) {
    fputs("would run", m);
    if (json_object_get(d, "command") || json_object_get(d, "url"))
      put_action(m, d);
    else if (title)
      fprintf(m, " (%s)", title);
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
  int run_level = eq(kind, "run") || (step == NULL && kind == NULL);
  if (run_level) {
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

static int export_one(json_t *ev, void *arg)
{
  export_ctx *x = arg;
  if (x->fmt == RB_TL_JSON) {
    char *s = json_dumps(ev, JSON_COMPACT);
    if (s == NULL)
      return rb_err(x->err, x->errlen, "%s: out of memory while exporting", x->path);
    fprintf(x->out, "%s\n", s);
    free(s);
    return 0;
  }
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
  int rc = rb_timeline_read(path, export_one, &x, NULL, err, errlen);
  if (rc == 0 && fmt == RB_TL_MARKDOWN && x.rows == 0)
    fputs("## Timeline (All times UTC)\n\n_No events._\n", out);
  if (rc == 0 && ferror(out))
    rc = rb_err(err, errlen, "%s: writing the export failed", path);
  return rc;
}
