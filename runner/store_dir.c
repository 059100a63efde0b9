/* store_dir.c: the run store kept in the state dir: leases are open file
 * description locks on small files, runs are read from the journals. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/journal.h"
#include "runner/store.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

typedef struct {
  rb_store base;
  char dir[4096];
} dir_store;

struct rb_lease {
  int fd;
};

/* -- owners and keys ------------------------------------------------------- */

void rb_owner_self(rb_owner *me, const char *run, const char *what)
{
  memset(me, 0, sizeof *me);
  me->pid = (long)getpid();
  struct passwd *pw = getpwuid(getuid());
  if (pw && pw->pw_name)
    snprintf(me->user, sizeof me->user, "%s", pw->pw_name);
  else
    snprintf(me->user, sizeof me->user, "uid %ld", (long)getuid());
  if (gethostname(me->host, sizeof me->host) != 0)
    snprintf(me->host, sizeof me->host, "unknown");
  me->host[sizeof me->host - 1] = '\0';
  rb_format_ts(rb_now_wall_ms(), me->since, sizeof me->since);
  snprintf(me->run, sizeof me->run, "%s", run ? run : "");
  snprintf(me->what, sizeof me->what, "%s", what ? what : "");
}

void rb_owner_describe(const rb_owner *o, char *buf, size_t len)
{
  snprintf(buf, len, "pid %ld (%s@%s, %s of run %s since %s)", o->pid, o->user, o->host,
           o->what[0] ? o->what : "run", o->run[0] ? o->run : "?", o->since);
}

int rb_store_run_key(const char *run, char *out, size_t len)
{
  return rb_fmt(out, len, "run/%s", run);
}

int rb_store_exec_key(const char *runbook, const char *name, const char *value, char *out,
                      size_t len)
{
  return rb_fmt(out, len, "exec/%s/%s=%s", runbook, name, value);
}

/* <dir>/runs/<id>.lock for "run/<id>", <dir>/locks/<escaped rest>.lock for
 * the others: any byte but [A-Za-z0-9._-] becomes %XX, so no key names a
 * path outside the directory. */
static int key_path(const dir_store *ds, const char *key, const char *suffix, char *out,
                    size_t len)
{
  const char *slash = strchr(key, '/');
  if (slash == NULL || slash[1] == '\0')
    return -1;
  int is_run = strncmp(key, "run/", 4) == 0;
  char esc[1024];
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)(is_run ? slash + 1 : key); *p;
       p++) {
    if (o + 4 >= sizeof esc)
      return -1;
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-')
      esc[o++] = (char)*p;
    else
      o += (size_t)snprintf(esc + o, 4, "%%%02X", *p);
  }
  esc[o] = '\0';
  if (esc[0] == '.')
    esc[0] = '_';
  return rb_fmt(out, len, "%s/%s/%s%s", ds->dir, is_run ? "runs" : "locks", esc, suffix);
}

static json_t *owner_json(const rb_owner *o)
{
  return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "pid", (json_int_t)o->pid, "user",
                   o->user, "host", o->host, "since", o->since, "run", o->run, "what",
                   o->what);
}

static void owner_copy(char *dst, size_t len, const json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  snprintf(dst, len, "%s", v ? v : "?");
}

/* Reads the holder's record; it is written just after the lock is taken,
 * so a reader that comes in between waits a moment for it. */
static void owner_read(int fd, rb_owner *o)
{
  memset(o, 0, sizeof *o);
  for (int tries = 0; tries < 20; tries++) {
    char buf[2048];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
      buf[n] = '\0';
      json_t *j = json_loads(buf, 0, NULL);
      if (j != NULL) {
        o->pid = (long)json_integer_value(json_object_get(j, "pid"));
        owner_copy(o->user, sizeof o->user, j, "user");
        owner_copy(o->host, sizeof o->host, j, "host");
        owner_copy(o->since, sizeof o->since, j, "since");
        owner_copy(o->run, sizeof o->run, j, "run");
        owner_copy(o->what, sizeof o->what, j, "what");
        json_decref(j);
        return;
      }
    }
    usleep(10000);
  }
  snprintf(o->user, sizeof o->user, "?");
  snprintf(o->host, sizeof o->host, "?");
}

static int owner_write(int fd, const rb_owner *me, char *err, size_t errlen)
{
  json_t *j = owner_json(me);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (s == NULL)
    return rb_err(err, errlen, "out of memory");
  size_t n = strlen(s);
  int rc = ftruncate(fd, 0) == 0 && pwrite(fd, s, n, 0) == (ssize_t)n ? 0 : -1;
  free(s);
  return rc == 0 ? 0
                 : rb_err(err, errlen, "cannot record the owner: %s", strerror(errno));
}

/* -- leases ---------------------------------------------------------------- */

/* An open file description lock (not flock, not a POSIX record lock): it
 * belongs to the open file, so the supervisor and the executor it forks
 * share it, it goes when the last of them dies however it dies, and
 * F_OFD_GETLK can ask whether it is held without taking it. */
static int ofd_lock(int fd, int cmd, short type, struct flock *fl)
{
  memset(fl, 0, sizeof *fl);
  fl->l_type = type;
  fl->l_whence = SEEK_SET;
  return fcntl(fd, cmd, fl);
}

static int open_key(dir_store *ds, const char *key, int create, char *err, size_t errlen)
{
  char path[4600], dir[4600];
  if (key_path(ds, key, ".lock", path, sizeof path) != 0)
    return rb_err(err, errlen, "lease key '%s' is invalid or too long", key);
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  if (create && rb_mkdirs(dir) != 0)
    return rb_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
  int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0 && !(errno == ENOENT && !create))
    return rb_err(err, errlen, "%s: %s", path, strerror(errno));
  return fd < 0 ? -2 : fd;
}

