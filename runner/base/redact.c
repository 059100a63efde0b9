/* redact.c: the process-wide registry of secret values and the scrubbers that
 * keep them, URL credentials and credential-named JSON members out of output. */
#include "runner/base/redact.h"

#include "runner/base/buf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RB_REDACT_MIN 4

/* The registry is file-scope on purpose: secrets are resolved in one place
 * (config, stdlib) and must be scrubbed from every output path (timeline,
 * terminal, logs), which would otherwise each need a handle threaded through.
 * It grows dynamically since the number of secrets depends on the config, is
 * kept sorted longest first so a secret that contains another is replaced
 * whole, and is guarded by a mutex because ssh/http workers and the alert
 * listener scrub from their own threads. */
static struct {
  pthread_mutex_t mu;
  char **v;
  size_t *lens;
  size_t n, cap;
} reg = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0};

static const char *const url_params[] = {
    "token",    "access_token", "key",       "api_key", "apikey",
    "password", "secret",       "signature", "sig",     NULL,
};

static const char *const cred_keys[] = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "password",
    "passwd",
    "token",
    "access_token",
    "secret",
    "api_key",
    "apikey",
    "private-token",
    "x-api-key",
    "x-auth-token",
    NULL,
};

/* The output being built; on the first failed append oom is set and the
 * rest is skipped, so callers check once at the end. */
typedef struct {
  rb_buf buf;
  int oom;
} sbuf;

static void sb_init(sbuf *b)
{
  rb_buf_init(&b->buf, SIZE_MAX);
  b->oom = 0;
}

static void sb_add(sbuf *b, const char *s, size_t n)
{
  if (!b->oom && rb_buf_add(&b->buf, s, n) != RB_BUF_OK)
    b->oom = 1;
}

/* Returns the finished string (caller frees), or NULL on allocation failure. */
static char *sb_done(sbuf *b)
{
  if (b->oom) {
    rb_buf_free(&b->buf);
    return NULL;
  }
  return rb_buf_take(&b->buf);
}

static int in_list(const char *const *list, const char *s, size_t n)
{
  for (size_t i = 0; list[i] != NULL; i++)
    if (strlen(list[i]) == n && strncasecmp(list[i], s, n) == 0)
      return 1;
  return 0;
}

int rb_redact_add(const char *secret)
{
  if (secret == NULL)
    return -1;
  size_t len = strlen(secret);
  if (len < RB_REDACT_MIN)
    return -1;
  int rc = -1;
  pthread_mutex_lock(&reg.mu);
  for (size_t i = 0; i < reg.n; i++)
    if (reg.lens[i] == len && memcmp(reg.v[i], secret, len) == 0) {
      rc = 0;
      goto out;
    }
  if (reg.n == reg.cap) {
    size_t cap = reg.cap ? reg.cap * 2 : 8;
    char **v = realloc(reg.v, cap * sizeof *v);
    if (v == NULL)
      goto out;
    reg.v = v;
    size_t *lens = realloc(reg.lens, cap * sizeof *lens);
    if (lens == NULL)
      goto out;
    reg.lens = lens;
    reg.cap = cap;
  }
  char *copy = strdup(secret);
  if (copy == NULL)
    goto out;
  size_t at = 0;
  while (at < reg.n && reg.lens[at] >= len)
    at++;
  memmove(reg.v + at + 1, reg.v + at, (reg.n - at) * sizeof *reg.v);
  memmove(reg.lens + at + 1, reg.lens + at, (reg.n - at) * sizeof *reg.lens);
  reg.v[at] = copy;
  reg.lens[at] = len;
  reg.n++;
  rc = 0;
out:
  pthread_mutex_unlock(&reg.mu);
  return rc;
}

void rb_redact_clear(void)
{
  pthread_mutex_lock(&reg.mu);
  for (size_t i = 0; i < reg.n; i++) {
    explicit_bzero(reg.v[i], reg.lens[i]);
    free(reg.v[i]);
  }
  free(reg.v);
  free(reg.lens);
  reg.v = NULL;
  reg.lens = NULL;
  reg.n = reg.cap = 0;
  pthread_mutex_unlock(&reg.mu);
}

/* Replaces registered secrets; at each position the longest match wins. */
static char *replace_secrets(const char *s)
{
  sbuf b;
  sb_init(&b);
  pthread_mutex_lock(&reg.mu);
  const char *p = s;
  while (*p) {
    size_t hit = 0;
    for (size_t i = 0; i < reg.n && hit == 0; i++)
      if (reg.v[i][0] == *p && strncmp(p, reg.v[i], reg.lens[i]) == 0)
        hit = reg.lens[i];
    if (hit) {
      sb_add(&b, RB_REDACTED, strlen(RB_REDACTED));
      p += hit;
    } else {
      sb_add(&b, p, 1);
      p++;
    }
  }
  pthread_mutex_unlock(&reg.mu);
  return sb_done(&b);
}

