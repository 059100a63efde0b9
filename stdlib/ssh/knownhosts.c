/* knownhosts.c: reads OpenSSH known_hosts (plain, hashed, [host]:port,
 * wildcards, @revoked, @cert-authority refused) and decides whether a server's host key
 * is trusted.
 *
 * Why not libssh2_knownhost_*: the handshake needs the key *types* listed for
 * a host before any key is seen (to set the host key method preference), and
 * libssh2 hides the names of hashed entries; libssh2_knownhost_readfile also
 * rejects a whole file over one line it does not understand (a certificate
 * authority, an sk- key). One parser serves both questions here. SHA-1 is
 * implemented locally because rbcore does not link libcrypto directly. */
#include "stdlib/ssh/knownhosts.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "runner/base/util.h"

#define KH_MAX_BLOB 16384

typedef struct {
  char *hosts;         /* the host field: patterns, or one |1|salt|hash */
  char *type;          /* "ssh-ed25519" */
  unsigned char *blob; /* decoded key */
  size_t bloblen;
  int revoked;
  int ca; /* @cert-authority: blob is a CA key; covers hosts, verifies none */
} kh_entry;

struct rb_ssh_knownhosts {
  char *path;
  kh_entry *v;
  size_t n, cap;
};

/* ---- SHA-1 (FIPS 180-4) and HMAC (RFC 2104) ---- */

typedef struct {
  uint32_t h[5];
  uint64_t len;
  unsigned char buf[64];
  size_t nbuf;
} sha1_ctx;

static uint32_t rol(uint32_t x, int n)
{
  return (x << n) | (x >> (32 - n));
}

static void sha1_block(sha1_ctx *c, const unsigned char *p)
{
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) {
      f = (b & cc) | (~b & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ cc ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & cc) | (b & d) | (cc & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ cc ^ d;
      k = 0xCA62C1D6;
    }
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = cc;
    cc = rol(b, 30);
    b = a;
    a = t;
  }
  c->h[0] += a;
  c->h[1] += b;
  c->h[2] += cc;
  c->h[3] += d;
  c->h[4] += e;
}

static void sha1_init(sha1_ctx *c)
{
  static const uint32_t iv[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                                 0xC3D2E1F0};
  memcpy(c->h, iv, sizeof iv);
  c->len = 0;
  c->nbuf = 0;
}

static void sha1_update(sha1_ctx *c, const unsigned char *p, size_t n)
{
  c->len += n;
  while (n > 0) {
    size_t take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
    memcpy(c->buf + c->nbuf, p, take);
    c->nbuf += take;
    p += take;
    n -= take;
    if (c->nbuf == 64) {
      sha1_block(c, c->buf);
      c->nbuf = 0;
    }
  }
}

static void sha1_final(sha1_ctx *c, unsigned char out[20])
{
  uint64_t bits = c->len * 8;
  unsigned char pad = 0x80, zero = 0, lenb[8];
  sha1_update(c, &pad, 1);
  while (c->nbuf != 56)
    sha1_update(c, &zero, 1);
  for (int i = 0; i < 8; i++)
    lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha1_update(c, lenb, 8);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (unsigned char)(c->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)c->h[i];
  }
}

void rb_ssh_hmac_sha1(const unsigned char *key, size_t keylen, const unsigned char *msg,
                      size_t msglen, unsigned char out[20])
{
  unsigned char k[64] = {0}, ipad[64], opad[64], inner[20];
  sha1_ctx c;
  if (keylen > 64) {
    sha1_init(&c);
    sha1_update(&c, key, keylen);
    sha1_final(&c, k);
  } else {
    memcpy(k, key, keylen);
  }
  for (int i = 0; i < 64; i++) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  sha1_init(&c);
  sha1_update(&c, ipad, 64);
  sha1_update(&c, msg, msglen);
  sha1_final(&c, inner);
  sha1_init(&c);
  sha1_update(&c, opad, 64);
  sha1_update(&c, inner, 20);
  sha1_final(&c, out);
}