static int dir_acquire(rb_store *s, const char *key, const rb_owner *me, rb_lease **out,
                       rb_owner *holder, char *err, size_t errlen)
{
  *out = NULL;
  int fd = open_key((dir_store *)s, key, 1, err, errlen);
  if (fd < 0)
    return -1;
  struct flock fl;
  if (ofd_lock(fd, F_OFD_SETLK, F_WRLCK, &fl) != 0) {
    int e = errno;
    if (e == EAGAIN || e == EACCES) {
      owner_read(fd, holder);
      close(fd);
      return 1;
    }
    close(fd);
    return rb_err(err, errlen, "lock %s: %s", key, strerror(e));
  }
  if (owner_write(fd, me, err, errlen) != 0) {
    close(fd);
    return -1;
  }
  rb_lease *l = malloc(sizeof *l);
  if (l == NULL) {
    close(fd);
    return rb_err(err, errlen, "out of memory");
  }
  l->fd = fd;
  *out = l;
  return 0;
}

static int dir_holder(rb_store *s, const char *key, rb_owner *holder, char *err,
                      size_t errlen)
{
  int fd = open_key((dir_store *)s, key, 0, err, errlen);
  if (fd == -2)
    return 0;
  if (fd < 0)
    return -1;
  struct flock fl;
  int rc = ofd_lock(fd, F_OFD_GETLK, F_WRLCK, &fl);
  if (rc != 0) {
    rc = rb_err(err, errlen, "lock %s: %s", key, strerror(errno));
  } else if (fl.l_type != F_UNLCK) {
    owner_read(fd, holder);
    rc = 1;
  }
  close(fd);
  return rc;
}

static int dir_record_owner(rb_lease *l, const rb_owner *me, char *err, size_t errlen)
{
  return owner_write(l->fd, me, err, errlen);
}

static void dir_release(rb_lease *l)
{
  if (l == NULL)
    return;
  close(l->fd); /* the last close drops the lock */
  free(l);
}

/* -- cancel requests -------------------------------------------------------- */

static int dir_cancel(rb_store *s, const char *run, const char *by, const char *reason,
                      char *err, size_t errlen)
{
  dir_store *ds = (dir_store *)s;
  char key[200], path[4600];
  if (rb_store_run_key(run, key, sizeof key) ||
      key_path(ds, key, ".cancel", path, sizeof path))
    return rb_err(err, errlen, "run id '%s' is invalid", run);
  char dir[4600];
  snprintf(dir, sizeof dir, "%s/runs", ds->dir);
  if (rb_mkdirs(dir) != 0)
    return rb_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == EEXIST ? 1 : rb_err(err, errlen, "%s: %s", path, strerror(errno));
  char ts[32];
  rb_format_ts(rb_now_wall_ms(), ts, sizeof ts);
  json_t *j =
      json_pack("{s:s, s:s, s:s}", "by", by, "reason", reason ? reason : "", "at", ts);
  char *txt = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  size_t n = txt ? strlen(txt) : 0;
  int rc = txt && write(fd, txt, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : -1;
  free(txt);
  close(fd);
  return rc == 0 ? 0 : rb_err(err, errlen, "%s: cannot write the cancel request", path);
}

static int dir_cancelled(rb_store *s, const char *run, char *by, size_t blen,
                         char *reason, size_t rlen)
{
  char key[200], path[4600];
  if (rb_store_run_key(run, key, sizeof key) ||
      key_path((dir_store *)s, key, ".cancel", path, sizeof path))
    return 0;
  json_t *j = json_load_file(path, 0, NULL);
  if (j == NULL)
    return access(path, F_OK) == 0; /* being written: it counts already */
  owner_copy(by, blen, j, "by");
  owner_copy(reason, rlen, j, "reason");
  json_decref(j);
  return 1;
}

/* -- finding and listing runs ---------------------------------------------- */

static int dir_find_run(rb_store *s, const char *run, char *incident, size_t len,
                        char *err, size_t errlen)
{
  return rb_journal_find_incident(((dir_store *)s)->dir, run, incident, len, err, errlen);
}

static int dir_list_runs(rb_store *s, rb_run_cb cb, void *arg, char *err, size_t errlen)
{
  return rb_store_dir_list(s, ((dir_store *)s)->dir, cb, arg, err, errlen);
}

static void dir_free(rb_store *s)
{
  free(s);
}

static int dir_put_doc(rb_store *s, const char *run, const char *name, const char *text,
                       size_t len, char *where, size_t wlen, char *err, size_t errlen)
{
  return rb_store_dir_put_doc(((dir_store *)s)->dir, run, name, text, len, where, wlen,
                              err, errlen);
}

static char *dir_get_doc(rb_store *s, const char *run, const char *name, int *absent,
                         char *err, size_t errlen)
{
  return rb_store_dir_get_doc(((dir_store *)s)->dir, run, name, absent, err, errlen);
}

static const rb_store_ops dir_ops = {
    "state-dir",   dir_acquire,  dir_holder,    dir_record_owner,
    dir_release,   dir_find_run, dir_list_runs, dir_cancel,
    dir_cancelled, dir_free,     dir_put_doc,   dir_get_doc,
};

rb_store *rb_store_open_dir(const char *state_dir, char *err, size_t errlen)
{
  dir_store *ds = calloc(1, sizeof *ds);
  if (ds == NULL || rb_fmt(ds->dir, sizeof ds->dir, "%s", state_dir) != 0) {
    free(ds);
    rb_err(err, errlen, "state dir path too long");
    return NULL;
  }
  ds->base.ops = &dir_ops;
  return &ds->base;
}
