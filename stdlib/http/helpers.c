/* helpers.c: the pure parts of the HTTP client: which methods and statuses
 * may be retried, Retry-After, backoff, query strings and header checks. */
#include "stdlib/http/engine.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int rb_http_method_idempotent(const char *method)
{
  static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
  for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
    if (strcmp(method, safe[i]) == 0)
      return 1;
  return 0;
}

int rb_http_status_retryable(long status)
{
  if (status == 408 || status == 429)
    return 1;
  /* 501 and 505 say the server will never do it: another try cannot help. */
  return status >= 500 && status <= 599 && status != 501 && status != 505;
}

static int parse_http_date(const char *v, time_t *out)
{
  static const char *const fmts[] = {
      "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
      "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
      "%a %b %e %H:%M:%S %Y",      /* asctime */
  };
  for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, fmts[i], &tm);
    if (end == NULL)
      continue;
    while (isspace((unsigned char)*end))
      end++;
    if (*end != '\0')
      continue;
    *out = timegm(&tm);
    return 0;
  }
  return -1;
}

int rb_http_parse_retry_after(const char *v, int64_t now_wall_ms, int64_t *out_ms)
{
  if (v == NULL)
    return -1;
  while (isspace((unsigned char)*v))
    v++;
  if (*v == '\0')
    return -1;
  if (isdigit((unsigned char)*v)) {
    char *end = NULL;
    errno = 0;
    unsigned long long secs = strtoull(v, &end, 10);
    while (isspace((unsigned char)*end))
      end++;
    if (errno != 0 || *end != '\0')
      return -1;
    /* A day is already far past any step deadline; clamp to keep it exact. */
    if (secs > 86400)
      secs = 86400;
    *out_ms = (int64_t)secs * 1000;
    return 0;
  }
  time_t when;
  if (parse_http_date(v, &when) != 0)
    return -1;
  int64_t ms = (int64_t)when * 1000 - now_wall_ms;
  *out_ms = ms > 0 ? ms : 0;
  return 0;
}

int64_t rb_http_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, double rnd)
{
  if (n < 1)
    n = 1;
  if (rnd < 0 || rnd >= 1)
    rnd = 0;
  int64_t d = base_ms;
  for (int i = 1; i < n && d < cap_ms; i++)
    d *= 2;
  if (d > cap_ms)
    d = cap_ms;
  int64_t half = d / 2;
  return half + (int64_t)((double)(d - half) * rnd);
}

static int unreserved(unsigned char c)
{
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *rb_http_url_escape(const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = malloc(n * 3 + 1);
  if (out == NULL)
    return NULL;
  char *p = out;
  for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
    if (unreserved(*q)) {
      *p++ = (char)*q;
    } else {
      *p++ = '%';
      *p++ = hex[*q >> 4];
      *p++ = hex[*q & 15];
    }
  }
  *p = '\0';
  return out;
}

char *rb_http_url_add_query(const char *url, const char *name, const char *value)
{
  char *en = rb_http_url_escape(name);
  char *ev = rb_http_url_escape(value);
  char *out = NULL;
  if (en == NULL || ev == NULL)
    goto out;
  const char *frag = strchr(url, '#');
  size_t base_len = frag ? (size_t)(frag - url) : strlen(url);
  size_t frag_len = frag ? strlen(frag) : 0;
  const char *q = memchr(url, '?', base_len);
  char sep = '?';
  if (q != NULL)
    sep = (base_len > 0 && (url[base_len - 1] == '?' || url[base_len - 1] == '&')) ? 0
                                                                                   : '&';
  size_t len = base_len + 1 + strlen(en) + 1 + strlen(ev) + frag_len + 1;
  out = malloc(len);
  if (out == NULL)
    goto out;
  memcpy(out, url, base_len);
  char *p = out + base_len;
  if (sep)
    *p++ = sep;
  p += snprintf(p, len - (size_t)(p - out), "%s=%s", en, ev);
  if (frag)
    memcpy(p, frag, frag_len + 1);
  else
    *p = '\0';
out:
  free(en);
  free(ev);
  return out;
}

int rb_http_is_json_type(const char *ct)
{
  if (ct == NULL)
    return 0;
  while (isspace((unsigned char)*ct))
    ct++;
  size_t n = strcspn(ct, "; \t");
  if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
    return 1;
  return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

int rb_http_header_name_ok(const char *s)
{
  if (s == NULL || *s == '\0')
    return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (!(isalnum(*p) || strchr("!#$%&'*+-.^_`|~", *p) != NULL))
      return 0;
  return 1;
}

int rb_http_header_value_ok(const char *s)
{
  if (s == NULL)
    return 0;
  for (const char *p = s; *p; p++)
    if (*p == '\r' || *p == '\n')
      return 0;
  return 1;
}
