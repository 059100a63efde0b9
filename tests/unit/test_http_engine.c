/* test_http_engine.c: the HTTP engine against a scripted server thread on
 * loopback: retries, Retry-After, non-idempotent methods, deadlines, caps. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "runner/base/util.h"
#include "stdlib/http/engine.h"

/* A server that answers connection i with replies[i] and records requests. */
typedef struct {
  int fd;
  int port;
  const char *const *replies;
  int nreplies;
  int served;
  char methods[8][16];
  pthread_t th;
} server;

static void *serve(void *arg)
{
  server *s = arg;
  for (int i = 0; i < s->nreplies; i++) {
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      break;
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(c, buf + len, sizeof buf - 1 - len)) > 0) {
      len += (size_t)n;
      buf[len] = '\0';
      char *end = strstr(buf, "\r\n\r\n");
      if (end == NULL)
        continue;
      const char *cl = strstr(buf, "Content-Length: ");
      size_t body = cl ? (size_t)atol(cl + 16) : 0;
      if (len >= (size_t)(end + 4 - buf) + body)
        break;
    }
    sscanf(buf, "%15s", s->methods[i < 8 ? i : 7]);
    const char *r = s->replies[i];
    if (strcmp(r, "HANG") == 0) {
      sleep(2);
    } else if (write(c, r, strlen(r)) < 0) {
      perror("write");
    }
    close(c);
    s->served++;
  }
  return NULL;
}

static void server_start(server *s, const char *const *replies, int n)
{
  memset(s, 0, sizeof *s);
  s->replies = replies;
  s->nreplies = n;
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->fd, 8), 0);
  socklen_t al = sizeof a;
  getsockname(s->fd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  pthread_create(&s->th, NULL, serve, s);
}

static void server_stop(server *s)
{
  shutdown(s->fd, SHUT_RDWR);
  pthread_join(s->th, NULL);
  close(s->fd);
}

static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  return ntohs(a.sin_port);
}

#define R500 "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"
#define R200                                                                             \
  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: "                 \
  "2\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
#define R429                                                                             \
  "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"

static rb_http_req base_req(const char *method, char *url, size_t len, int port)
{
  snprintf(url, len, "http://127.0.0.1:%d/x", port);
  rb_http_req q = {.method = method,
                   .url = url,
                   .timeout_ms = 3000,
                   .retries = 2,
                   .max_body = 1 << 20};
  return q;
}

static void test_500_then_success_is_retried(void **state)
{
  (void)state;
  const char *const replies[] = {R500, R200};
  server s;
  server_start(&s, replies, 2);
  char url[64], err[256];
  rb_http_req q = base_req("GET", url, sizeof url, s.port);
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.attempts, 2);
  assert_string_equal(r.body, "{\"ok\":true}");
  assert_string_equal(rb_http_resp_header(&r, "x-a"), "1, 2");
  assert_string_equal(rb_http_resp_header(&r, "content-type"), "application/json");
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_post_is_not_retried_on_500(void **state)
{
  (void)state;
  const char *const replies[] = {R500};
  server s;
  server_start(&s, replies, 1);
  char url[64], err[256];
  rb_http_req q = base_req("POST", url, sizeof url, s.port);
  q.body = "{}";
  q.body_len = 2;
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), 0);
  assert_int_equal(r.status, 500);
  assert_int_equal(r.attempts, 1);
  assert_string_equal(err, "HTTP 500");
  rb_http_resp_clear(&r);
  server_stop(&s);
  assert_string_equal(s.methods[0], "POST");
}

