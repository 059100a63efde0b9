/* timeline_mirror.c: the run's half of the timeline mirror: a record
 * "RBM <incident> <length>\n<lines>" out, one byte back ('k' stored). */
#include "runner/timeline_mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner/base/util.h"

#define ACK_WAIT_MS 10000

/* The mirror's fd from the environment, read once: -1 when there is none. */
static int mirror_fd(void)
{
  static int fd = -2;
  if (fd == -2) {
    const char *v = getenv("RB_TIMELINE_MIRROR_FD");
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : -1;
    fd = v && *v && end && *end == '\0' && n >= 3 && n < 1024 ? (int)n : -1;
    /* the run's own, not its commands' */
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
      fd = -1;
  }
  return fd;
}

static int send_all(int fd, const char *p, size_t len)
{
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int rb_timeline_mirror(const char *path, const char *lines, size_t len, char *err,
                       size_t errlen)
{
  int fd = mirror_fd();
  if (fd < 0)
    return 0;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t blen = strlen(base);
  if (blen > 6 && strcmp(base + blen - 6, ".jsonl") == 0)
    blen -= 6;
  char head[600];
  int h = snprintf(head, sizeof head, "RBM %.*s %zu\n", (int)blen, base, len);
  if (h < 0 || (size_t)h >= sizeof head)
    return rb_err(err, errlen, "shared store: the incident name is too long");
  if (send_all(fd, head, (size_t)h) != 0 || send_all(fd, lines, len) != 0)
    return rb_err(err, errlen, "shared store: the listener is gone: %s", strerror(errno));
  struct pollfd p = {fd, POLLIN, 0};
  char ack = 0;
  int r;
  while ((r = poll(&p, 1, ACK_WAIT_MS)) < 0 && errno == EINTR) {
  }
  if (r <= 0 || read(fd, &ack, 1) != 1 || ack != 'k')
    return rb_err(err, errlen, "shared store: the listener did not record the event%s",
                  r == 0 ? " within 10 s" : "");
  return 0;
}
