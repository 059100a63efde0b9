/* probe.c: fetches a server's ed25519/ECDSA host key over one blocking
 * handshake, run only after a handshake has already failed. */
#include "stdlib/ssh/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "stdlib/ssh/knownhosts.h"

/* A connected blocking socket, or -1 with err. */
static int connect_within(const char *addr, int port, int64_t timeout_ms, char *err,
                          size_t errlen)
{
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  int rc = getaddrinfo(addr, ps, &hints, &ai);
  if (rc != 0)
    return rb_err(err, errlen, "cannot resolve %s: %s", addr, gai_strerror(rc));
  int fd = -1;
  for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                a->ai_protocol);
    if (fd < 0)
      continue;
    struct pollfd pfd = {fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if ((connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
         (errno == EINPROGRESS && poll(&pfd, 1, (int)timeout_ms) == 1)) &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0)
        break;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  if (fd < 0)
    return rb_err(err, errlen, "cannot connect to %s:%d", addr, port);
  return fd;
}

int rb_ssh_probe_hostkey(const char *addr, int port, int64_t timeout_ms, char **line,
                         char *fp, size_t fplen, char *err, size_t errlen)
{
  *line = NULL;
  int rc = -1, fd = connect_within(addr, port, timeout_ms, err, errlen);
  if (fd < 0)
    return -1;
  LIBSSH2_SESSION *s = libssh2_session_init();
  if (s == NULL) {
    rb_err(err, errlen, "cannot create an SSH session");
    goto out;
  }
  libssh2_session_set_timeout(s, (long)timeout_ms);
  if (libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY,
                                  "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
                                  "ecdsa-sha2-nistp521") != 0 ||
      libssh2_session_handshake(s, fd) != 0) {
    char *m = NULL;
    libssh2_session_last_error(s, &m, NULL, 0);
    rb_err(err, errlen, "the server offers no ed25519 or ECDSA host key (%s)",
           m ? m : "handshake failed");
    goto out;
  }
  size_t len = 0;
  int type = 0;
  const char *blob = libssh2_session_hostkey(s, &len, &type);
  const unsigned char *dig =
      (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
  if (blob == NULL || dig == NULL ||
      (*line = rb_ssh_knownhosts_line(addr, port, (const unsigned char *)blob, len)) ==
          NULL) {
    rb_err(err, errlen, "the server sent no usable host key");
    goto out;
  }
  rb_ssh_fingerprint(dig, fp, fplen);
  rc = 0;
out:
  if (s != NULL) {
    libssh2_session_disconnect(s, "host key probe");
    libssh2_session_free(s);
  }
  close(fd);
  return rc;
}
