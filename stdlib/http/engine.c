/* engine.c: one HTTP exchange over libcurl, with bounded retries, backoff
 * with jitter, Retry-After and the step deadline; plain C, no Lua. */
#include "stdlib/http/engine.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"

#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 10000
/* An attempt with less time than this left is not worth starting. */
#define MIN_ATTEMPT_MS 100

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_OK;

static void global_init(void)
{
  init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int rb_http_global_init(void)
{
  pthread_once(&init_once, global_init);
  return init_rc == CURLE_OK ? 0 : -1;
}

/* What one attempt collects; owned by attempt(), moved into the response. */
typedef struct {
  rb_http_kv *headers;
  size_t nheaders;
  rb_buf body; /* capped at the request's max_body */
  int too_big;
} sink;

static void sink_clear_headers(sink *s)
{
  for (size_t i = 0; i < s->nheaders; i++) {
    free(s->headers[i].name);
    free(s->headers[i].value);
  }
  free(s->headers);
  s->headers = NULL;
  s->nheaders = 0;
}

static void sink_free(sink *s)
{
  sink_clear_headers(s);
  rb_buf_free(&s->body);
  s->too_big = 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
  sink *s = arg;
  size_t len = size * n;
  int rc = rb_buf_add(&s->body, data, len);
  if (rc == RB_BUF_ETOOBIG)
    s->too_big = 1;
  return rc == RB_BUF_OK ? len : 0;
}

static char *trimmed_dup(const char *p, size_t n)
{
  while (n > 0 && isspace((unsigned char)*p)) {
    p++;
    n--;
  }
  while (n > 0 && isspace((unsigned char)p[n - 1]))
    n--;
  return strndup(p, n);
}

static int add_header(sink *s, const char *line, size_t len)
{
  const char *colon = memchr(line, ':', len);
  if (colon == NULL)
    return 0;
  char *name = trimmed_dup(line, (size_t)(colon - line));
  char *value = trimmed_dup(colon + 1, len - (size_t)(colon - line) - 1);
  if (name == NULL || value == NULL)
    goto fail;
  for (char *p = name; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  for (size_t i = 0; i < s->nheaders; i++) {
    if (strcmp(s->headers[i].name, name) != 0)
      continue;
    size_t a = strlen(s->headers[i].value), b = strlen(value);
    char *joined = realloc(s->headers[i].value, a + b + 3);
    if (joined == NULL)
      goto fail;
    memcpy(joined + a, ", ", 2);
    memcpy(joined + a + 2, value, b + 1);
    s->headers[i].value = joined;
    free(name);
    free(value);
    return 0;
  }
  rb_http_kv *h = realloc(s->headers, (s->nheaders + 1) * sizeof *h);
  if (h == NULL)
    goto fail;
  s->headers = h;
  s->headers[s->nheaders].name = name;
  s->headers[s->nheaders].value = value;
  s->nheaders++;
  return 0;
fail:
  free(name);
  free(value);
  return -1;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
  sink *s = arg;
  size_t len = size * n;
  /* A new status line starts a new header block (1xx, followed redirects):
   * only the last response's headers are kept. */
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    sink_clear_headers(s);
    return len;
  }
  return add_header(s, data, len) == 0 ? len : 0;
}

static double random_unit(void)
{
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint32_t)rb_now_mono_us();
  return (double)r / 4294967296.0;
}