/* ---- base64 ---- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

long rb_ssh_base64_encode(const unsigned char *in, size_t n, char *out, size_t outlen,
                          int nopad)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    size_t rem = n - i;
    if (rem > 1)
      v |= (uint32_t)in[i + 1] << 8;
    if (rem > 2)
      v |= in[i + 2];
    char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], rem > 1 ? b64[v >> 6 & 63] : '=',
                 rem > 2 ? b64[v & 63] : '='};
    for (int j = 0; j < 4; j++) {
      if (q[j] == '=' && nopad)
        break;
      if (o + 1 >= outlen)
        return -1;
      out[o++] = q[j];
    }
  }
  if (o >= outlen)
    return -1;
  out[o] = '\0';
  return (long)o;
}

long rb_ssh_base64_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == '=')
      break;
    const char *p = in[i] ? strchr(b64, in[i]) : NULL;
    if (p == NULL)
      return -1;
    acc = acc << 6 | (uint32_t)(p - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= outlen)
        return -1;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  return (long)o;
}

void rb_ssh_fingerprint(const unsigned char digest[32], char *buf, size_t len)
{
  char enc[64];
  rb_ssh_base64_encode(digest, 32, enc, sizeof enc, 1);
  snprintf(buf, len, "SHA256:%s", enc);
}

int rb_ssh_blob_type(const unsigned char *blob, size_t bloblen, char *buf, size_t len)
{
  if (bloblen < 4)
    return -1;
  uint32_t n = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 |
               (uint32_t)blob[2] << 8 | blob[3];
  if (n == 0 || n > bloblen - 4 || n >= len || n > 64)
    return -1;
  memcpy(buf, blob + 4, n);
  buf[n] = '\0';
  for (uint32_t i = 0; i < n; i++)
    if (!isgraph((unsigned char)buf[i]))
      return -1;
  return 0;
}

/* ---- parsing ---- */

void rb_ssh_knownhosts_free(rb_ssh_knownhosts *kh)
{
  if (kh == NULL)
    return;
  for (size_t i = 0; i < kh->n; i++) {
    free(kh->v[i].hosts);
    free(kh->v[i].type);
    free(kh->v[i].blob);
  }
  free(kh->v);
  free(kh->path);
  free(kh);
}

const char *rb_ssh_knownhosts_path(const rb_ssh_knownhosts *kh)
{
  return kh ? kh->path : NULL;
}

static char *next_field(char **s)
{
  char *p = *s;
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p == '\0')
    return NULL;
  char *start = p;
  while (*p != '\0' && *p != ' ' && *p != '\t')
    p++;
  if (*p != '\0')
    *p++ = '\0';
  *s = p;
  return start;
}

static int add_entry(rb_ssh_knownhosts *kh, const char *hosts, const char *type,
                     const unsigned char *blob, size_t bloblen, int revoked, int ca)
{
  if (kh->n == kh->cap) {
    size_t nc = kh->cap ? kh->cap * 2 : 16;
    kh_entry *nv = realloc(kh->v, nc * sizeof *nv);
    if (nv == NULL)
      return -1;
    kh->v = nv;
    kh->cap = nc;
  }
  kh_entry *e = &kh->v[kh->n];
  e->hosts = strdup(hosts);
  e->type = strdup(type);
  e->blob = malloc(bloblen ? bloblen : 1);
  if (e->hosts == NULL || e->type == NULL || e->blob == NULL) {
    free(e->hosts);
    free(e->type);
    free(e->blob);
    return -1;
  }
  memcpy(e->blob, blob, bloblen);
  e->bloblen = bloblen;
  e->revoked = revoked;
  e->ca = ca;
  kh->n++;
  return 0;
}

