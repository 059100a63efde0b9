/* fanout.c: one thread drives every host's libssh2 session non-blocking
 * through connect, handshake, host key check, auth and command, over poll().
 *
 * Each host is a job with a phase; a step advances it until libssh2 says
 * EAGAIN, and poll() waits on the directions libssh2 is blocked on. Why not a
 * worker pool: a fan-out is almost all waiting on sockets, one thread scales
 * to hundreds of hosts without locking around the pool, the timeline
 * callbacks or the Lua state, and a timeout is a deadline check instead of a
 * thread to cancel. The cost, DNS resolution being synchronous, is paid once
 * per host per run and is immediate for addresses. */
#include "stdlib/ssh/fanout.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"
#include "stdlib/ssh/knownhosts.h"
#include "stdlib/ssh/probe.h"

#define DEF_PARALLEL 20
#define DEF_OUTPUT (64 * 1024)
#define DEF_CONNECT_MS 10000
#define KILL_GRACE_MS 2000
#define MAX_KEYS 4

typedef struct conn {
  char *key; /* name|user|address|port */
  int fd;
  LIBSSH2_SESSION *s;
  struct conn *next;
} conn;

struct rb_ssh_pool {
  char *known_hosts, *identity, *user;
  int port, use_agent, tofu;
  int64_t connect_ms;
  rb_ssh_knownhosts *kh;
  conn *conns;
  long handshakes;
};

enum phase {
  P_WAIT,      /* not started */
  P_CONNECT,   /* TCP connect in progress */
  P_HANDSHAKE, /* SSH transport */
  P_AUTHLIST,  /* asking which auth methods the server takes */
  P_AGENT,     /* trying ssh-agent identities */
  P_KEYS,      /* trying key files */
  P_OPEN,      /* opening a channel */
  P_EXEC,      /* sending the exec request */
  P_READ,      /* reading output until EOF */
  P_KILL,      /* timed out: terminating the command from a second channel */
  P_CLOSE,     /* closing the channel, collecting exit status */
  P_DONE
};

/* One output stream, capped at output_max; what does not fit is counted. */
typedef struct {
  rb_buf b;
  size_t dropped;
} capbuf;

typedef struct {
  const rb_ssh_host *h;
  rb_ssh_result *r;
  enum phase ph;
  char label[400]; /* "ssh app-2 (127.0.0.1:2202)" */
  char key[600];
  const char *user;
  int port;
  int fd;
  LIBSSH2_SESSION *s;
  LIBSSH2_CHANNEL *ch;
  LIBSSH2_CHANNEL *killch; /* runs KILL_SNIPPET after a timeout */
  int killstate;
  conn *c; /* pooled session in use, NULL while connecting */
  struct addrinfo *ai, *cur;
  char prefs[200];
  int64_t t0_us, deadline_ms, kill_deadline_ms;
  LIBSSH2_AGENT *agent;
  struct libssh2_agent_publickey *ident;
  char *keys[MAX_KEYS];
  int nkeys, keyi;
  char autherr[600];
  int retried;
  int tofu_added;         /* the key was unknown and trust_on_first_use recorded it */
  int preflight;          /* stop once authenticated (rb_ssh_opts.preflight) */
  int64_t connect_cap_ms; /* preflight: the caller's bound, 0 = none */
  capbuf out, err;
  size_t output_max;
} job;

/* ---- helpers ---- */

static void set_error(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(job *j, const char *fmt, ...)
{
  char msg[1500];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t n = strlen(j->label) + strlen(msg) + 3;
  free(j->r->error);
  j->r->error = malloc(n);
  if (j->r->error != NULL)
    snprintf(j->r->error, n, "%s: %s", j->label, msg);
}

static const char *ssh_errmsg(LIBSSH2_SESSION *s)
{
  char *m = NULL;
  if (s == NULL || libssh2_session_last_error(s, &m, NULL, 0) == 0 || m == NULL)
    return "unknown error";
  return m;
}

int rb_ssh_parse_count(const char *s, const char *what, rb_ssh_count *out, char *err,
                       size_t errlen)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  int pct = (*end == '%');
  if (pct)
    end++;
  if (*s == '\0' || *end != '\0' || errno || v < 0 || v > (pct ? 100 : 1000000))
    return rb_err(err, errlen,
                  "%s: want a count or a percentage (\"3\", \"25%%\"), got '%s'", what,
                  s);
  out->value = (int)v;
  out->pct = pct;
  return 0;
}

size_t rb_ssh_batch_size(rb_ssh_count batch, size_t n)
{
  if (batch.value <= 0 || n == 0)
    return n ? n : 1;
  size_t b = batch.pct ? (n * (size_t)batch.value + 99) / 100 : (size_t)batch.value;
  return b < 1 ? 1 : b > n ? n : b;
}

size_t rb_ssh_fail_limit(rb_ssh_count max_fail, size_t n)
{
  if (max_fail.value < 0)
    return SIZE_MAX;
  return max_fail.pct ? n * (size_t)max_fail.value / 100 : (size_t)max_fail.value;
}

/* ---- key files ---- */

static int read_small(const char *path, char *buf, size_t len)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, len - 1, f);
  fclose(f);
  buf[n] = '\0';
  return 0;
}

/* Type and encryption of an "openssh-key-v1" key from its (base64) body:
 * magic, string cipher, string kdf, string kdfopts, uint32 nkeys, string
 * public key whose first string is the type. The public part is never
 * encrypted. */
static int openssh_key_type(const char *body, char *buf, size_t len, int *encrypted)
{
  size_t cap = strlen(body), n = 0;
  char *b64 = malloc(cap + 1);
  unsigned char *raw = malloc(cap + 1);
  int rc = -1;
  if (b64 == NULL || raw == NULL)
    goto out;
  for (; *body != '\0' && *body != '-'; body++)
    if (*body != '\n' && *body != '\r')
      b64[n++] = *body;
  long rl = rb_ssh_base64_decode(b64, n, raw, cap);
  size_t off = 15;
  if (rl < 15 || memcmp(raw, "openssh-key-v1", 15) != 0)
    goto out;
  for (int field = 0; field < 3; field++) {
    if (off + 4 > (size_t)rl)
      goto out;
    uint32_t l = (uint32_t)raw[off] << 24 | (uint32_t)raw[off + 1] << 16 |
                 (uint32_t)raw[off + 2] << 8 | raw[off + 3];
    if (l > (size_t)rl - off - 4)
      goto out;
    if (field == 0)
      *encrypted = !(l == 4 && memcmp(raw + off + 4, "none", 4) == 0);
    off += 4 + l;
  }
  off += 4;
  if (off + 4 <= (size_t)rl)
    rc = rb_ssh_blob_type(raw + off + 4, (size_t)rl - off - 4, buf, len);
out:
  free(b64);
  free(raw);
  return rc;
}

