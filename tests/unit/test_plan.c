/* test_plan.c: the form plans keep writes in (a dry-run's would_run and an
 * exec's started intent must meet), comparing two plans, and the
 * parameters an exec of a plan may be given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/redact.h"
#include "runner/base/sha256.h"
#include "runner/plan.h"
#include "runner/store.h"

static const char *digest_of(const json_t *writes, size_t i)
{
  return json_string_value(json_object_get(json_array_get(writes, i), "digest"));
}

static void test_ssh_would_run_per_host_meets_the_started_fanout(void **state)
{
  (void)state;
  json_t *a = json_pack("{s:s, s:s, s:s, s:i, s:s, s:b, s:{s:b}}", "op", "ssh", "host",
                        "app-1", "address", "127.0.0.1", "port", 22, "command",
                        "systemctl restart x", "write", 1, "preflight", "ok", 1);
  json_t *b =
      json_pack("{s:s, s:s, s:s, s:s, s:b}", "op", "ssh", "host", "app-2", "address",
                "127.0.0.1", "command", "systemctl restart x", "write", 1);
  json_t *started =
      json_pack("{s:s, s:s, s:[s, s], s:s}", "op", "ssh", "target", "app", "hosts",
                "app-1", "app-2", "command", "systemctl restart x");
  json_t *wa = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", a),
         *wb = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", b);
  json_t *ws = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", started);
  assert_int_equal(json_array_size(ws), 2);
  assert_string_equal(digest_of(wa, 0), digest_of(ws, 0));
  assert_string_equal(digest_of(wb, 0), digest_of(ws, 1));
  assert_string_not_equal(digest_of(ws, 0), digest_of(ws, 1));
  json_t *other = rb_plan_writes_of("other-step", "20261201-000000-aaaaaa",
                                    a); /* the step is part of a write */
  assert_string_not_equal(digest_of(other, 0), digest_of(wa, 0));
  json_decref(other);
  json_decref(wa);
  json_decref(wb);
  json_decref(ws);
  json_decref(a);
  json_decref(b);
  json_decref(started);
}

static void test_http_is_compared_by_body_digest_not_shown_fields(void **state)
{
  (void)state;
  char hex[65];
  const char *body = "{\"service\":\"checkout\",\"to\":\"v41\"}";
  rb_sha256_hex(body, strlen(body), hex);
  json_t *would = json_pack("{s:s, s:s, s:s, s:{}, s:{s:s, s:s}, s:s, s:{s:b}}", "op",
                            "http", "method", "POST", "url", "http://h/rollback",
                            "headers", "body", "service", "checkout", "to", "v41",
                            "body_sha256", hex, "preflight", "ok", 1);
  json_t *started =
      json_pack("{s:s, s:s, s:s, s:s, s:i}", "op", "http", "method", "POST", "url",
                "http://h/rollback", "body_sha256", hex, "body_bytes", (int)strlen(body));
  json_t *w1 = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", would),
         *w2 = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", started);
  assert_string_equal(digest_of(w1, 0), digest_of(w2, 0));
  /* the plan shows the body it will send */
  assert_non_null(json_object_get(json_array_get(w1, 0), "body"));
  json_object_set_new(started, "body_sha256", json_string("00"));
  json_t *w3 = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", started);
  assert_string_not_equal(digest_of(w1, 0), digest_of(w3, 0));
  json_decref(w1);
  json_decref(w2);
  json_decref(w3);
  json_decref(would);
  json_decref(started);
}

static void test_a_secret_is_shown_redacted_and_compared_by_digest(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("s3cr3t-token-value"), 0);
  json_t *d = json_pack("{s:s, s:[s, s]}", "op", "cmd", "command", "deploy",
                        "--token=s3cr3t-token-value");
  json_t *e = json_pack("{s:s, s:[s, s]}", "op", "cmd", "command", "deploy",
                        "--token=another-token-val");
  json_t *w = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", d),
         *x = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", e);
  char *shown = json_dumps(w, 0);
  assert_null(strstr(shown, "s3cr3t"));
  assert_non_null(strstr(shown, "REDACTED"));
  assert_string_not_equal(digest_of(w, 0), digest_of(x, 0));
  free(shown);
  json_decref(w);
  json_decref(x);
  json_decref(d);
  json_decref(e);
  rb_redact_clear();
}

static json_t *plan_of(const char *branch, double value, const char *cmd)
{
  json_t *d = json_pack("{s:s, s:[s]}", "op", "cmd", "command", cmd);
  json_t *w = rb_plan_writes_of("fix", "20261201-000000-aaaaaa", d);
  json_decref(d);
  return json_pack("{s:[{s:s, s:s, s:s, s:s, s:f}], s:o}", "path", "step", "look", "kind",
                   "check", "event", "decision", "branch", branch, "value", value,
                   "writes", w);
}

static void test_diff_ignores_values_read_but_not_branches_or_writes(void **state)
{
  (void)state;
  char diff[2048];
  json_t *p = plan_of("rollback", 0.05, "rollback");
  json_t *same = plan_of("rollback", 0.07, "rollback");
  json_t *branch = plan_of("fine", 0.001, "rollback");
  json_t *write = plan_of("rollback", 0.05, "restart");
  assert_int_equal(rb_plan_diff(p, same, diff, sizeof diff), 0);
  assert_int_equal(rb_plan_diff(p, branch, diff, sizeof diff), 1);
  assert_non_null(strstr(diff, "the path differs at step 1"));
  assert_non_null(strstr(diff, "plan: 'look' (check, decision) -> branch 'rollback'"));
  assert_non_null(strstr(diff, "now:  'look' (check, decision) -> branch 'fine'"));
  assert_int_equal(rb_plan_diff(p, write, diff, sizeof diff), 1);
  assert_non_null(strstr(diff, "write 1 differs"));
  assert_non_null(strstr(diff, "plan: [fix] cmd [\"rollback\"]"));
  assert_non_null(strstr(diff, "now:  [fix] cmd [\"restart\"]"));
  json_object_set_new(write, "writes", json_array());
  assert_int_equal(rb_plan_diff(p, write, diff, sizeof diff), 1);
  assert_non_null(strstr(diff, "now:  (no more writes)"));
  json_decref(p);
  json_decref(same);
  json_decref(branch);
  json_decref(write);
}