/* Returns 0 (added or skipped as not understood) or -1 on out of memory. */
static int parse_line(rb_ssh_knownhosts *kh, char *line, unsigned char *scratch)
{
  char *s = line;
  char *f = next_field(&s);
  if (f == NULL || f[0] == '#')
    return 0;
  int revoked = 0, ca = 0;
  if (f[0] == '@') {
    /* @cert-authority is kept so the hosts it covers get a message of their
     * own: libssh2 cannot verify host certificates */
    revoked = strcmp(f, "@revoked") == 0;
    ca = strcmp(f, "@cert-authority") == 0;
    if ((!revoked && !ca) || (f = next_field(&s)) == NULL)
      return 0;
  }
  char *type = next_field(&s), *key = next_field(&s);
  if (type == NULL || key == NULL)
    return 0;
  long n = rb_ssh_base64_decode(key, strlen(key), scratch, KH_MAX_BLOB);
  char btype[80];
  if (n <= 0 || rb_ssh_blob_type(scratch, (size_t)n, btype, sizeof btype) < 0 ||
      strcmp(btype, type) != 0)
    return 0;
  return add_entry(kh, f, type, scratch, (size_t)n, revoked, ca);
}

rb_ssh_knownhosts *rb_ssh_knownhosts_parse(const char *text, const char *name, char *err,
                                           size_t errlen)
{
  rb_ssh_knownhosts *kh = calloc(1, sizeof *kh);
  char *copy = strdup(text ? text : "");
  unsigned char *scratch = malloc(KH_MAX_BLOB);
  if (kh == NULL || copy == NULL || scratch == NULL ||
      (kh->path = strdup(name ? name : "known_hosts")) == NULL)
    goto oom;
  for (char *line = copy; line != NULL;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
      line[len - 1] = '\0';
    if (parse_line(kh, line, scratch) < 0)
      goto oom;
    line = nl ? nl + 1 : NULL;
  }
  free(copy);
  free(scratch);
  return kh;
oom:
  rb_err(err, errlen, "known_hosts %s: out of memory", name ? name : "");
  free(copy);
  free(scratch);
  rb_ssh_knownhosts_free(kh);
  return NULL;
}

rb_ssh_knownhosts *rb_ssh_knownhosts_load(const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  if (f == NULL && errno != ENOENT) {
    rb_err(err, errlen, "known_hosts %s: %s", path, strerror(errno));
    return NULL;
  }
  char *text = NULL;
  size_t len = 0;
  if (f != NULL) {
    FILE *m = open_memstream(&text, &len);
    char buf[8192];
    size_t got;
    while (m != NULL && (got = fread(buf, 1, sizeof buf, f)) > 0)
      fwrite(buf, 1, got, m);
    int bad = ferror(f) || m == NULL;
    fclose(f);
    if (m != NULL)
      fclose(m);
    if (bad) {
      free(text);
      rb_err(err, errlen, "known_hosts %s: read error", path);
      return NULL;
    }
  }
  rb_ssh_knownhosts *kh = rb_ssh_knownhosts_parse(text ? text : "", path, err, errlen);
  free(text);
  return kh;
}

/* ---- matching ---- */

int rb_ssh_knownhosts_name(const char *addr, int port, char *buf, size_t len)
{
  if (port == 0 || port == 22)
    return rb_fmt(buf, len, "%s", addr);
  return rb_fmt(buf, len, "[%s]:%d", addr, port);
}

/* OpenSSH's pattern match: '*' any run, '?' one character, case-blind. */
static int wild_match(const char *s, const char *p, size_t plen)
{
  if (plen == 0)
    return *s == '\0';
  if (*p == '*') {
    for (;; s++) {
      if (wild_match(s, p + 1, plen - 1))
        return 1;
      if (*s == '\0')
        return 0;
    }
  }
  if (*s == '\0')
    return 0;
  if (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s))
    return 0;
  return wild_match(s + 1, p + 1, plen - 1);
}

static int hashed_match(const char *field, const char *name)
{
  const char *salt = field + 3, *bar = strchr(salt, '|');
  if (bar == NULL)
    return 0;
  unsigned char key[64], want[64], got[20];
  long kl = rb_ssh_base64_decode(salt, (size_t)(bar - salt), key, sizeof key);
  long wl = rb_ssh_base64_decode(bar + 1, strlen(bar + 1), want, sizeof want);
  if (kl <= 0 || wl != 20)
    return 0;
  rb_ssh_hmac_sha1(key, (size_t)kl, (const unsigned char *)name, strlen(name), got);
  return memcmp(got, want, 20) == 0;
}

