/* test_alerts.c: unit tests of Alertmanager payload parsing, the rules,
 * templates, HMAC checks and the dedup table (stdlib/serve/alerts.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/serve/alerts.h"
#include "runner/config.h"
#include "stdlib/serve/alerts_json.h"
#include "stdlib/rb_host.h"
#include "stdlib/serve/dedup.h"

static char *read_fixture(const char *name, size_t *len)
{
  char path[4096];
  const char *dir = getenv("RB_FIXTURES");
  snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[65536];
  *len = fread(buf, 1, sizeof buf - 1, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

static rb_rules *rules_from(const char *text, char *err, size_t errlen)
{
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  assert_non_null(j);
  rb_rules *r = rb_rules_from_json(j, "rules.json", err, errlen);
  json_decref(j);
  return r;
}

static void test_fixture_parses_into_two_alerts(void **state)
{
  (void)state;
  size_t len;
  char *body = read_fixture("alertmanager-webhook-v4.json", &len);
  rb_alert_batch b;
  char err[256];
  assert_int_equal(rb_alerts_parse_am(body, len, &b, err, sizeof err), 0);
  assert_int_equal(b.n, 2);
  assert_string_equal(b.alerts[0].alertname, "Manual");
  assert_string_equal(b.alerts[1].alertname, "CheckoutHighErrorRate");
  assert_string_equal(b.alerts[1].fingerprint, "a3d9a4bfa0d26a05");
  assert_string_equal(b.alerts[1].status, "firing");
  rb_alerts_clear(&b);
  rb_alerts_clear(&b); /* idempotent */
}

static void assert_parse_error(const char *body, const char *want)
{
  rb_alert_batch b;
  char err[256] = "";
  assert_int_equal(rb_alerts_parse_am(body, strlen(body), &b, err, sizeof err), -1);
  if (strstr(err, want) == NULL)
    fail_msg("error '%s' does not contain '%s'", err, want);
  assert_null(b.root);
}

static void test_malformed_payloads_name_the_field(void **state)
{
  (void)state;
  assert_parse_error("{", "body: invalid JSON");
  assert_parse_error("[]", "body: expected an object");
  assert_parse_error("{\"version\":\"3\",\"alerts\":[]}", "version:");
  assert_parse_error("{\"alerts\":{}}", "alerts: expected an array");
  assert_parse_error("{\"alerts\":[{\"status\":\"firing\",\"fingerprint\":\"a\","
                     "\"labels\":{}},{\"status\":\"firing\",\"fingerprint\":\"b\","
                     "\"labels\":[]}]}",
                     "alerts[1].labels: expected an object");
  assert_parse_error("{\"alerts\":[{\"status\":\"firing\",\"fingerprint\":\"../x\","
                     "\"labels\":{}}]}",
                     "alerts[0].fingerprint");
  assert_parse_error("{\"alerts\":[{\"status\":\"odd\",\"fingerprint\":\"a\","
                     "\"labels\":{}}]}",
                     "alerts[0].status");
  assert_parse_error("{\"alerts\":[{\"status\":\"firing\",\"fingerprint\":\"a\","
                     "\"labels\":{\"x\":1}}]}",
                     "alerts[0].labels.x: expected a string");
  assert_parse_error("{\"alerts\":[{\"status\":\"firing\",\"fingerprint\":\"a\","
                     "\"labels\":{},\"annotations\":7}]}",
                     "alerts[0].annotations: expected an object");
}

static void test_exact_and_regex_matchers_pick_the_rule_and_template_vars(void **state)
{
  (void)state;
  char err[512];
  rb_rules *r = rules_from(
      "[{\"match\":{\"alertname\":\"CheckoutHighErrorRate\",\"severity\":\"critical\"},"
      "\"runbook\":\"checkout-errors\",\"mode\":\"exec\","
      "\"vars\":{\"service\":\"{{labels.service}}\",\"why\":\"{{ annotations.summary "
      "}}!\","
      "\"gone\":\"{{labels.nope}}\"}},"
      "{\"match\":{\"service\":\"~check.*\"},\"runbook\":\"generic\"}]",
      err, sizeof err);
  assert_non_null(r);
  size_t len;
  char *body = read_fixture("alertmanager-webhook-v4.json", &len);
  rb_alert_batch b;
  assert_int_equal(rb_alerts_parse_am(body, len, &b, err, sizeof err), 0);
  rb_alert_match m;
  assert_int_equal(rb_rules_match(r, &b.alerts[1], &m, err, sizeof err), 1);
  assert_string_equal(m.runbook, "checkout-errors");
  assert_int_equal(m.dry_run, 0);
  assert_string_equal(json_string_value(json_object_get(m.vars, "service")), "checkout");
  assert_string_equal(json_string_value(json_object_get(m.vars, "why")),
                      "Checkout error rate above 1%!");
  assert_null(json_object_get(m.vars, "gone")); /* absent label: runbook default */
  rb_alert_match_clear(&m);
  /* the other alert falls through to the regex rule, dry-run by default */
  assert_int_equal(rb_rules_match(r, &b.alerts[0], &m, err, sizeof err), 1);
  assert_string_equal(m.runbook, "generic");
  assert_int_equal(m.dry_run, 1);
  assert_int_equal(m.rule, 1);
  rb_alert_match_clear(&m);
  rb_alerts_clear(&b);
  rb_rules_free(r);
}