int rb_ssh_key_type(const char *path, char *buf, size_t len, int *encrypted)
{
  char text[16384];
  *encrypted = 0;
  if (read_small(path, text, sizeof text) == 0) {
    if (strstr(text, "BEGIN RSA PRIVATE KEY")) {
      *encrypted = strstr(text, "ENCRYPTED") != NULL;
      return rb_fmt(buf, len, "ssh-rsa");
    }
    if (strstr(text, "BEGIN EC PRIVATE KEY")) {
      *encrypted = strstr(text, "ENCRYPTED") != NULL;
      return rb_fmt(buf, len, "ecdsa-sha2-nistp256");
    }
    const char *b = strstr(text, "BEGIN OPENSSH PRIVATE KEY-----");
    if (b != NULL && openssh_key_type(b + strlen("BEGIN OPENSSH PRIVATE KEY-----"), buf,
                                      len, encrypted) == 0)
      return 0;
  }
  char pub[1024];
  if (rb_fmt(pub, sizeof pub, "%s.pub", path) < 0 || read_small(pub, text, 256) < 0)
    return -1;
  char *sp = strchr(text, ' ');
  if (sp == NULL)
    return -1;
  return rb_fmt(buf, len, "%.*s", (int)(sp - text), text);
}

static void add_key(job *j, const char *path)
{
  if (j->nkeys >= MAX_KEYS || access(path, R_OK) != 0)
    return;
  for (int i = 0; i < j->nkeys; i++)
    if (strcmp(j->keys[i], path) == 0)
      return;
  if ((j->keys[j->nkeys] = strdup(path)) != NULL)
    j->nkeys++;
}

static void pick_keys(job *j, const rb_ssh_pool *p)
{
  if (j->h->identity != NULL)
    add_key(j, j->h->identity);
  if (p->identity != NULL)
    add_key(j, p->identity);
  if (j->nkeys > 0)
    return;
  const char *home = getenv("HOME");
  static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa", NULL};
  char path[1024];
  for (int i = 0; home != NULL && defaults[i] != NULL; i++)
    if (rb_fmt(path, sizeof path, "%s/.ssh/%s", home, defaults[i]) == 0)
      add_key(j, path);
}

/* ---- pool ---- */

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

rb_ssh_pool *rb_ssh_pool_new(const rb_ssh_settings *s, char *err, size_t errlen)
{
  rb_ssh_pool *p = calloc(1, sizeof *p);
  if (p == NULL) {
    rb_err(err, errlen, "ssh: out of memory");
    return NULL;
  }
  char path[1024];
  const char *home = getenv("HOME");
  const char *kh = s->known_hosts;
  if (kh == NULL) {
    if (rb_fmt(path, sizeof path, "%s/.ssh/known_hosts", home ? home : "") < 0)
      goto fail_path;
    kh = path;
  }
  p->known_hosts = strdup(kh);
  p->identity = dup_or_null(s->identity);
  p->user = dup_or_null(s->user ? s->user : getenv("USER"));
  p->port = s->port > 0 ? s->port : 22;
  p->use_agent = s->use_agent;
  p->tofu = s->trust_on_first_use;
  p->connect_ms = s->connect_timeout_ms > 0 ? s->connect_timeout_ms : DEF_CONNECT_MS;
  if (p->known_hosts == NULL || (s->identity && !p->identity)) {
    rb_err(err, errlen, "ssh: out of memory");
    goto fail;
  }
  if ((p->kh = rb_ssh_knownhosts_load(p->known_hosts, err, errlen)) == NULL)
    goto fail;
  if (libssh2_init(0) != 0) {
    rb_err(err, errlen, "ssh: libssh2_init failed");
    goto fail;
  }
  return p;
fail_path:
  rb_err(err, errlen, "ssh: known_hosts path too long");
fail:
  rb_ssh_knownhosts_free(p->kh);
  free(p->known_hosts);
  free(p->identity);
  free(p->user);
  free(p);
  return NULL;
}

static void conn_close(conn *c)
{
  if (c->s != NULL) {
    /* bounded: a dead peer must not hold up the end of the run */
    libssh2_session_set_timeout(c->s, 1000);
    libssh2_session_set_blocking(c->s, 1);
    libssh2_session_disconnect(c->s, "runbook: run finished");
    libssh2_session_free(c->s);
  }
  if (c->fd >= 0)
    close(c->fd);
  free(c->key);
  free(c);
}

void rb_ssh_pool_free(rb_ssh_pool *p)
{
  if (p == NULL)
    return;
  for (conn *c = p->conns, *next; c != NULL; c = next) {
    next = c->next;
    conn_close(c);
  }
  rb_ssh_knownhosts_free(p->kh);
  free(p->known_hosts);
  free(p->identity);
  free(p->user);
  free(p);
  libssh2_exit();
}

long rb_ssh_pool_handshakes(const rb_ssh_pool *p)
{
  return p ? p->handshakes : 0;
}

size_t rb_ssh_pool_size(const rb_ssh_pool *p)
{
  size_t n = 0;
  for (const conn *c = p ? p->conns : NULL; c != NULL; c = c->next)
    n++;
  return n;
}

static conn *pool_find(rb_ssh_pool *p, const char *key)
{
  for (conn *c = p->conns; c != NULL; c = c->next)
    if (strcmp(c->key, key) == 0)
      return c;
  return NULL;
}

/* Drops a pooled session that failed (connection lost). */
static void pool_drop(rb_ssh_pool *p, conn *dead)
{
  for (conn **pc = &p->conns; *pc != NULL; pc = &(*pc)->next) {
    if (*pc == dead) {
      *pc = dead->next;
      libssh2_session_free(dead->s); /* no disconnect: the socket is gone */
      dead->s = NULL;
      conn_close(dead);
      return;
    }
  }
}