/* Whether the host field of an entry names host `name`: any positive
 * pattern matches and no negated one does. */
static int entry_matches(const kh_entry *e, const char *name)
{
  if (strncmp(e->hosts, "|1|", 3) == 0)
    return hashed_match(e->hosts, name);
  int hit = 0;
  const char *p = e->hosts;
  while (*p != '\0') {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int neg = (*p == '!');
    if (wild_match(name, p + neg, len - (size_t)neg)) {
      if (neg)
        return 0;
      hit = 1;
    }
    p += len;
    if (*p == ',')
      p++;
  }
  return hit;
}

/* The name entries are looked up by, as OpenSSH does it: "[addr]:port" off
 * port 22 when any entry names it; otherwise the bare address, so that a
 * plain, hashed or wildcard entry for the host covers its other ports too.
 * An entry for "[addr]:port" is authoritative: a bare one cannot override it. */
static int lookup_name(const rb_ssh_knownhosts *kh, const char *addr, int port,
                       char *name, size_t len)
{
  if (rb_ssh_knownhosts_name(addr, port, name, len) < 0)
    return -1;
  if (port == 0 || port == 22)
    return 0;
  for (size_t i = 0; i < kh->n; i++)
    if (entry_matches(&kh->v[i], name))
      return 0;
  return rb_fmt(name, len, "%s", addr);
}

/* Whether an @revoked entry lists blob for the host under either name:
 * revocation is never escaped by the port. */
static int is_revoked(const rb_ssh_knownhosts *kh, const char *addr, int port,
                      const unsigned char *blob, size_t bloblen)
{
  char bracketed[300];
  if (rb_ssh_knownhosts_name(addr, port, bracketed, sizeof bracketed) < 0)
    return 1;
  for (size_t i = 0; i < kh->n; i++) {
    const kh_entry *e = &kh->v[i];
    if (e->revoked && e->bloblen == bloblen && memcmp(e->blob, blob, bloblen) == 0 &&
        (entry_matches(e, bracketed) || entry_matches(e, addr)))
      return 1;
  }
  return 0;
}

static void append_type(char *buf, size_t len, const char *type)
{
  size_t tl = strlen(type);
  for (const char *p = buf; (p = strstr(p, type)) != NULL; p += tl)
    if ((p == buf || p[-1] == ',') && (p[tl] == ',' || p[tl] == '\0'))
      return;
  size_t used = strlen(buf);
  snprintf(buf + used, len - used, "%s%s", used ? "," : "", type);
}