static void test_regex_is_anchored_and_unmatched_alert_has_no_rule(void **state)
{
  (void)state;
  char err[512];
  rb_rules *r = rules_from("[{\"match\":{\"service\":\"~heck\"},\"runbook\":\"x\"}]", err,
                           sizeof err);
  assert_non_null(r);
  json_t *labels = json_pack("{s:s}", "service", "checkout");
  rb_alert a = {"firing", "f1", "A", "", labels, NULL};
  rb_alert_match m;
  assert_int_equal(rb_rules_match(r, &a, &m, err, sizeof err), 0);
  json_decref(labels);
  rb_rules_free(r);
}

static void test_annotation_names_the_runbook_when_the_rule_allows_it(void **state)
{
  (void)state;
  char err[512];
  rb_rules *r =
      rules_from("[{\"match_annotation\":true,\"mode\":\"dry-run\"}]", err, sizeof err);
  assert_non_null(r);
  json_t *labels = json_object();
  json_t *ann = json_pack("{s:s}", "runbook", "checkout-errors");
  rb_alert a = {"firing", "f1", "A", "", labels, ann};
  rb_alert_match m;
  assert_int_equal(rb_rules_match(r, &a, &m, err, sizeof err), 1);
  assert_string_equal(m.runbook, "checkout-errors");
  rb_alert_match_clear(&m);
  /* a path or an option in the annotation is refused */
  json_object_set_new(ann, "runbook", json_string("../../etc/evil.lua"));
  assert_int_equal(rb_rules_match(r, &a, &m, err, sizeof err), -1);
  assert_non_null(strstr(err, "annotations.runbook"));
  json_object_set_new(ann, "runbook", json_string("--help"));
  assert_int_equal(rb_rules_match(r, &a, &m, err, sizeof err), -1);
  json_object_del(ann, "runbook");
  assert_int_equal(rb_rules_match(r, &a, &m, err, sizeof err), 0);
  json_decref(labels);
  json_decref(ann);
  rb_rules_free(r);
}

