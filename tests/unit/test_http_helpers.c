/* test_http_helpers.c: the pure parts of the HTTP engine: Retry-After,
 * backoff bounds, retryable methods and statuses, URL and header checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stdlib/http/engine.h"

/* 2015-10-21T07:28:00Z */
#define NOW_MS 1445412480000LL

static void test_retry_after_seconds(void **state)
{
  (void)state;
  int64_t ms = -1;
  assert_int_equal(rb_http_parse_retry_after("120", NOW_MS, &ms), 0);
  assert_int_equal(ms, 120000);
  assert_int_equal(rb_http_parse_retry_after(" 0 ", NOW_MS, &ms), 0);
  assert_int_equal(ms, 0);
}

static void test_retry_after_http_date_forms(void **state)
{
  (void)state;
  int64_t ms = -1;
  assert_int_equal(
      rb_http_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", NOW_MS, &ms), 0);
  assert_int_equal(ms, 30000);
  assert_int_equal(
      rb_http_parse_retry_after("Wednesday, 21-Oct-15 07:28:05 GMT", NOW_MS, &ms), 0);
  assert_int_equal(ms, 5000);
  assert_int_equal(rb_http_parse_retry_after("Wed Oct 21 07:29:00 2015", NOW_MS, &ms), 0);
  assert_int_equal(ms, 60000);
}

static void test_retry_after_in_the_past_is_zero(void **state)
{
  (void)state;
  int64_t ms = -1;
  assert_int_equal(
      rb_http_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", NOW_MS, &ms), 0);
  assert_int_equal(ms, 0);
}

static void test_retry_after_garbage_is_refused(void **state)
{
  (void)state;
  int64_t ms = 7;
  assert_int_equal(rb_http_parse_retry_after("", NOW_MS, &ms), -1);
  assert_int_equal(rb_http_parse_retry_after("soon", NOW_MS, &ms), -1);
  assert_int_equal(rb_http_parse_retry_after("12abc", NOW_MS, &ms), -1);
  assert_int_equal(rb_http_parse_retry_after("-5", NOW_MS, &ms), -1);
  assert_int_equal(
      rb_http_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT x", NOW_MS, &ms), -1);
  assert_int_equal(rb_http_parse_retry_after(NULL, NOW_MS, &ms), -1);
  assert_int_equal(ms, 7);
}

static void test_retry_after_huge_is_clamped_to_a_day(void **state)
{
  (void)state;
  int64_t ms = 0;
  assert_int_equal(rb_http_parse_retry_after("99999999999", NOW_MS, &ms), 0);
  assert_int_equal(ms, 86400000);
}

static void test_backoff_doubles_within_jitter_bounds(void **state)
{
  (void)state;
  for (int n = 1; n <= 8; n++) {
    int64_t d = 200;
    for (int i = 1; i < n; i++)
      d *= 2;
    if (d > 10000)
      d = 10000;
    assert_int_equal(rb_http_backoff_ms(n, 200, 10000, 0.0), d / 2);
    int64_t hi = rb_http_backoff_ms(n, 200, 10000, 0.999999);
    assert_true(hi <= d && hi >= d - 1);
    int64_t mid = rb_http_backoff_ms(n, 200, 10000, 0.5);
    assert_true(mid >= d / 2 && mid <= d);
  }
}

static void test_backoff_never_exceeds_cap(void **state)
{
  (void)state;
  assert_true(rb_http_backoff_ms(60, 200, 10000, 0.99) <= 10000);
  assert_true(rb_http_backoff_ms(1000, 200, 10000, 0.99) <= 10000);
  /* Bad inputs are treated as the first attempt without jitter. */
  assert_int_equal(rb_http_backoff_ms(0, 200, 10000, 5.0), 100);
}

static void test_post_and_patch_are_not_idempotent(void **state)
{
  (void)state;
  assert_true(rb_http_method_idempotent("GET"));
  assert_true(rb_http_method_idempotent("PUT"));
  assert_true(rb_http_method_idempotent("DELETE"));
  assert_true(rb_http_method_idempotent("HEAD"));
  assert_false(rb_http_method_idempotent("POST"));
  assert_false(rb_http_method_idempotent("PATCH"));
}

static void test_retryable_statuses(void **state)
{
  (void)state;
  assert_true(rb_http_status_retryable(500));
  assert_true(rb_http_status_retryable(503));
  assert_true(rb_http_status_retryable(429));
  assert_true(rb_http_status_retryable(408));
  assert_false(rb_http_status_retryable(501));
  assert_false(rb_http_status_retryable(505));
  assert_false(rb_http_status_retryable(404));
  assert_false(rb_http_status_retryable(200));
  assert_false(rb_http_status_retryable(302));
}

static void test_query_is_appended_and_escaped(void **state)
{
  (void)state;
  char *u =
      rb_http_url_add_query("http://h/api/v1/query", "query", "rate(x{a=\"b\"}[5m]) > 0");
  assert_string_equal(
      u, "http://h/api/v1/query?query=rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%20%3E%200");
  char *v = rb_http_url_add_query(u, "time", "1.5");
  assert_string_equal(v + strlen(u), "&time=1.5");
  free(u);
  free(v);
}

static void test_query_goes_before_fragment(void **state)
{
  (void)state;
  char *u = rb_http_url_add_query("http://h/p?a=1#frag", "b", "2 3");
  assert_string_equal(u, "http://h/p?a=1&b=2%203#frag");
  free(u);
  u = rb_http_url_add_query("http://h/p?", "b", "x");
  assert_string_equal(u, "http://h/p?b=x");
  free(u);
}

static void test_escape_keeps_unreserved_only(void **state)
{
  (void)state;
  char *e = rb_http_url_escape("a-Z_0.~/é ?&");
  assert_string_equal(e, "a-Z_0.~%2F%C3%A9%20%3F%26");
  free(e);
}

static void test_json_content_types(void **state)
{
  (void)state;
  assert_true(rb_http_is_json_type("application/json"));
  assert_true(rb_http_is_json_type("Application/JSON; charset=utf-8"));
  assert_true(rb_http_is_json_type("application/problem+json"));
  assert_false(rb_http_is_json_type("text/plain"));
  assert_false(rb_http_is_json_type("application/jsonx"));
  assert_false(rb_http_is_json_type(NULL));
}

static void test_header_injection_is_refused(void **state)
{
  (void)state;
  assert_true(rb_http_header_name_ok("X-Api-Key"));
  assert_false(rb_http_header_name_ok("X Api"));
  assert_false(rb_http_header_name_ok("X:Api"));
  assert_false(rb_http_header_name_ok(""));
  assert_true(rb_http_header_value_ok("Bearer abc"));
  assert_false(rb_http_header_value_ok("abc\r\nX-Evil: 1"));
  assert_false(rb_http_header_value_ok("abc\n"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retry_after_seconds),
      cmocka_unit_test(test_retry_after_http_date_forms),
      cmocka_unit_test(test_retry_after_in_the_past_is_zero),
      cmocka_unit_test(test_retry_after_garbage_is_refused),
      cmocka_unit_test(test_retry_after_huge_is_clamped_to_a_day),
      cmocka_unit_test(test_backoff_doubles_within_jitter_bounds),
      cmocka_unit_test(test_backoff_never_exceeds_cap),
      cmocka_unit_test(test_post_and_patch_are_not_idempotent),
      cmocka_unit_test(test_retryable_statuses),
      cmocka_unit_test(test_query_is_appended_and_escaped),
      cmocka_unit_test(test_query_goes_before_fragment),
      cmocka_unit_test(test_escape_keeps_unreserved_only),
      cmocka_unit_test(test_json_content_types),
      cmocka_unit_test(test_header_injection_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