int rb_ssh_knownhosts_methods(const rb_ssh_knownhosts *kh, const char *addr, int port,
                              char *buf, size_t len)
{
  char name[300];
  int count = 0;
  buf[0] = '\0';
  if (kh == NULL || lookup_name(kh, addr, port, name, sizeof name) < 0)
    return 0;
  /* ed25519 first, as OpenSSH orders them */
  static const char *const order[] = {"ssh-ed25519",
                                      "ecdsa-sha2-nistp256",
                                      "ecdsa-sha2-nistp384",
                                      "ecdsa-sha2-nistp521",
                                      "ssh-rsa",
                                      "ssh-dss",
                                      NULL};
  for (int o = 0; order[o] != NULL; o++) {
    for (size_t i = 0; i < kh->n; i++) {
      const kh_entry *e = &kh->v[i];
      if (e->revoked || e->ca || strcmp(e->type, order[o]) != 0 ||
          !entry_matches(e, name))
        continue;
      if (strcmp(e->type, "ssh-rsa") == 0)
        append_type(buf, len, "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
      else
        append_type(buf, len, e->type);
      count++;
      break;
    }
  }
  return count;
}

rb_ssh_kh_status rb_ssh_knownhosts_check(const rb_ssh_knownhosts *kh, const char *addr,
                                         int port, const unsigned char *blob,
                                         size_t bloblen, char *known, size_t knownlen)
{
  char name[300];
  int listed = 0, match = 0, revoked = 0, ca = 0;
  if (known != NULL && knownlen > 0)
    known[0] = '\0';
  if (kh == NULL || lookup_name(kh, addr, port, name, sizeof name) < 0)
    return RB_KH_UNKNOWN;
  revoked = is_revoked(kh, addr, port, blob, bloblen);
  for (size_t i = 0; i < kh->n; i++) {
    const kh_entry *e = &kh->v[i];
    if (!entry_matches(e, name))
      continue;
    int same = e->bloblen == bloblen && memcmp(e->blob, blob, bloblen) == 0;
    if (e->ca) {
      ca = 1;
      continue;
    }
    if (e->revoked) {
      revoked |= same;
      continue;
    }
    listed = 1;
    match |= same;
    if (known != NULL && knownlen > 0)
      append_type(known, knownlen, e->type);
  }
  if (revoked)
    return RB_KH_REVOKED;
  if (match)
    return RB_KH_OK;
  if (ca)
    return RB_KH_CERT;
  return listed ? RB_KH_CHANGED : RB_KH_UNKNOWN;
}

char *rb_ssh_knownhosts_line(const char *addr, int port, const unsigned char *blob,
                             size_t bloblen)
{
  char name[300], type[80];
  if (rb_ssh_knownhosts_name(addr, port, name, sizeof name) < 0 ||
      rb_ssh_blob_type(blob, bloblen, type, sizeof type) < 0)
    return NULL;
  size_t enclen = bloblen / 3 * 4 + 8;
  size_t total = strlen(name) + strlen(type) + enclen + 4;
  char *line = malloc(total);
  if (line == NULL)
    return NULL;
  int off = snprintf(line, total, "%s %s ", name, type);
  if (rb_ssh_base64_encode(blob, bloblen, line + off, total - (size_t)off, 0) < 0) {
    free(line);
    return NULL;
  }
  return line;
}

int rb_ssh_knownhosts_add(rb_ssh_knownhosts *kh, const char *addr, int port,
                          const unsigned char *blob, size_t bloblen, char *err,
                          size_t errlen)
{
  char *line = rb_ssh_knownhosts_line(addr, port, blob, bloblen);
  char name[300], type[80];
  if (line == NULL || rb_ssh_knownhosts_name(addr, port, name, sizeof name) < 0 ||
      rb_ssh_blob_type(blob, bloblen, type, sizeof type) < 0) {
    free(line);
    return rb_err(err, errlen, "known_hosts %s: cannot format the key of %s", kh->path,
                  addr);
  }
  int fd = open(kh->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  int rc = -1;
  if (fd < 0) {
    rb_err(err, errlen, "known_hosts %s: %s", kh->path, strerror(errno));
    goto out;
  }
  /* a last line without its newline must not swallow ours */
  off_t end = lseek(fd, 0, SEEK_END);
  char last = '\n';
  if (end > 0 && pread(fd, &last, 1, end - 1) == 1 && last != '\n' &&
      write(fd, "\n", 1) != 1) {
    rb_err(err, errlen, "known_hosts %s: write failed: %s", kh->path, strerror(errno));
    goto out;
  }
  /* one write so concurrent appenders do not interleave within the line */
  size_t ll = strlen(line);
  line[ll] = '\n';
  ssize_t w = write(fd, line, ll + 1);
  line[ll] = '\0';
  if (w != (ssize_t)(ll + 1) || fsync(fd) < 0) {
    rb_err(err, errlen, "known_hosts %s: write failed: %s", kh->path, strerror(errno));
    goto out;
  }
  if (add_entry(kh, name, type, blob, bloblen, 0, 0) < 0) {
    rb_err(err, errlen, "out of memory");
    goto out;
  }
  rc = 0;
out:
  if (fd >= 0)
    close(fd);
  free(line);
  return rc;
}