/* ---- capped output ---- */

static void cap_append(capbuf *b, const char *data, size_t n)
{
  size_t before = b->b.len;
  int rc = rb_buf_add_upto(&b->b, data, n);
  if (rc == RB_BUF_ENOMEM)
    b->dropped += n; /* as before: a failed grow drops the whole chunk */
  else
    b->dropped += n - (b->b.len - before);
}

/* ---- the job state machine ---- */

static void job_finish(job *j)
{
  j->ph = P_DONE;
  rb_ssh_result *r = j->r;
  r->duration_ms = (rb_now_mono_us() - j->t0_us) / 1000;
  r->truncated = j->out.dropped > 0 || j->err.dropped > 0;
  r->out_len = j->out.b.len;
  r->err_len = j->err.b.len;
  r->out = rb_buf_take(&j->out.b);
  r->errout = rb_buf_take(&j->err.b);
  r->ok = r->error == NULL && r->exit_code == 0 && r->signal == NULL;
  if (j->ai != NULL)
    freeaddrinfo(j->ai);
  j->ai = NULL;
  if (j->agent != NULL) {
    libssh2_agent_disconnect(j->agent);
    libssh2_agent_free(j->agent);
    j->agent = NULL;
  }
  for (int i = 0; i < j->nkeys; i++)
    free(j->keys[i]);
  j->nkeys = 0;
}

/* Tears down a session that never made it into the pool. */
static void job_abandon_session(job *j)
{
  if (j->s != NULL) {
    libssh2_session_free(j->s);
    j->s = NULL;
  }
  if (j->fd >= 0)
    close(j->fd);
  j->fd = -1;
}