/* Characters that end a URL embedded in free text or a command line. */
static int url_end(char c)
{
  return c == '\0' || isspace((unsigned char)c) || c == '"' || c == '\'' || c == '<' ||
         c == '>' || c == '`' || (unsigned char)c < 0x20;
}

static int scheme_char(char c)
{
  return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

/* Appends the URL starting at u (just after "://") with userinfo and
 * sensitive query values masked; returns the first byte after the URL. */
static const char *mask_url(sbuf *b, const char *u)
{
  size_t auth = 0;
  while (!url_end(u[auth]) && u[auth] != '/' && u[auth] != '?' && u[auth] != '#')
    auth++;
  const char *at = NULL;
  for (size_t i = 0; i < auth; i++)
    if (u[i] == '@')
      at = u + i;
  if (at != NULL) {
    sb_add(b, RB_REDACTED, strlen(RB_REDACTED));
    sb_add(b, at, (size_t)(u + auth - at));
  } else {
    sb_add(b, u, auth);
  }
  const char *p = u + auth;
  while (!url_end(*p) && *p != '?' && *p != '#')
    p++;
  sb_add(b, u + auth, (size_t)(p - (u + auth)));
  if (*p != '?')
    return p;
  sb_add(b, p, 1);
  p++;
  while (!url_end(*p) && *p != '#') {
    const char *name = p;
    while (!url_end(*p) && *p != '=' && *p != '&' && *p != ';' && *p != '#')
      p++;
    size_t nlen = (size_t)(p - name);
    sb_add(b, name, nlen);
    if (*p == '=') {
      sb_add(b, p, 1);
      const char *val = ++p;
      while (!url_end(*p) && *p != '&' && *p != ';' && *p != '#')
        p++;
      if (in_list(url_params, name, nlen) && p > val)
        sb_add(b, RB_REDACTED, strlen(RB_REDACTED));
      else
        sb_add(b, val, (size_t)(p - val));
    }
    if (*p == '&' || *p == ';') {
      sb_add(b, p, 1);
      p++;
    }
  }
  return p;
}

static char *mask_urls(const char *s)
{
  sbuf b;
  sb_init(&b);
  const char *p = s;
  while (*p) {
    const char *sep = strstr(p, "://");
    if (sep == NULL)
      break;
    const char *start = sep;
    while (start > p && scheme_char(start[-1]))
      start--;
    if (start == sep || !isalpha((unsigned char)*start)) {
      sb_add(&b, p, (size_t)(sep + 3 - p));
      p = sep + 3;
      continue;
    }
    sb_add(&b, p, (size_t)(sep + 3 - p));
    p = mask_url(&b, sep + 3);
  }
  sb_add(&b, p, strlen(p));
  return sb_done(&b);
}

/* 1 when s may hold something to scrub: a registered secret or a URL.
 * Most strings hold neither, and skipping them keeps every timeline append
 * from copying each string twice. */
static int may_need_scrub(const char *s)
{
  if (strstr(s, "://") != NULL)
    return 1;
  int hit = 0;
  pthread_mutex_lock(&reg.mu);
  for (size_t i = 0; i < reg.n && !hit; i++)
    hit = strstr(s, reg.v[i]) != NULL;
  pthread_mutex_unlock(&reg.mu);
  return hit;
}

char *rb_redact_str(const char *s)
{
  if (s == NULL)
    return NULL;
  if (!may_need_scrub(s))
    return strdup(s);
  char *a = replace_secrets(s);
  if (a == NULL)
    return NULL;
  char *out = mask_urls(a);
  free(a);
  return out;
}

/* Scrubs one string value in place; if the scrubbed bytes are no longer valid
 * UTF-8 (a secret cut a multi-byte character), the whole value is masked. */
static void scrub_string(json_t *v)
{
  const char *s = json_string_value(v);
  if (!may_need_scrub(s))
    return;
  char *r = rb_redact_str(s);
  if (r == NULL) {
    json_string_set(v, RB_REDACTED);
    return;
  }
  if (strcmp(r, s) != 0 && json_string_set(v, r) != 0)
    json_string_set(v, RB_REDACTED);
  free(r);
}

void rb_redact_json(json_t *v)
{
  if (v == NULL)
    return;
  if (json_is_string(v)) {
    scrub_string(v);
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      rb_redact_json(json_array_get(v, i));
  } else if (json_is_object(v)) {
    for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
      const char *k = json_object_iter_key(it);
      if (in_list(cred_keys, k, strlen(k)))
        json_object_iter_set_new(v, it, json_string(RB_REDACTED));
      else
        rb_redact_json(json_object_iter_value(it));
    }
  }
}