static void test_vars_come_from_the_plan_and_a_different_one_is_refused(void **state)
{
  (void)state;
  char err[1024];
  json_t *plan = json_pack("{s:{s:s, s:f, s:I, s:b}}", "params", "service", "checkout",
                           "threshold", 0.01, "replicas", (json_int_t)3, "dry", 0);
  json_t *given = json_pack("{s:s, s:s}", "threshold", "0.010", "replicas", "3");
  json_t *vars = rb_plan_vars(plan, given, err, sizeof err);
  assert_non_null(vars);
  assert_string_equal(json_string_value(json_object_get(vars, "service")), "checkout");
  assert_float_equal(strtod(json_string_value(json_object_get(vars, "threshold")), NULL),
                     0.01, 0);
  assert_string_equal(json_string_value(json_object_get(vars, "dry")), "false");
  json_decref(vars);
  json_decref(given);
  given = json_pack("{s:s}", "threshold", "0.02");
  assert_null(rb_plan_vars(plan, given, err, sizeof err));
  assert_non_null(
      strstr(err, "--var threshold=0.02 differs from the plan's threshold=0.01"));
  json_decref(given);
  given = json_pack("{s:s}", "unknown", "x");
  assert_null(rb_plan_vars(plan, given, err, sizeof err));
  assert_non_null(strstr(err, "unknown=(not set)"));
  json_decref(given);
  json_decref(plan);
}

static void test_a_run_id_is_neutral_in_what_is_compared(void **state)
{
  (void)state;
  json_t *v = json_pack("{s:[s, s], s:s, s:i}", "argv", "page", "run-20261201-1-abcdef",
                        "url", "http://h/20261201-1-abcdef/x/20261201-1-abcdef", "n", 3);
  json_t *n = rb_plan_neutral(v, "20261201-1-abcdef");
  assert_string_equal(json_string_value(json_array_get(json_object_get(n, "argv"), 1)),
                      "run-{run}");
  assert_string_equal(json_string_value(json_object_get(n, "url")),
                      "http://h/{run}/x/{run}");
  assert_int_equal(json_integer_value(json_object_get(n, "n")), 3);
  json_t *a = json_pack("{s:s, s:s}", "op", "ssh", "command", "echo 20261201-1-abcdef");
  json_t *b = json_pack("{s:s, s:s}", "op", "ssh", "command", "echo 20261202-2-fedcba");
  json_t *wa = rb_plan_writes_of("s", "20261201-1-abcdef", a);
  json_t *wb = rb_plan_writes_of("s", "20261202-2-fedcba", b);
  json_t *wc = rb_plan_writes_of("s", "20261203-3-000000", b); /* not its own run */
  assert_string_equal(digest_of(wa, 0), digest_of(wb, 0));
  assert_string_not_equal(digest_of(wa, 0), digest_of(wc, 0));
  json_decref(wa);
  json_decref(wb);
  json_decref(wc);
  json_decref(a);
  json_decref(b);
  json_decref(n);
  json_decref(v);
}

static void test_the_store_keeps_a_document_with_a_run(void **state)
{
  (void)state;
  char dir[4096], err[512], where[4400];
  const char *tmp = getenv("RB_TEST_TMP");
  snprintf(dir, sizeof dir, "%s/plan-store-XXXXXX", tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));
  rb_store *st = rb_store_open_dir(dir, err, sizeof err);
  assert_non_null(st);
  int absent = 0;
  assert_null(rb_store_get_doc(st, "r1", RB_PLAN_DOC, &absent, err, sizeof err));
  assert_int_equal(absent, 1);
  assert_int_equal(rb_store_put_doc(st, "r1", RB_PLAN_DOC, "{}\n", 3, where, sizeof where,
                                    err, sizeof err),
                   0);
  assert_non_null(strstr(where, "/runs/r1.plan.json"));
  assert_int_equal(
      rb_store_put_doc(st, "r1", RB_PLAN_DOC, "{\"a\":1}", 7, NULL, 0, err, sizeof err),
      0); /* replaced whole */
  char *text = rb_store_get_doc(st, "r1", RB_PLAN_DOC, &absent, err, sizeof err);
  assert_string_equal(text, "{\"a\":1}");
  free(text);
  /* no run id names a path outside runs/ */
  assert_int_equal(
      rb_store_put_doc(st, "../x", RB_PLAN_DOC, "{}", 2, NULL, 0, err, sizeof err), -1);
  assert_null(rb_store_get_doc(st, "a/b", RB_PLAN_DOC, &absent, err, sizeof err));
  assert_int_equal(absent, 0);
  rb_store_free(st);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ssh_would_run_per_host_meets_the_started_fanout),
      cmocka_unit_test(test_http_is_compared_by_body_digest_not_shown_fields),
      cmocka_unit_test(test_a_secret_is_shown_redacted_and_compared_by_digest),
      cmocka_unit_test(test_diff_ignores_values_read_but_not_branches_or_writes),
      cmocka_unit_test(test_vars_come_from_the_plan_and_a_different_one_is_refused),
      cmocka_unit_test(test_a_run_id_is_neutral_in_what_is_compared),
      cmocka_unit_test(test_the_store_keeps_a_document_with_a_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