static void assert_rules_error(const char *text, const char *want)
{
  char err[512] = "";
  rb_rules *r = rules_from(text, err, sizeof err);
  if (r != NULL)
    fail_msg("rules accepted: %s", text);
  if (strstr(err, want) == NULL)
    fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_bad_rules_are_refused_with_file_index_and_field(void **state)
{
  (void)state;
  assert_rules_error("{}", "rules.json: expected a JSON array");
  assert_rules_error("[{\"match\":{\"a\":\"b\"}}]",
                     "rules.json: rule 0.runbook: missing");
  assert_rules_error(
      "[{\"match\":{},\"runbook\":\"x\"},{\"match\":{\"a\":1},\"runbook\":\"x\"}]",
      "rule 1.match.a: expected a string");
  assert_rules_error("[{\"match\":{\"a\":\"~(\"},\"runbook\":\"x\"}]",
                     "rule 0.match.a: bad regex");
  assert_rules_error("[{\"match\":{},\"runbook\":\"a/b\"}]", "rule 0.runbook");
  assert_rules_error("[{\"match\":{},\"runbook\":\"x\",\"mode\":\"yolo\"}]",
                     "rule 0.mode");
  assert_rules_error(
      "[{\"match\":{},\"runbook\":\"x\",\"vars\":{\"a\":\"{{labls.x}}\"}}]",
      "rule 0.vars.a: unknown field");
  assert_rules_error("[{\"match\":{},\"runbook\":\"x\",\"vars\":{\"a\":\"{{labels.x\"}}]",
                     "rule 0.vars.a: '{{' without '}}'");
  assert_rules_error("[{\"match\":{},\"runbook\":\"x\",\"vars\":{\"a-b\":\"v\"}}]",
                     "rule 0.vars.a-b: not a parameter name");
  assert_rules_error("[{\"match\":{},\"runbook\":\"x\",\"bogus\":1}]",
                     "rule 0: unknown field 'bogus' (known:");
  assert_rules_error("[{\"match\":{},\"runbook\":\"x\"},{\"match\":{},\"runbok\":\"x\"}]",
                     "rule 1: unknown field 'runbok' (did you mean 'runbook'?)");
  assert_rules_error("[{\"runbook\":\"x\"}]", "rule 0: needs match or match_annotation");
}

static void test_rules_file_errors_name_the_file(void **state)
{
  (void)state;
  char err[512];
  assert_null(rb_rules_load("/nonexistent/rules.json", err, sizeof err));
  assert_non_null(strstr(err, "/nonexistent/rules.json"));
}

static void test_hmac_verifies_and_a_forgery_fails(void **state)
{
  (void)state;
  const char *body = "{\"alerts\":[]}";
  char sig[80];
  assert_int_equal(rb_alerts_hmac_sign("k3y-secret", body, strlen(body), sig, sizeof sig),
                   0);
  assert_int_equal(strncmp(sig, "sha256=", 7), 0);
  assert_int_equal(strlen(sig), 7 + 64);
  assert_true(rb_alerts_hmac_ok("k3y-secret", body, strlen(body), sig));
  /* RFC 4231 test case 2 */
  char ref[80];
  assert_int_equal(
      rb_alerts_hmac_sign("Jefe", "what do ya want for nothing?", 28, ref, sizeof ref),
      0);
  assert_string_equal(ref,
                      "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b"
                      "964ec3843");
  assert_false(rb_alerts_hmac_ok("other-key", body, strlen(body), sig));
  assert_false(rb_alerts_hmac_ok("k3y-secret", "{\"alerts\":[1]}", 14, sig));
  assert_false(rb_alerts_hmac_ok("k3y-secret", body, strlen(body), NULL));
  assert_false(rb_alerts_hmac_ok("k3y-secret", body, strlen(body), "sha256="));
  sig[20] ^= 1;
  assert_false(rb_alerts_hmac_ok("k3y-secret", body, strlen(body), sig));
}

static void test_constant_time_compare(void **state)
{
  (void)state;
  assert_true(rb_alerts_ct_equal("token-1", "token-1"));
  assert_false(rb_alerts_ct_equal("token-1", "token-2"));
  assert_false(rb_alerts_ct_equal("token-1", "token-10"));
  assert_false(rb_alerts_ct_equal("", "x"));
  assert_false(rb_alerts_ct_equal(NULL, "x"));
}

static void test_dedup_while_active_and_within_the_window(void **state)
{
  (void)state;
  char err[256];
  rb_dedup *d = rb_dedup_open_file(NULL, 1000, 3, 0, err, sizeof err);
  assert_non_null(d);
  assert_int_equal(rb_dedup_claim(d, "fp1", 0, err, sizeof err), 0);
  assert_int_equal(rb_dedup_claim(d, "fp1", 10, err, sizeof err), 1); /* active */
  assert_int_equal(rb_dedup_claim(d, "fp1", 5000, err, sizeof err), 1);
  assert_int_equal(rb_dedup_hits(d, "fp1"), 2);
  rb_dedup_finished(d, "fp1", 6000);
  assert_int_equal(rb_dedup_claim(d, "fp1", 6500, err, sizeof err), 1); /* window */
  assert_int_equal(rb_dedup_claim(d, "fp1", 7000, err, sizeof err), 0); /* over */
  /* full of live keys: refused, a key inside its window is never evicted */
  assert_int_equal(rb_dedup_claim(d, "fp2", 7000, err, sizeof err), 0);
  assert_int_equal(rb_dedup_claim(d, "fp3", 7000, err, sizeof err), 0);
  assert_int_equal(rb_dedup_claim(d, "fp4", 7000, err, sizeof err), -1);
  rb_dedup_finished(d, "fp2", 7001);
  assert_int_equal(rb_dedup_claim(d, "fp4", 7500, err, sizeof err), -1);
  assert_int_equal(rb_dedup_claim(d, "fp2", 7600, err, sizeof err), 1);
  /* once its window passed, the key makes room */
  assert_int_equal(rb_dedup_claim(d, "fp4", 8001, err, sizeof err), 0);
  rb_dedup_forget(d, "fp4");
  assert_int_equal(rb_dedup_count(d), 2);
  assert_int_equal(rb_dedup_claim(d, "fp5", 8002, err, sizeof err), 0);
  rb_dedup_free(d);
  rb_dedup_free(NULL);
}

static void test_dedup_file_survives_reopen_and_compacts(void **state)
{
  (void)state;
  char dir[] = "/tmp/rb-dedup-XXXXXX", err[256];
  assert_non_null(mkdtemp(dir));
  rb_dedup *d = rb_dedup_open_file(dir, 1000, 100000, 0, err, sizeof err);
  assert_non_null(d);
  char key[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "k%d|t", i);
    assert_int_equal(rb_dedup_claim(d, key, 10, err, sizeof err), 0);
    rb_dedup_finished(d, key, 20);
    if (i % 2)
      rb_dedup_forget(d, key);
  }
  assert_int_equal(rb_dedup_claim(d, "active|t", 30, err, sizeof err), 0);
  assert_int_equal(rb_dedup_sync(d, err, sizeof err), 0);
  rb_dedup_free(d); /* as if the listener died with "active" running */
  d = rb_dedup_open_file(dir, 1000, 100000, 500, err, sizeof err);
  assert_non_null(d);
  assert_int_equal(rb_dedup_count(d), 2501);
  assert_int_equal(rb_dedup_claim(d, "k0|t", 600, err, sizeof err), 1);
  assert_int_equal(rb_dedup_claim(d, "k1|t", 600, err, sizeof err), 0);
  /* the active key's window started at the reopen (500) */
  assert_int_equal(rb_dedup_claim(d, "active|t", 1400, err, sizeof err), 1);
  assert_int_equal(rb_dedup_claim(d, "active|t", 1500, err, sizeof err), 0);
  rb_dedup_free(d);
  /* reopened after the window: only the keys claimed since are left */
  d = rb_dedup_open_file(dir, 1000, 100000, 5000, err, sizeof err);
  assert_non_null(d);
  assert_int_equal(rb_dedup_count(d), 2);
  rb_dedup_free(d);
  char path[128];
  snprintf(path, sizeof path, "%s/dedup.log", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int lines = 0, c;
  while ((c = fgetc(f)) != EOF)
    lines += c == '\n';
  fclose(f);
  assert_int_equal(lines, 2);
  unlink(path);
  rmdir(dir);
}

static void test_json_route_pointers_escape_and_index(void **state)
{
  (void)state;
  char err[512];
  rb_config *c = rb_config_new_empty();
  assert_non_null(c);
  assert_int_equal(rb_config_set(c, "serve.json.t", "fingerprint", "/a~1b/0"), 0);
  assert_int_equal(
      rb_config_set(c, "serve.json.t", "labels", "alertname=/n~0m, v = /x/1/y"), 0);
  rb_json_route *r = rb_json_route_new(c, "serve.json.t", err, sizeof err);
  assert_non_null(r);
  assert_string_equal(rb_json_route_name(r), "t");
  const char *body = "{\"a/b\":[\"fp1\"],\"n~m\":\"A\",\"x\":[0,{\"y\":2.5}]}";
  rb_alert_batch b;
  assert_int_equal(rb_alerts_parse_json(r, body, strlen(body), &b, err, sizeof err), 0);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.alerts[0].fingerprint, "fp1");
  assert_string_equal(b.alerts[0].alertname, "A");
  assert_string_equal(json_string_value(json_object_get(b.alerts[0].labels, "v")), "2.5");
  rb_alerts_clear(&b);
  /* leading zeros are not array indexes */
  body = "{\"a/b\":[\"fp1\"],\"n~m\":\"A\",\"x\":[0]}";
  assert_int_equal(rb_alerts_parse_json(r, body, strlen(body), &b, err, sizeof err), -1);
  assert_string_equal(err, "alerts[0]: /x/1/y (v): missing");
  rb_json_route_free(r);
  assert_int_equal(rb_config_set(c, "serve.json.u", "fingerprint", "/~2"), 0);
  assert_null(rb_json_route_new(c, "serve.json.u", err, sizeof err));
  assert_string_equal(err, "[serve.json.u] fingerprint: '/~2' is not a JSON pointer");
  rb_json_route_free(NULL);
  rb_config_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixture_parses_into_two_alerts),
      cmocka_unit_test(test_malformed_payloads_name_the_field),
      cmocka_unit_test(test_exact_and_regex_matchers_pick_the_rule_and_template_vars),
      cmocka_unit_test(test_regex_is_anchored_and_unmatched_alert_has_no_rule),
      cmocka_unit_test(test_annotation_names_the_runbook_when_the_rule_allows_it),
      cmocka_unit_test(test_bad_rules_are_refused_with_file_index_and_field),
      cmocka_unit_test(test_rules_file_errors_name_the_file),
      cmocka_unit_test(test_hmac_verifies_and_a_forgery_fails),
      cmocka_unit_test(test_constant_time_compare),
      cmocka_unit_test(test_dedup_while_active_and_within_the_window),
      cmocka_unit_test(test_dedup_file_survives_reopen_and_compacts),
      cmocka_unit_test(test_json_route_pointers_escape_and_index),
  };
  return cmocka_run_group_tests_name("alerts", tests, NULL, NULL);
}