static void test_post_is_retried_when_asked(void **state)
{
  (void)state;
  const char *const replies[] = {R500, R200};
  server s;
  server_start(&s, replies, 2);
  char url[64], err[256];
  rb_http_req q = base_req("POST", url, sizeof url, s.port);
  q.retry_unsafe = 1;
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.attempts, 2);
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_429_waits_for_retry_after(void **state)
{
  (void)state;
  const char *const replies[] = {R429, R200};
  server s;
  server_start(&s, replies, 2);
  char url[64], err[256];
  rb_http_req q = base_req("GET", url, sizeof url, s.port);
  rb_http_resp r;
  int64_t t0 = rb_now_mono_ms();
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), 0);
  int64_t took = rb_now_mono_ms() - t0;
  assert_int_equal(r.status, 200);
  assert_true(took >= 950);
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_retry_after_beyond_deadline_gives_up_at_once(void **state)
{
  (void)state;
  const char *const replies[] = {R429};
  server s;
  server_start(&s, replies, 1);
  char url[64], err[256];
  rb_http_req q = base_req("GET", url, sizeof url, s.port);
  q.deadline_ms = rb_now_mono_ms() + 500;
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), 0);
  assert_int_equal(r.status, 429);
  assert_int_equal(r.attempts, 1);
  assert_non_null(strstr(err, "step deadline"));
  assert_true(r.duration_ms < 400);
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_connection_refused_is_bounded(void **state)
{
  (void)state;
  char url[64], err[256];
  rb_http_req q = base_req("POST", url, sizeof url, free_port());
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), -1);
  /* Nothing was sent, so even a POST is tried again. */
  assert_int_equal(r.attempts, 3);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(err, "gave up after 3 attempts"));
  rb_http_resp_clear(&r);
}

static void test_timeout_respects_deadline(void **state)
{
  (void)state;
  const char *const replies[] = {"HANG", "HANG"};
  server s;
  server_start(&s, replies, 2);
  char url[64], err[256];
  rb_http_req q = base_req("GET", url, sizeof url, s.port);
  q.timeout_ms = 300;
  q.deadline_ms = rb_now_mono_ms() + 700;
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), -1);
  assert_true(r.duration_ms < 1200);
  assert_non_null(strstr(err, "timed out"));
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_body_over_cap_fails(void **state)
{
  (void)state;
  const char *const replies[] = {R200};
  server s;
  server_start(&s, replies, 1);
  char url[64], err[256];
  rb_http_req q = base_req("GET", url, sizeof url, s.port);
  q.max_body = 4;
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), -1);
  assert_int_equal(r.attempts, 1);
  assert_non_null(strstr(err, "larger than"));
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_redirect_is_not_followed(void **state)
{
  (void)state;
  const char *const replies[] = {
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: "
      "0\r\n\r\n"};
  server s;
  server_start(&s, replies, 1);
  char url[64], err[256];
  rb_http_req q = base_req("GET", url, sizeof url, s.port);
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), 0);
  assert_int_equal(r.status, 302);
  assert_string_equal(rb_http_resp_header(&r, "location"),
                      "http://127.0.0.1:1/elsewhere");
  rb_http_resp_clear(&r);
  server_stop(&s);
}

static void test_other_schemes_are_refused(void **state)
{
  (void)state;
  char err[256];
  rb_http_req q = {
      .method = "GET", .url = "file:///etc/passwd", .timeout_ms = 1000, .max_body = 1024};
  rb_http_resp r;
  assert_int_equal(rb_http_perform(&q, &r, err, sizeof err), -1);
  rb_http_resp_clear(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_500_then_success_is_retried),
      cmocka_unit_test(test_post_is_not_retried_on_500),
      cmocka_unit_test(test_post_is_retried_when_asked),
      cmocka_unit_test(test_429_waits_for_retry_after),
      cmocka_unit_test(test_retry_after_beyond_deadline_gives_up_at_once),
      cmocka_unit_test(test_connection_refused_is_bounded),
      cmocka_unit_test(test_timeout_respects_deadline),
      cmocka_unit_test(test_body_over_cap_fails),
      cmocka_unit_test(test_redirect_is_not_followed),
      cmocka_unit_test(test_other_schemes_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
