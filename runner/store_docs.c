/* store_docs.c: documents kept with a run in the state dir (a dry-run's
 * plan): <dir>/runs/<run>.<name>, replaced whole through a rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/store.h"
#include "runner/base/util.h"

/* Run ids and names are [A-Za-z0-9._-], never starting with a dot: no
 * document names a path outside runs/. */
static int doc_path(const char *dir, const char *run, const char *name, char *out,
                    size_t len)
{
  const char *parts[] = {run, name};
  for (int i = 0; i < 2; i++) {
    const char *p = parts[i];
    if (p == NULL || p[0] == '\0' || p[0] == '.')
      return -1;
    for (; *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
        return -1;
  }
  return rb_fmt(out, len, "%s/runs/%s.%s", dir, run, name);
}

static int write_all(int fd, const char *text, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, text, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    text += n;
    len -= (size_t)n;
  }
  return 0;
}

int rb_store_dir_put_doc(const char *dir, const char *run, const char *name,
                         const char *text, size_t len, char *where, size_t wlen,
                         char *err, size_t errlen)
{
  char path[4400], tmp[4500], runs[4200];
  if (doc_path(dir, run, name, path, sizeof path) != 0)
    return rb_err(err, errlen, "invalid run id or document name");
  if (rb_fmt(runs, sizeof runs, "%s/runs", dir) || rb_mkdirs(runs) != 0)
    return rb_err(err, errlen, "cannot create %s: %s", runs, strerror(errno));
  if (rb_fmt(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()))
    return rb_err(err, errlen, "path too long");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return rb_err(err, errlen, "%s: %s", tmp, strerror(errno));
  int bad = write_all(fd, text, len) != 0 || fsync(fd) != 0;
  bad = close(fd) != 0 || bad;
  /* The document is whole on disk before its name points at it. */
  if (bad || rename(tmp, path) != 0) {
    rb_err(err, errlen, "%s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (where)
    snprintf(where, wlen, "%s", path);
  return 0;
}

char *rb_store_dir_get_doc(const char *dir, const char *run, const char *name,
                           int *absent, char *err, size_t errlen)
{
  char path[4400];
  *absent = 0;
  if (doc_path(dir, run, name, path, sizeof path) != 0) {
    rb_err(err, errlen, "'%s' is not a run id", run);
    return NULL;
  }
  FILE *f = fopen(path, "re");
  if (f == NULL) {
    *absent = errno == ENOENT;
    rb_err(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t cap = 0, n = 0;
  int bad = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      char *nb = cap < (64u << 20) ? realloc(buf, cap ? cap * 2 : 8192) : NULL;
      if (nb == NULL) {
        bad = 1;
        break;
      }
      buf = nb;
      cap = cap ? cap * 2 : 8192;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  bad = bad || ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    rb_err(err, errlen, "%s: cannot read it", path);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}