static void fail(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(job *j, const char *fmt, ...)
{
  char msg[1500];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  set_error(j, "%s", msg);
  if (j->c == NULL)
    job_abandon_session(j);
  job_finish(j);
}

/* A peer that vanishes without a FIN or RST (power loss, a partition) would
 * otherwise look like a quiet command until the command timeout: TCP
 * keepalive probes an idle connection, and the user timeout bounds how long
 * sent data may stay unacknowledged; either way recv fails and the host ends
 * as "connection lost". */
static void set_liveness(int fd)
{
  int one = 1, idle = 10, intvl = 5, cnt = 3;
  unsigned user_ms = 30000;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
}

static int try_connect(job *j)
{
  for (; j->cur != NULL; j->cur = j->cur->ai_next) {
    int fd = socket(j->cur->ai_family, j->cur->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    j->cur->ai_protocol);
    if (fd < 0)
      continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_liveness(fd);
    if (connect(fd, j->cur->ai_addr, j->cur->ai_addrlen) == 0 || errno == EINPROGRESS) {
      j->fd = fd;
      return 0;
    }
    close(fd);
  }
  return -1;
}

static void start_connect(job *j, rb_ssh_pool *p)
{
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char port[16];
  snprintf(port, sizeof port, "%d", j->port);
  int64_t cms = p->connect_ms;
  if (j->connect_cap_ms > 0 && j->connect_cap_ms < cms)
    cms = j->connect_cap_ms;
  j->deadline_ms = rb_now_mono_ms() + cms;
  int rc = getaddrinfo(j->h->address, port, &hints, &j->ai);
  if (rc != 0) {
    fail(j, "cannot resolve %s: %s", j->h->address, gai_strerror(rc));
    return;
  }
  j->cur = j->ai;
  if (try_connect(j) < 0) {
    fail(j, "cannot connect: %s", strerror(errno));
    return;
  }
  j->ph = P_CONNECT;
}

static void step_connect(job *j)
{
  struct pollfd pfd = {j->fd, POLLOUT, 0};
  if (poll(&pfd, 1, 0) <= 0)
    return;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  getsockopt(j->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (soerr == 0) {
    j->ph = P_HANDSHAKE;
    return;
  }
  close(j->fd);
  j->fd = -1;
  j->cur = j->cur->ai_next;
  if (j->cur == NULL || try_connect(j) < 0) {
    if (soerr == ECONNREFUSED)
      fail(j, "connection refused (is sshd running on port %d?)", j->port);
    else
      fail(j, "cannot connect: %s", strerror(soerr));
  }
}

/* Keeps the methods of want that this libssh2 supports: method_pref would
 * drop the others itself, but 1.10 does so with an overlapping memcpy. */
static void supported_only(LIBSSH2_SESSION *s, const char *want, char *out, size_t len)
{
  const char **algs = NULL;
  int n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
  char copy[200];
  out[0] = '\0';
  snprintf(copy, sizeof copy, "%s", want);
  for (char *save = NULL, *m = strtok_r(copy, ",", &save); m != NULL;
       m = strtok_r(NULL, ",", &save)) {
    for (int i = 0; i < n; i++) {
      if (strcmp(algs[i], m) == 0) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", used ? "," : "", m);
        break;
      }
    }
  }
  if (algs != NULL)
    libssh2_free(s, algs);
}

static void begin_handshake(job *j, rb_ssh_pool *p)
{
  j->s = libssh2_session_init_ex(NULL, NULL, NULL, j);
  if (j->s == NULL) {
    fail(j, "cannot create an SSH session");
    return;
  }
  libssh2_session_set_blocking(j->s, 0);
  /* libssh2 1.10 asks for ECDSA first; ask for what known_hosts can verify,
   * else for ed25519 first as OpenSSH does, so fingerprints match ssh's */
  int known =
      rb_ssh_knownhosts_methods(p->kh, j->h->address, j->port, j->prefs, sizeof j->prefs);
  if (known == 0)
    snprintf(j->prefs, sizeof j->prefs, "%s",
             "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
             "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
  char usable[200];
  supported_only(j->s, j->prefs, usable, sizeof usable);
  if (usable[0] == '\0' ||
      libssh2_session_method_pref(j->s, LIBSSH2_METHOD_HOSTKEY, usable) != 0)
    fail(j, "known_hosts lists only host key types libssh2 cannot use (%s)", j->prefs);
}

static int verify_hostkey(job *j, rb_ssh_pool *p)
{
  size_t len = 0;
  int type = 0;
  const char *blob = libssh2_session_hostkey(j->s, &len, &type);
  const unsigned char *dig =
      (const unsigned char *)libssh2_hostkey_hash(j->s, LIBSSH2_HOSTKEY_HASH_SHA256);
  char fp[80], ktype[80], known[200], name[300];
  if (blob == NULL || dig == NULL ||
      rb_ssh_blob_type((const unsigned char *)blob, len, ktype, sizeof ktype) < 0) {
    fail(j, "the server sent no usable host key");
    return -1;
  }
  rb_ssh_fingerprint(dig, fp, sizeof fp);
  rb_ssh_knownhosts_name(j->h->address, j->port, name, sizeof name);
  const char *khp = rb_ssh_knownhosts_path(p->kh);
  rb_ssh_kh_status st =
      rb_ssh_knownhosts_check(p->kh, j->h->address, j->port, (const unsigned char *)blob,
                              len, known, sizeof known);
  if (st == RB_KH_OK)
    return 0;
  if (st == RB_KH_REVOKED) {
    fail(j, "host key %s %s is marked @revoked in %s; refusing to connect", ktype, fp,
         khp);
    return -1;
  }
  if (st == RB_KH_CERT) {
    char *line =
        rb_ssh_knownhosts_line(j->h->address, j->port, (const unsigned char *)blob, len);
    fail(j,
         "host certificates (@cert-authority) are not supported: a @cert-authority line "
         "in %s covers %s and libssh2 cannot verify host certificates; refusing to "
         "connect. To trust the host's own key instead, check its fingerprint %s %s on "
         "the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and add:\n%s",
         khp, name, ktype, fp, line ? line : "(cannot format the key)");
    free(line);
    return -1;
  }
  if (st == RB_KH_CHANGED) {
    fail(
        j,
        "HOST KEY CHANGED: the server presented %s %s, which does not match the %s "
        "key(s) "
        "%s lists for %s: possible man-in-the-middle attack; refusing to connect. If the "
        "host was really rebuilt, confirm the new fingerprint out of band and replace "
        "the "
        "old entry (ssh-keygen -R '%s' -f %s)",
        ktype, fp, known, khp, name, name, khp);
    return -1;
  }
  char *line =
      rb_ssh_knownhosts_line(j->h->address, j->port, (const unsigned char *)blob, len);
  if (p->tofu && j->preflight) {
    free(line); /* the real run would trust it; a dry-run records nothing */
    return 0;
  }
  if (p->tofu) {
    char err[512];
    if (rb_ssh_knownhosts_add(p->kh, j->h->address, j->port, (const unsigned char *)blob,
                              len, err, sizeof err) < 0) {
      fail(j, "trust_on_first_use: %s", err);
      free(line);
      return -1;
    }
    free(line);
    j->tofu_added = 1; /* step_job reports it through on_note */
    return 0;
  }
  fail(j,
       "host key is unknown: %s key fingerprint is %s; refusing to connect. If that "
       "fingerprint is right (check it on the host: ssh-keygen -lf "
       "/etc/ssh/ssh_host_*_key.pub), add this line to %s:\n%s",
       ktype, fp, khp, line ? line : "(cannot format the key)");
  free(line);
  return -1;
}

static void auth_failed(job *j)
{
  fail(j, "authentication as %s failed: %s", j->user,
       j->autherr[0] ? j->autherr : "no ssh-agent identity and no key file to try");
}

static void note_key_failure(job *j, const char *path, int rc)
{
  char type[80];
  int enc = 0;
  const char *why = ssh_errmsg(j->s);
  char msg[600];
  if (rb_ssh_key_type(path, type, sizeof type, &enc) == 0 && strcmp(type, "ssh-rsa") == 0)
    snprintf(msg, sizeof msg,
             "key %s is RSA and libssh2 1.10 cannot sign with RSA SHA-2 "
             "(rsa-sha2-256/512), which modern OpenSSH requires; use an ed25519 key",
             path);
  else if (enc || rc == LIBSSH2_ERROR_FILE)
    snprintf(msg, sizeof msg,
             "cannot use key %s (%s); an encrypted key must be loaded into ssh-agent",
             path, why);
  else
    snprintf(msg, sizeof msg, "key %s was not accepted (%s)", path, why);
  size_t used = strlen(j->autherr);
  snprintf(j->autherr + used, sizeof j->autherr - used, "%s%s", used ? "; " : "", msg);
}

static void step_auth(job *j, rb_ssh_pool *p)
{
  unsigned ul = (unsigned)strlen(j->user);
  if (j->ph == P_AUTHLIST) {
    char *list = libssh2_userauth_list(j->s, j->user, ul);
    if (list == NULL) {
      if (libssh2_userauth_authenticated(j->s)) {
        j->ph = P_OPEN;
        return;
      }
      if (libssh2_session_last_errno(j->s) == LIBSSH2_ERROR_EAGAIN)
        return;
      fail(j, "cannot list auth methods: %s", ssh_errmsg(j->s));
      return;
    }
    if (strstr(list, "publickey") == NULL) {
      fail(j, "the server does not accept public key authentication (offers: %s)", list);
      return;
    }
    pick_keys(j, p);
    j->ph = P_KEYS;
    const char *sock = getenv("SSH_AUTH_SOCK");
    if (p->use_agent && sock != NULL && *sock != '\0') {
      j->agent = libssh2_agent_init(j->s);
      if (j->agent != NULL && libssh2_agent_connect(j->agent) == 0 &&
          libssh2_agent_list_identities(j->agent) == 0)
        j->ph = P_AGENT;
    }
  }
  if (j->ph == P_AGENT) {
    for (;;) {
      if (j->ident == NULL) {
        int rc = libssh2_agent_get_identity(j->agent, &j->ident, NULL);
        if (rc != 0) {
          j->ident = NULL;
          j->ph = P_KEYS;
          break;
        }
      }
      int rc = libssh2_agent_userauth(j->agent, j->user, j->ident);
      if (rc == LIBSSH2_ERROR_EAGAIN)
        return;
      if (rc == 0) {
        j->ph = P_OPEN;
        return;
      }
      struct libssh2_agent_publickey *prev = j->ident;
      if (libssh2_agent_get_identity(j->agent, &j->ident, prev) != 0) {
        snprintf(j->autherr, sizeof j->autherr, "no ssh-agent identity was accepted");
        j->ident = NULL;
        j->ph = P_KEYS;
        break;
      }
    }
  }
  while (j->keyi < j->nkeys) {
    const char *path = j->keys[j->keyi];
    char pub[1100];
    const char *pubp = NULL;
    if (rb_fmt(pub, sizeof pub, "%s.pub", path) == 0 && access(pub, R_OK) == 0)
      pubp = pub;
    int rc = libssh2_userauth_publickey_fromfile_ex(j->s, j->user, ul, pubp, path, NULL);
    if (rc == LIBSSH2_ERROR_EAGAIN)
      return;
    if (rc == 0) {
      j->ph = P_OPEN;
      return;
    }
    if (rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_RECV ||
        rc == LIBSSH2_ERROR_SOCKET_SEND) {
      fail(j, "connection lost during authentication: %s", ssh_errmsg(j->s));
      return;
    }
    note_key_failure(j, path, rc);
    j->keyi++;
  }
  auth_failed(j);
}

/* The fix for a host known only by keys this build cannot negotiate: the
 * server's own ed25519/ECDSA line, fetched over a second handshake. */
static void unverifiable(job *j, rb_ssh_pool *p, const char *what, const char *name)
{
  char *line = NULL, fp[80] = "", perr[300];
  const char *khp = rb_ssh_knownhosts_path(p->kh);
  if (rb_ssh_probe_hostkey(j->h->address, j->port, p->connect_ms, &line, fp, sizeof fp,
                           perr, sizeof perr) == 0)
    fail(j,
         "%s; runbook cannot check %s's key, which does not mean it changed. Add the "
         "server's ed25519 or ECDSA key to %s: it presented %s; if that fingerprint is "
         "right (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host), add:\n%s",
         what, name, khp, fp, line);
  else
    fail(j,
         "%s; runbook cannot check %s's key, which does not mean it changed. Add the "
         "server's ed25519 or ECDSA key line to %s (ssh-keyscan -t ed25519 on a trusted "
         "path; fetching it here failed: %s)",
         what, name, khp, perr);
  free(line);
}

/* The handshake found no host key type both sides can use. known lists the
 * types known_hosts has for the host; the ones this libssh2 cannot use are
 * not a sign of a changed key, the others are. */
static void kex_failed(job *j, rb_ssh_pool *p, const char *known)
{
  char usable[200], name[300], what[900];
  supported_only(j->s, known, usable, sizeof usable);
  rb_ssh_knownhosts_name(j->h->address, j->port, name, sizeof name);
  int rsa =
      strstr(known, "rsa-sha2-256") != NULL && strstr(usable, "rsa-sha2-256") == NULL;
  if (rsa && strcmp(usable, "ssh-rsa") == 0) {
    snprintf(what, sizeof what,
             "SSH handshake failed (%s): known_hosts lists only an RSA key for %s, and "
             "this build (libssh2 %s) cannot verify RSA host keys signed with SHA-2 "
             "(rsa-sha2-256/512), while the server no longer offers SHA-1 ssh-rsa",
             ssh_errmsg(j->s), name, LIBSSH2_VERSION);
    unverifiable(j, p, what, name);
  } else if (strcmp(usable, known) != 0) {
    snprintf(
        what, sizeof what,
        "SSH handshake failed (%s): known_hosts lists only %s for %s, and this build "
        "(libssh2 %s) can negotiate only %s of them with this server",
        ssh_errmsg(j->s), known, name, LIBSSH2_VERSION, usable[0] ? usable : "none");
    unverifiable(j, p, what, name);
  } else {
    fail(j,
         "SSH handshake failed (%s): known_hosts lists only %s for %s and the server "
         "offers none of them; its host key may have changed (possible "
         "man-in-the-middle); refusing",
         ssh_errmsg(j->s), known, name);
  }
}

static void step_handshake(job *j, rb_ssh_pool *p)
{
  if (j->s == NULL) {
    begin_handshake(j, p);
    if (j->ph == P_DONE)
      return;
  }
  int rc = libssh2_session_handshake(j->s, j->fd);
  if (rc == LIBSSH2_ERROR_EAGAIN)
    return;
  if (rc != 0) {
    char known[200];
    if (rb_ssh_knownhosts_methods(p->kh, j->h->address, j->port, known, sizeof known) >
            0 &&
        rc == LIBSSH2_ERROR_KEX_FAILURE)
      kex_failed(j, p, known);
    else
      fail(j, "SSH handshake failed: %s", ssh_errmsg(j->s));
    return;
  }
  p->handshakes++;
  if (verify_hostkey(j, p) < 0)
    return;
  j->ph = P_AUTHLIST;
}

/* The session is authenticated: hand it to the pool. */
static int adopt_session(job *j, rb_ssh_pool *p)
{
  conn *c = calloc(1, sizeof *c);
  if (c == NULL || (c->key = strdup(j->key)) == NULL) {
    free(c);
    fail(j, "out of memory");
    return -1;
  }
  c->fd = j->fd;
  c->s = j->s;
  c->next = p->conns;
  p->conns = c;
  j->c = c;
  return 0;
}

static int is_socket_error(int rc)
{
  return rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_RECV ||
         rc == LIBSSH2_ERROR_SOCKET_SEND || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT ||
         rc == LIBSSH2_ERROR_CHANNEL_CLOSED;
}

static void lost(job *j, rb_ssh_pool *p, const char *when)
{
  const char *why = ssh_errmsg(j->s);
  char msg[300];
  snprintf(msg, sizeof msg, "%s", why);
  if (j->ch != NULL)
    libssh2_channel_free(j->ch); /* frees locally; the peer is gone */
  j->ch = NULL;
  conn *c = j->c;
  j->c = NULL;
  j->s = NULL;
  j->fd = -1;
  if (c != NULL)
    pool_drop(p, c);
  set_error(j, "connection lost %s (%s)", when, msg);
  job_finish(j);
}

static void step_open(job *j, rb_ssh_pool *p, const char *command)
{
  if (j->ph == P_OPEN) {
    j->ch = libssh2_channel_open_session(j->s);
    if (j->ch == NULL) {
      int e = libssh2_session_last_errno(j->s);
      if (e == LIBSSH2_ERROR_EAGAIN)
        return;
      if (j->r->reused && !j->retried &&
          (is_socket_error(e) || e == LIBSSH2_ERROR_CHANNEL_FAILURE)) {
        /* the pooled session died between commands; nothing was sent yet, so
         * a fresh connection is safe */
        conn *c = j->c;
        j->c = NULL;
        j->s = NULL;
        j->fd = -1;
        pool_drop(p, c);
        j->retried = 1;
        j->r->reused = 0;
        start_connect(j, p);
        return;
      }
      fail(j, "cannot open a channel: %s", ssh_errmsg(j->s));
      return;
    }
    j->ph = P_EXEC;
  }
  if (j->ph == P_EXEC) {
    int rc = libssh2_channel_exec(j->ch, command);
    if (rc == LIBSSH2_ERROR_EAGAIN)
      return;
    if (rc != 0) {
      if (is_socket_error(rc)) {
        lost(j, p, "before the command started");
        return;
      }
      libssh2_channel_free(j->ch);
      j->ch = NULL;
      fail(j, "the server refused to run the command: %s", ssh_errmsg(j->s));
      return;
    }
    j->ph = P_READ;
  }
}

static void step_read(job *j, rb_ssh_pool *p)
{
  char buf[16384];
  for (;;) {
    int progressed = 0;
    for (int stream = 0; stream < 2; stream++) {
      ssize_t n = libssh2_channel_read_ex(j->ch, stream, buf, sizeof buf);
      if (n > 0) {
        cap_append(stream ? &j->err : &j->out, buf, (size_t)n);
        progressed = 1;
      } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
        lost(j, p,
             "while the command ran; its exit status is unknown and it may still "
             "be running");
        return;
      }
    }
    if (!progressed)
      break;
  }
  if (libssh2_channel_eof(j->ch))
    j->ph = P_CLOSE;
}

static void collect_exit(job *j)
{
  char *sig = NULL;
  size_t siglen = 0;
  libssh2_channel_get_exit_signal(j->ch, &sig, &siglen, NULL, NULL, NULL, NULL);
  if (sig != NULL && siglen > 0) {
    j->r->signal = strndup(sig, siglen);
    j->r->exit_code = -1;
  } else {
    j->r->exit_code = libssh2_channel_get_exit_status(j->ch);
  }
  if (sig != NULL)
    libssh2_free(j->s, sig);
}

/* Terminates the timed-out command. libssh2 1.10 cannot send the "signal"
 * channel request (a channel takes one request, the exec), and closing a
 * channel without a pty leaves the command running. So a second channel on
 * the same connection signals it: sshd runs every channel's command as its
 * own session leader under one per-connection process, and we run one
 * command per connection at a time, so the sessions under our shell's parent,
 * other than ours, are the timed-out command. */
#define KILL_SNIPPET                                                                     \
  "for p in $(pgrep -P \"$PPID\" 2>/dev/null || ps -o pid= --ppid \"$PPID\"); do "       \
  "[ \"$p\" = \"$$\" ] || kill -TERM -- \"-$p\" 2>/dev/null || kill -TERM \"$p\"; done"

static void drain(LIBSSH2_CHANNEL *ch, capbuf *out, capbuf *err)
{
  char buf[4096];
  for (int stream = 0; stream < 2; stream++) {
    ssize_t n;
    while ((n = libssh2_channel_read_ex(ch, stream, buf, sizeof buf)) > 0)
      if (out != NULL)
        cap_append(stream ? err : out, buf, (size_t)n);
  }
}

/* Returns 1 when done with the kill channel (either way), 0 to wait. */
static int step_kill(job *j)
{
  int rc = 0;
  drain(j->ch, &j->out, &j->err);
  switch (j->killstate) {
  case 0:
    j->killch = libssh2_channel_open_session(j->s);
    if (j->killch == NULL)
      return libssh2_session_last_errno(j->s) == LIBSSH2_ERROR_EAGAIN ? 0 : 1;
    j->killstate = 1;
    /* fall through */
  case 1:
    rc = libssh2_channel_exec(j->killch, KILL_SNIPPET);
    if (rc == LIBSSH2_ERROR_EAGAIN)
      return 0;
    j->killstate = rc == 0 ? 2 : 3;
    /* fall through */
  case 2:
    if (j->killstate == 2) {
      drain(j->killch, NULL, NULL);
      if (!libssh2_channel_eof(j->killch))
        return 0;
      j->killstate = 3;
    }
    /* fall through */
  default:
    rc = libssh2_channel_close(j->killch);
    if (rc == LIBSSH2_ERROR_EAGAIN)
      return 0;
    if (libssh2_channel_free(j->killch) == LIBSSH2_ERROR_EAGAIN)
      return 0;
    j->killch = NULL;
    return 1;
  }
}

static void step_close(job *j, rb_ssh_pool *p)
{
  if (j->ph == P_KILL) {
    if (rb_now_mono_ms() < j->kill_deadline_ms && !step_kill(j))
      return;
    if (j->killch != NULL) {
      libssh2_channel_free(j->killch);
      j->killch = NULL;
    }
    j->ph = P_CLOSE;
  }
  drain(j->ch, &j->out, &j->err);
  int rc = libssh2_channel_close(j->ch);
  if (rc == 0)
    rc = libssh2_channel_wait_closed(j->ch);
  if (rc == LIBSSH2_ERROR_EAGAIN) {
    if (!j->r->timed_out || rb_now_mono_ms() < j->kill_deadline_ms)
      return;
  } else if (rc != 0 && is_socket_error(rc) && !j->r->timed_out) {
    lost(j, p, "before the exit status arrived");
    return;
  }
  collect_exit(j); /* after a timeout, a TERM that landed shows as the signal */
  if (rc == LIBSSH2_ERROR_EAGAIN) {
    /* the server never closed the channel: give up on this session */
    conn *c = j->c;
    libssh2_channel_free(j->ch);
    j->ch = NULL;
    j->c = NULL;
    j->s = NULL;
    if (c != NULL) {
      for (conn **pc = &p->conns; *pc != NULL; pc = &(*pc)->next)
        if (*pc == c) {
          *pc = c->next;
          break;
        }
      conn_close(c);
    }
    job_finish(j);
    return;
  }
  if (libssh2_channel_free(j->ch) == LIBSSH2_ERROR_EAGAIN)
    return;
  j->ch = NULL;
  job_finish(j);
}

static void check_deadline(job *j, rb_ssh_pool *p, int64_t timeout_ms)
{
  int64_t now = rb_now_mono_ms();
  if (j->deadline_ms == 0 || now < j->deadline_ms)
    return;
  switch (j->ph) {
  case P_CONNECT:
    close(j->fd);
    j->fd = -1;
    fail(j, "timed out connecting to port %d after %lld ms", j->port,
         (long long)p->connect_ms);
    break;
  case P_HANDSHAKE:
  case P_AUTHLIST:
  case P_AGENT:
  case P_KEYS:
    fail(j, "timed out in the SSH %s after %lld ms",
         j->ph == P_HANDSHAKE ? "handshake" : "authentication", (long long)p->connect_ms);
    break;
  case P_OPEN:
  case P_EXEC:
  case P_READ:
    if (j->ch == NULL) {
      fail(j, "timed out opening a channel");
      break;
    }
    j->r->timed_out = 1;
    set_error(
        j, "command timed out after %lld ms; sent SIGTERM to it and closed the channel",
        (long long)timeout_ms);
    j->ph = P_KILL;
    j->kill_deadline_ms = now + KILL_GRACE_MS;
    j->deadline_ms = 0;
    break;
  default:
    break;
  }
}

typedef struct {
  rb_ssh_pool *p;
  const rb_ssh_opts *o;
  const char *command;
  int64_t timeout_ms;
} runctx;

static void step_job(runctx *rc, job *j)
{
  rb_ssh_pool *p = rc->p;
  check_deadline(j, p, rc->timeout_ms);
  for (enum phase before = P_DONE; j->ph != P_DONE && j->ph != before;) {
    before = j->ph;
    switch (j->ph) {
    case P_CONNECT:
      step_connect(j);
      break;
    case P_HANDSHAKE:
      step_handshake(j, p);
      if (j->tofu_added && rc->o->on_note != NULL) {
        char msg[900];
        char *line = NULL;
        size_t len = 0;
        int type = 0;
        const char *blob = libssh2_session_hostkey(j->s, &len, &type);
        if (blob != NULL)
          line = rb_ssh_knownhosts_line(j->h->address, j->port,
                                        (const unsigned char *)blob, len);
        snprintf(
            msg, sizeof msg,
            "%s: host key was unknown and is now trusted (trust_on_first_use); added "
            "to %s: %s",
            j->label, rb_ssh_knownhosts_path(p->kh), line ? line : "?");
        free(line);
        rc->o->on_note(rc->o->arg, j->h->name, msg);
        j->tofu_added = 0;
      }
      break;
    case P_AUTHLIST:
    case P_AGENT:
    case P_KEYS:
      step_auth(j, p);
      if (j->ph == P_OPEN) {
        if (j->c == NULL && adopt_session(j, p) < 0)
          return;
        if (j->preflight) {
          j->r->exit_code = 0;
          job_finish(j);
          return;
        }
        j->deadline_ms = rc->timeout_ms > 0 ? rb_now_mono_ms() + rc->timeout_ms : 0;
      }
      break;
    case P_OPEN:
    case P_EXEC:
      step_open(j, p, rc->command);
      break;
    case P_READ:
      step_read(j, p);
      break;
    case P_KILL:
    case P_CLOSE:
      step_close(j, p);
      break;
    default:
      break;
    }
  }
}

static void start_job(runctx *rc, job *j)
{
  rb_ssh_pool *p = rc->p;
  j->t0_us = rb_now_mono_us();
  j->r->exit_code = -1;
  conn *c = pool_find(p, j->key);
  if (c != NULL) {
    j->c = c;
    j->s = c->s;
    j->fd = c->fd;
    j->r->reused = 1;
    j->ph = P_OPEN;
    if (j->preflight) { /* authenticated earlier in this run */
      j->r->exit_code = 0;
      job_finish(j);
      return;
    }
    j->deadline_ms = rc->timeout_ms > 0 ? rb_now_mono_ms() + rc->timeout_ms : 0;
  } else {
    start_connect(j, p);
  }
  step_job(rc, j);
}

static short job_events(const job *j)
{
  if (j->ph == P_CONNECT)
    return POLLOUT;
  int dir = j->s ? libssh2_session_block_directions(j->s) : 0;
  short ev = 0;
  if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
    ev |= POLLIN;
  if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
    ev |= POLLOUT;
  return ev ? ev : POLLIN;
}

static int init_job(job *j, const rb_ssh_host *h, rb_ssh_result *r, rb_ssh_pool *p,
                    size_t output_max)
{
  memset(j, 0, sizeof *j);
  j->h = h;
  j->r = r;
  j->fd = -1;
  j->ph = P_WAIT;
  j->output_max = output_max;
  rb_buf_init(&j->out.b, output_max);
  rb_buf_init(&j->err.b, output_max);
  j->user = h->user ? h->user : p->user ? p->user : "root";
  j->port = h->port > 0 ? h->port : p->port;
  if (strcmp(h->name, h->address) == 0)
    snprintf(j->label, sizeof j->label, "ssh %s:%d", h->address, j->port);
  else
    snprintf(j->label, sizeof j->label, "ssh %s (%s:%d)", h->name, h->address, j->port);
  snprintf(j->key, sizeof j->key, "%s|%s|%s|%d", h->name, j->user, h->address, j->port);
  r->host = strdup(h->name);
  r->address = strdup(h->address);
  r->user = strdup(j->user);
  r->port = j->port;
  r->exit_code = -1;
  return (r->host && r->address && r->user) ? 0 : -1;
}

static void report(runctx *rc, job *j, rb_ssh_progress *pr)
{
  if (j->r->skipped)
    pr->skipped++;
  else if (!j->r->ok)
    pr->failed++;
  pr->done++;
  if (rc->o->on_result != NULL)
    rc->o->on_result(rc->o->arg, j->r);
}

/* The host of the active job that started first, and the time so far. */
static void waiting_for(const job *jobs, const size_t *active, size_t nactive,
                        int64_t started_us, rb_ssh_progress *pr)
{
  const job *oldest = NULL;
  for (size_t k = 0; k < nactive; k++)
    if (oldest == NULL || jobs[active[k]].t0_us < oldest->t0_us)
      oldest = &jobs[active[k]];
  pr->waiting = oldest ? oldest->r->host : NULL;
  pr->elapsed_ms = (rb_now_mono_us() - started_us) / 1000;
}

void rb_ssh_progress_line(const rb_ssh_progress *p, char *buf, size_t len)
{
  char el[32];
  rb_format_elapsed(p->elapsed_ms * 1000, el, sizeof el);
  int off = snprintf(buf, len, "ssh: %zu/%zu hosts done, %zu failed", p->done, p->total,
                     p->failed);
  if (off > 0 && (size_t)off < len && p->skipped)
    off += snprintf(buf + off, len - (size_t)off, ", %zu not started", p->skipped);
  if (off > 0 && (size_t)off < len && p->running && p->waiting)
    off += snprintf(buf + off, len - (size_t)off, ", %zu running (waiting for %s%s)",
                    p->running, p->waiting, p->running > 1 ? " and others" : "");
  if (off > 0 && (size_t)off < len)
    snprintf(buf + off, len - (size_t)off, ", %s", el);
}

int rb_ssh_run(rb_ssh_pool *p, const rb_ssh_host *hosts, size_t n, const char *command,
               const rb_ssh_opts *o, rb_ssh_result **results, char *err, size_t errlen)
{
  *results = NULL;
  if (p == NULL || command == NULL || n == 0)
    return rb_err(err, errlen, "ssh: nothing to run");
  rb_ssh_result *res = calloc(n, sizeof *res);
  job *jobs = calloc(n, sizeof *jobs);
  size_t *active = calloc(n, sizeof *active);
  struct pollfd *pfds = calloc(n, sizeof *pfds);
  int rcode = -1;
  if (res == NULL || jobs == NULL || active == NULL || pfds == NULL) {
    rb_err(err, errlen, "ssh: out of memory");
    goto out;
  }
  size_t output_max = o->output_max ? o->output_max : DEF_OUTPUT;
  for (size_t i = 0; i < n; i++)
    if (init_job(&jobs[i], &hosts[i], &res[i], p, output_max) < 0) {
      rb_err(err, errlen, "ssh: out of memory");
      goto out;
    } else if (o->preflight) {
      jobs[i].preflight = 1;
      jobs[i].connect_cap_ms = o->timeout_ms;
    }
  runctx rc = {p, o, command, o->timeout_ms};
  size_t parallel = o->parallel > 0 ? (size_t)o->parallel : DEF_PARALLEL;
  size_t bsize = rb_ssh_batch_size(o->batch, n),
         limit = rb_ssh_fail_limit(o->max_fail, n);
  rb_ssh_progress pr = {n, 0, 0, 0, 0, 0, NULL, 0};
  int64_t started_us = rb_now_mono_us();
  size_t next = 0, bend = bsize < n ? bsize : n, nactive = 0;
  int stopped = 0;
  while (next < n || nactive > 0) {
    /* start hosts of the current batch while there is room */
    while (!stopped && next < bend && nactive < parallel) {
      job *j = &jobs[next++];
      start_job(&rc, j);
      active[nactive++] = (size_t)(j - jobs);
    }
    /* reap finished jobs */
    int changed = 0;
    for (size_t k = 0; k < nactive;) {
      job *j = &jobs[active[k]];
      if (j->ph != P_DONE) {
        k++;
        continue;
      }
      report(&rc, j, &pr);
      active[k] = active[--nactive];
      changed = 1;
      if (pr.failed > limit)
        stopped = 1;
    }
    pr.running = nactive;
    if (o->on_progress != NULL) {
      /* every pass of the loop (at most a second apart) says who we wait for */
      waiting_for(jobs, active, nactive, started_us, &pr);
      pr.heartbeat = !changed;
      o->on_progress(o->arg, &pr);
    }
    if (stopped && nactive == 0) {
      for (; next < n; next++) {
        jobs[next].r->skipped = 1;
        jobs[next].t0_us = rb_now_mono_us();
        set_error(&jobs[next], "not started: %zu host(s) failed, over max_fail %zu",
                  pr.failed, limit);
        job_finish(&jobs[next]);
        report(&rc, &jobs[next], &pr);
      }
      if (o->on_progress != NULL) {
        waiting_for(jobs, active, 0, started_us, &pr);
        pr.heartbeat = 0;
        o->on_progress(o->arg, &pr);
      }
      break;
    }
    if (nactive == 0) {
      if (next >= n)
        break;
      if (next >= bend) /* batch finished: the next one starts */
        bend = bend + bsize < n ? bend + bsize : n;
      continue;
    }
    if (changed)
      continue;
    int64_t now = rb_now_mono_ms(), wait = 1000;
    for (size_t k = 0; k < nactive; k++) {
      job *j = &jobs[active[k]];
      int64_t dl =
          j->ph == P_KILL || j->ph == P_CLOSE ? j->kill_deadline_ms : j->deadline_ms;
      if (dl > 0 && dl - now < wait)
        wait = dl - now < 0 ? 0 : dl - now;
      pfds[k].fd = j->fd;
      pfds[k].events = job_events(j);
      pfds[k].revents = 0;
    }
    if (poll(pfds, nactive, (int)wait) < 0 && errno != EINTR) {
      rb_err(err, errlen, "ssh: poll: %s", strerror(errno));
      goto out;
    }
    for (size_t k = 0; k < nactive; k++)
      step_job(&rc, &jobs[active[k]]);
  }
  *results = res;
  res = NULL;
  rcode = 0;
out:
  for (size_t i = 0; jobs != NULL && i < n; i++) {
    if (jobs[i].ph != P_DONE && jobs[i].ph != P_WAIT)
      job_finish(&jobs[i]);
    rb_buf_free(&jobs[i].out.b);
    rb_buf_free(&jobs[i].err.b);
  }
  rb_ssh_results_free(res, n);
  free(jobs);
  free(active);
  free(pfds);
  return rcode;
}

void rb_ssh_results_free(rb_ssh_result *r, size_t n)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < n; i++) {
    free(r[i].host);
    free(r[i].address);
    free(r[i].user);
    free(r[i].signal);
    free(r[i].out);
    free(r[i].errout);
    free(r[i].error);
  }
  free(r);
}
