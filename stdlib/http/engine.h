/* engine.h: the HTTP client under the `http` module, plain C over libcurl:
 * one request with retries, backoff, Retry-After and a deadline; no Lua. */
#ifndef RB_HTTP_ENGINE_H
#define RB_HTTP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *name;
  char *value;
} rb_http_kv;

typedef struct {
  const char *method;         /* "GET", "POST", ... (upper case) */
  const char *url;            /* complete URL, query included */
  const char *const *headers; /* "Name: value" lines, nheaders of them */
  size_t nheaders;
  const char *body; /* NULL: no body */
  size_t body_len;
  int64_t timeout_ms;  /* per attempt */
  int64_t deadline_ms; /* monotonic ms bounding every attempt and wait; 0 = none */
  int retries;         /* extra attempts after the first */
  int retry_unsafe;    /* retry POST/PATCH too (the runbook asked for it) */
  int follow_redirects;
  const char *ca_bundle; /* NULL: the system's */
  int insecure;          /* skip TLS verification */
  size_t max_body;       /* bytes of response body kept before failing */
  /* Called before each wait between attempts (may be NULL): why and how long. */
  void (*on_retry)(void *arg, int attempt, const char *why, int64_t wait_ms);
  void *arg;
} rb_http_req;

typedef struct {
  long status; /* 0 when no response was received */
  rb_http_kv *headers;
  size_t nheaders; /* names lower-cased; repeated headers joined with ", " */
  char *body;      /* NUL-terminated, body_len bytes before the NUL */
  size_t body_len;
  int attempts;
  int64_t duration_ms; /* all attempts and waits */
} rb_http_resp;

/* Once per process, before the first request. Returns 0 or -1. */
int rb_http_global_init(void);

/* Performs req, retrying connection errors, 5xx and 429 with exponential
 * backoff and jitter (Retry-After honoured) while attempts and the deadline
 * allow; POST and PATCH are retried only when nothing was sent (the
 * connection failed) unless req->retry_unsafe. Returns 0 when a response was
 * received (any status; resp->status says which), or -1 when none was. err
 * is filled either way ("HTTP 503; gave up after 3 attempts", "Failed to connect
 * ...; gave up after 2 attempts (no time left before the step deadline)"); resp->attempts
 * and duration_ms are set either way. The caller frees resp with rb_http_resp_clear. */
int rb_http_perform(const rb_http_req *req, rb_http_resp *resp, char *err, size_t errlen);
/* Frees what resp holds and zeroes it. NULL-safe. */
void rb_http_resp_clear(rb_http_resp *resp);
/* The value of header name (lower case) in resp, or NULL. */
const char *rb_http_resp_header(const rb_http_resp *resp, const char *name);

/* 1 when the method is idempotent by RFC 9110 (GET HEAD OPTIONS TRACE PUT DELETE). */
int rb_http_method_idempotent(const char *method);
/* 1 when status is worth another attempt: 408, 429, 500-599 except 501 and 505. */
int rb_http_status_retryable(long status);
/* Parses a Retry-After value, delay-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime), relative to now_wall_ms. A date in the past gives 0.
 * Returns 0 with *out_ms, or -1 when the value is malformed. */
int rb_http_parse_retry_after(const char *v, int64_t now_wall_ms, int64_t *out_ms);
/* The wait before attempt n+1 after n failed attempts (n >= 1): base * 2^(n-1)
 * capped at cap_ms, of which the upper half is jitter: the result lies in
 * [d/2, d]. rnd is a uniform random value in [0, 1). */
int64_t rb_http_backoff_ms(int n, int64_t base_ms, int64_t cap_ms, double rnd);
/* Appends "name=value" to the query of url, percent-encoding both (RFC 3986
 * unreserved characters kept), before any #fragment. Returns a malloc'd URL
 * the caller frees, or NULL when out of memory. */
char *rb_http_url_add_query(const char *url, const char *name, const char *value);
/* Percent-encodes s for one URL path segment or query component. Caller frees. */
char *rb_http_url_escape(const char *s);
/* 1 when the Content-Type value names JSON (application/json, any +json). */
int rb_http_is_json_type(const char *content_type);
/* 1 when s may be sent as a header name (token characters) / value (no CR,
 * LF or NUL). */
int rb_http_header_name_ok(const char *s);
int rb_http_header_value_ok(const char *s);

#endif
