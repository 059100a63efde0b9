/* test_redact.c: unit tests of the secret registry and the string, URL and
 * JSON scrubbers (runner/base/redact.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runner/base/redact.h"

static int teardown(void **state)
{
  (void)state;
  rb_redact_clear();
  return 0;
}

static void assert_redacts_to(const char *in, const char *want)
{
  char *got = rb_redact_str(in);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void test_registered_secret_is_replaced_everywhere_in_a_string(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("hunter22"), 0);
  assert_redacts_to("pw=hunter22 again hunter22.", "pw=[REDACTED] again [REDACTED].");
}

static void test_longest_secret_wins_when_secrets_overlap(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("abcd"), 0);
  assert_int_equal(rb_redact_add("abcdefgh"), 0);
  assert_redacts_to("x abcdefgh y abcd", "x [REDACTED] y [REDACTED]");
}

static void test_short_secret_is_refused(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("abc"), -1);
  assert_int_equal(rb_redact_add(""), -1);
  assert_int_equal(rb_redact_add(NULL), -1);
  assert_redacts_to("abc is fine", "abc is fine");
}

static void test_registering_the_same_secret_twice_is_harmless(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("s3cr3t-value"), 0);
  assert_int_equal(rb_redact_add("s3cr3t-value"), 0);
  assert_redacts_to("s3cr3t-value", "[REDACTED]");
}

static void test_clear_forgets_every_secret(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("forget-me"), 0);
  rb_redact_clear();
  assert_redacts_to("forget-me", "forget-me");
}

static void test_url_userinfo_is_masked(void **state)
{
  (void)state;
  assert_redacts_to("curl https://user:pass@example.com/x?y=1 -o out",
                    "curl https://[REDACTED]@example.com/x?y=1 -o out");
  assert_redacts_to("git clone ssh://git@host/repo",
                    "git clone ssh://[REDACTED]@host/repo");
}

static void test_sensitive_query_parameters_are_masked_case_insensitively(void **state)
{
  (void)state;
  assert_redacts_to("GET https://h/api?Token=abc&page=2&api_key=k1#frag",
                    "GET https://h/api?Token=[REDACTED]&page=2&api_key=[REDACTED]#frag");
  assert_redacts_to("see \"http://h/?sig=zz&x=1\" now",
                    "see \"http://h/?sig=[REDACTED]&x=1\" now");
  assert_redacts_to("https://h/?password=p;secret=s;keyword=k",
                    "https://h/?password=[REDACTED];secret=[REDACTED];keyword=k");
}

static void test_text_without_urls_is_unchanged(void **state)
{
  (void)state;
  assert_redacts_to("", "");
  assert_redacts_to("token=abc outside a url", "token=abc outside a url");
  assert_redacts_to("odd :// and x@y", "odd :// and x@y");
}

static void test_secret_in_nested_json_is_scrubbed(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("tok-123456"), 0);
  json_t *v = json_pack("{s:{s:[s,i,s]}, s:s}", "detail", "argv", "curl", 42,
                        "-H X-Token:tok-123456", "url", "https://h/?access_token=zzz");
  rb_redact_json(v);
  char *s = json_dumps(v, JSON_COMPACT);
  assert_string_equal(s, "{\"detail\":{\"argv\":[\"curl\",42,\"-H X-Token:[REDACTED]\"]},"
                         "\"url\":\"https://h/?access_token=[REDACTED]\"}");
  free(s);
  json_decref(v);
}

static void test_credential_named_members_are_masked_whatever_their_type(void **state)
{
  (void)state;
  json_t *v = json_pack("{s:{s:s, s:s, s:i, s:{s:s}, s:s}}", "headers", "Authorization",
                        "Bearer abc", "Content-Type", "application/json", "token", 7,
                        "Private-Token", "a", "b", "set-cookie", "id=1");
  rb_redact_json(v);
  char *s = json_dumps(v, JSON_COMPACT);
  assert_string_equal(s,
                      "{\"headers\":{\"Authorization\":\"[REDACTED]\","
                      "\"Content-Type\":\"application/json\",\"token\":\"[REDACTED]\","
                      "\"Private-Token\":\"[REDACTED]\",\"set-cookie\":\"[REDACTED]\"}}");
  free(s);
  json_decref(v);
}

static void test_redact_json_accepts_null_and_scalars(void **state)
{
  (void)state;
  rb_redact_json(NULL);
  json_t *n = json_integer(5);
  rb_redact_json(n);
  assert_int_equal(json_integer_value(n), 5);
  json_decref(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_registered_secret_is_replaced_everywhere_in_a_string,
                                teardown),
      cmocka_unit_test_teardown(test_longest_secret_wins_when_secrets_overlap, teardown),
      cmocka_unit_test_teardown(test_short_secret_is_refused, teardown),
      cmocka_unit_test_teardown(test_registering_the_same_secret_twice_is_harmless,
                                teardown),
      cmocka_unit_test_teardown(test_clear_forgets_every_secret, teardown),
      cmocka_unit_test_teardown(test_url_userinfo_is_masked, teardown),
      cmocka_unit_test_teardown(
          test_sensitive_query_parameters_are_masked_case_insensitively, teardown),
      cmocka_unit_test_teardown(test_text_without_urls_is_unchanged, teardown),
      cmocka_unit_test_teardown(test_secret_in_nested_json_is_scrubbed, teardown),
      cmocka_unit_test_teardown(
          test_credential_named_members_are_masked_whatever_their_type, teardown),
      cmocka_unit_test_teardown(test_redact_json_accepts_null_and_scalars, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