static void sleep_ms(int64_t ms)
{
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* Configures curl for one attempt of req with at most budget_ms. */
static int setup(CURL *c, const rb_http_req *req, struct curl_slist *hdrs, sink *s,
                 int64_t budget_ms, char *errbuf)
{
  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                    \
  do {                                                                                   \
    if (rc == CURLE_OK)                                                                  \
      rc = curl_easy_setopt(c, opt, val);                                                \
  } while (0)
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_TIMEOUT_MS, (long)budget_ms);
  SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(budget_ms < 10000 ? budget_ms : 10000));
  SET(CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
  SET(CURLOPT_MAXREDIRS, 5L);
  SET(CURLOPT_USERAGENT, "runbook/" RB_VERSION);
  SET(CURLOPT_HTTPHEADER, hdrs);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, s);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, s);
  SET(CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
  SET(CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
  if (req->ca_bundle != NULL)
    SET(CURLOPT_CAINFO, req->ca_bundle);
  if (strcmp(req->method, "HEAD") == 0)
    SET(CURLOPT_NOBODY, 1L);
  else if (strcmp(req->method, "GET") != 0)
    SET(CURLOPT_CUSTOMREQUEST, req->method);
  if (req->body != NULL) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SET(CURLOPT_POSTFIELDS, req->body);
  } else if (strcmp(req->method, "POST") == 0) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    SET(CURLOPT_POSTFIELDS, "");
  }
#undef SET
  return rc == CURLE_OK ? 0 : -1;
}

/* Nothing reached the server: safe to retry whatever the method. */
static int not_sent(CURLcode rc)
{
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
         rc == CURLE_COULDNT_RESOLVE_PROXY;
}

static int transient(CURLcode rc)
{
  return not_sent(rc) || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR ||
         rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE;
}

static int64_t time_left(const rb_http_req *req)
{
  if (req->deadline_ms <= 0)
    return INT64_MAX;
  return req->deadline_ms - rb_now_mono_ms();
}

static void move_to_resp(sink *s, rb_http_resp *resp, long status)
{
  resp->status = status;
  resp->headers = s->headers;
  resp->nheaders = s->nheaders;
  resp->body_len = s->body.len;
  resp->body = rb_buf_take(&s->body);
  s->headers = NULL;
  s->nheaders = 0;
}

/* Why the last attempt failed, for the message and the retry decision. */
typedef struct {
  CURLcode rc;
  long status;
  char what[CURL_ERROR_SIZE + 64];
} outcome;

/* One attempt. Returns 0 with a response in resp (any status) or -1. */
static int attempt(CURL *c, const rb_http_req *req, struct curl_slist *hdrs,
                   int64_t budget, rb_http_resp *resp, outcome *o)
{
  char errbuf[CURL_ERROR_SIZE] = "";
  sink s = {0};
  rb_buf_init(&s.body, req->max_body);
  curl_easy_reset(c);
  if (setup(c, req, hdrs, &s, budget, errbuf) != 0) {
    o->rc = CURLE_FAILED_INIT;
    snprintf(o->what, sizeof o->what, "cannot set up the request (libcurl too old?)");
    return -1;
  }
  o->rc = curl_easy_perform(c);
  o->status = 0;
  if (o->rc != CURLE_OK) {
    if (s.too_big)
      snprintf(o->what, sizeof o->what,
               "response body larger than %zu KB (http.max_body_kb)",
               req->max_body / 1024);
    else if (o->rc == CURLE_OPERATION_TIMEDOUT)
      snprintf(o->what, sizeof o->what, "timed out after %lld ms", (long long)budget);
    else
      snprintf(o->what, sizeof o->what, "%s",
               errbuf[0] ? errbuf : curl_easy_strerror(o->rc));
    sink_free(&s);
    return -1;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o->status);
  rb_http_resp_clear(resp);
  move_to_resp(&s, resp, o->status);
  snprintf(o->what, sizeof o->what, "HTTP %ld", o->status);
  return 0;
}

/* How long to wait before the next attempt, or -1 when none should be made. */
static int64_t next_wait(const rb_http_req *req, const rb_http_resp *resp,
                         const outcome *o, int n, int received, char *why, size_t whylen)
{
  if (n > req->retries)
    return -1;
  int idempotent = rb_http_method_idempotent(req->method) || req->retry_unsafe;
  if (received) {
    if (!rb_http_status_retryable(o->status) || !idempotent)
      return -1;
  } else {
    if (!transient(o->rc) || o->rc == CURLE_WRITE_ERROR)
      return -1;
    if (!idempotent && !not_sent(o->rc))
      return -1;
  }
  int64_t wait = rb_http_backoff_ms(n, BACKOFF_BASE_MS, BACKOFF_CAP_MS, random_unit());
  const char *ra = received ? rb_http_resp_header(resp, "retry-after") : NULL;
  int64_t ra_ms;
  if (ra != NULL && rb_http_parse_retry_after(ra, rb_now_wall_ms(), &ra_ms) == 0) {
    wait = ra_ms;
    snprintf(why, whylen, "%s, Retry-After %s", o->what, ra);
  } else {
    snprintf(why, whylen, "%s", o->what);
  }
  if (wait + MIN_ATTEMPT_MS > time_left(req))
    return -2;
  return wait;
}

int rb_http_perform(const rb_http_req *req, rb_http_resp *resp, char *err, size_t errlen)
{
  int ret = -1;
  struct curl_slist *hdrs = NULL;
  CURL *c = NULL;
  int64_t start = rb_now_mono_ms();
  memset(resp, 0, sizeof *resp);
  if (rb_http_global_init() != 0) {
    rb_err(err, errlen, "libcurl initialisation failed");
    goto out;
  }
  for (size_t i = 0; i < req->nheaders; i++) {
    struct curl_slist *h = curl_slist_append(hdrs, req->headers[i]);
    if (h == NULL) {
      rb_err(err, errlen, "out of memory");
      goto out;
    }
    hdrs = h;
  }
  /* curl adds "Expect: 100-continue" to large bodies; one round trip less. */
  struct curl_slist *h = curl_slist_append(hdrs, "Expect:");
  if (h == NULL) {
    rb_err(err, errlen, "out of memory");
    goto out;
  }
  hdrs = h;
  c = curl_easy_init();
  if (c == NULL) {
    rb_err(err, errlen, "libcurl: cannot create a handle");
    goto out;
  }
  outcome o = {0};
  for (int n = 1;; n++) {
    int64_t budget = req->timeout_ms;
    int64_t left = time_left(req);
    if (left < budget)
      budget = left;
    if (budget < MIN_ATTEMPT_MS && n > 1)
      break;
    if (budget < 1)
      budget = 1;
    resp->attempts = n;
    int received = attempt(c, req, hdrs, budget, resp, &o) == 0;
    char why[sizeof o.what + 64];
    int64_t wait = next_wait(req, resp, &o, n, received, why, sizeof why);
    if (wait == -2) {
      rb_err(err, errlen,
             "%s; gave up after %d attempt%s (no time left before the step deadline)",
             o.what, n, n == 1 ? "" : "s");
      if (received)
        ret = 0; /* the caller still sees the last answer */
      goto out;
    }
    if (wait < 0) {
      if (n == 1)
        rb_err(err, errlen, "%s", o.what);
      else
        rb_err(err, errlen, "%s; gave up after %d attempts", o.what, n);
      ret = received ? 0 : -1;
      goto out;
    }
    if (req->on_retry != NULL)
      req->on_retry(req->arg, n, why, wait);
    sleep_ms(wait);
  }
  rb_err(err, errlen,
         "%s; gave up after %d attempts (no time left before the step deadline)", o.what,
         resp->attempts);
  ret = resp->status != 0 ? 0 : -1;
out:
  resp->duration_ms = rb_now_mono_ms() - start;
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  return ret;
}

void rb_http_resp_clear(rb_http_resp *resp)
{
  if (resp == NULL)
    return;
  for (size_t i = 0; i < resp->nheaders; i++) {
    free(resp->headers[i].name);
    free(resp->headers[i].value);
  }
  free(resp->headers);
  free(resp->body);
  int attempts = resp->attempts;
  memset(resp, 0, sizeof *resp);
  resp->attempts = attempts;
}

const char *rb_http_resp_header(const rb_http_resp *resp, const char *name)
{
  for (size_t i = 0; i < resp->nheaders; i++)
    if (strcmp(resp->headers[i].name, name) == 0)
      return resp->headers[i].value;
  return NULL;
}
