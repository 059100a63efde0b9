/* test_pagerduty.c: unit tests of the PagerDuty v3 receiver: secrets and
 * signatures (rotation), incident events to alerts (stdlib/serve/pagerduty.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/serve/pagerduty.h"

static char *read_fixture(const char *name, size_t *len)
{
  char path[4096];
  const char *dir = getenv("RB_FIXTURES");
  snprintf(path, sizeof path, "%s/pagerduty/%s", dir ? dir : "tests/fixtures", name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[65536];
  *len = fread(buf, 1, sizeof buf - 1, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

static void sign(const char *key, const char *body, char *out)
{
  unsigned char mac[32];
  unsigned n = 0;
  HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, strlen(body),
       mac, &n);
  strcpy(out, "v1=");
  for (unsigned i = 0; i < 32; i++)
    snprintf(out + 3 + 2 * i, 3, "%02x", mac[i]);
}

static void test_secrets_split_on_commas_and_space(void **state)
{
  (void)state;
  char err[256];
  rb_pd_secrets *s =
      rb_pd_secrets_parse(" aaaaaaaaaaaaaaaa,\nbbbbbbbbbbbbbbbb ", err, sizeof err);
  assert_non_null(s);
  assert_string_equal(rb_pd_secret_at(s, 0), "aaaaaaaaaaaaaaaa");
  assert_string_equal(rb_pd_secret_at(s, 1), "bbbbbbbbbbbbbbbb");
  assert_null(rb_pd_secret_at(s, 2));
  assert_true(rb_pd_secrets_contains(s, "bbbbbbbbbbbbbbbb"));
  assert_false(rb_pd_secrets_contains(s, "bbbbbbbbbbbbbbb"));
  assert_false(rb_pd_secrets_contains(s, NULL));
  rb_pd_secrets_free(s);
  assert_null(rb_pd_secrets_parse("aaaaaaaaaaaaaaaa,short", err, sizeof err));
  assert_string_equal(err,
                      "[serve] pagerduty_secret: secret 2 is shorter than 16 characters");
  assert_null(rb_pd_secrets_parse(" , ", err, sizeof err));
  assert_string_equal(err, "[serve] pagerduty_secret: empty");
  char many[400] = "";
  for (int i = 0; i < 9; i++)
    strcat(many, "cccccccccccccccc,");
  assert_null(rb_pd_secrets_parse(many, err, sizeof err));
  assert_string_equal(err, "[serve] pagerduty_secret: more than 8 secrets");
  rb_pd_secrets_free(NULL);
}

static void test_any_signature_under_any_secret_verifies(void **state)
{
  (void)state;
  char err[256], a[80], b[80], other[80], hdr[400];
  const char *body = "{\"event\":{}}";
  rb_pd_secrets *s =
      rb_pd_secrets_parse("old-secret-0123456789,new-secret-0123456789", err, sizeof err);
  assert_non_null(s);
  sign("old-secret-0123456789", body, a);
  sign("new-secret-0123456789", body, b);
  sign("someone-elses-secret-00", body, other);
  assert_true(rb_pd_verify(s, body, strlen(body), a));
  assert_true(rb_pd_verify(s, body, strlen(body), b));
  snprintf(hdr, sizeof hdr, "%s, %s", other, b);
  assert_true(rb_pd_verify(s, body, strlen(body), hdr));
  snprintf(hdr, sizeof hdr, "v0=%s,%s", a + 3, a);
  assert_true(rb_pd_verify(s, body, strlen(body), hdr));
  for (char *p = a + 3; *p; p++)
    if (*p >= 'a' && *p <= 'f')
      *p = (char)(*p - 32);
  assert_true(rb_pd_verify(s, body, strlen(body), a)); /* hex in capitals */
  assert_false(rb_pd_verify(s, body, strlen(body), other));
  assert_false(rb_pd_verify(s, body, strlen(body) - 1, b));
  assert_false(rb_pd_verify(s, body, strlen(body), NULL));
  assert_false(rb_pd_verify(s, body, strlen(body), ""));
  assert_false(rb_pd_verify(s, body, strlen(body), b + 3)); /* no v1= */
  snprintf(hdr, sizeof hdr, "v2=%s", b + 3);
  assert_false(rb_pd_verify(s, body, strlen(body), hdr));
  assert_false(rb_pd_verify(NULL, body, strlen(body), b));
  rb_pd_secrets_free(s);
}

static const char *label(const rb_alert *a, const char *k)
{
  return json_string_value(json_object_get(a->labels, k));
}

static void test_triggered_incident_maps_to_labels(void **state)
{
  (void)state;
  size_t len;
  char err[256];
  const char *type;
  rb_alert_batch b;
  const char *body = read_fixture("incident-triggered.json", &len);
  assert_int_equal(rb_alerts_parse_pagerduty(body, len, &b, &type, err, sizeof err), 0);
  assert_string_equal(type, "incident.triggered");
  assert_int_equal(b.n, 1);
  const rb_alert *a = &b.alerts[0];
  assert_string_equal(a->status, "firing");
  assert_string_equal(a->fingerprint, "pd-Q2W8TX4JPL6R0K");
  assert_string_equal(a->starts_at, "2026-11-22T09:41:07Z");
  assert_string_equal(a->alertname, "CheckoutHighErrorRate: checkout 5xx above 1%");
  assert_string_equal(label(a, "source"), "pagerduty");
  assert_string_equal(label(a, "incident_number"), "4812");
  assert_string_equal(label(a, "incident_key"), "a3d9a4bfa0d26a05");
  assert_string_equal(label(a, "priority"), "P1");
  assert_string_equal(label(a, "teams"), "Payments, SRE");
  assert_string_equal(label(a, "service_id"), "PCHK0UT");
  assert_string_equal(
      json_string_value(json_object_get(a->annotations, "conference_url")),
      "https://meet.shop-example.test/checkout-bridge");
  rb_alerts_clear(&b);
  body = read_fixture("incident-resolved.json", &len);
  assert_int_equal(rb_alerts_parse_pagerduty(body, len, &b, &type, err, sizeof err), 0);
  assert_string_equal(b.alerts[0].status, "resolved");
  assert_null(json_object_get(b.alerts[0].annotations, "assignees")); /* [] */
  rb_alerts_clear(&b);
  body = read_fixture("incident-acknowledged.json", &len);
  assert_int_equal(rb_alerts_parse_pagerduty(body, len, &b, &type, err, sizeof err), 0);
  assert_string_equal(type, "incident.acknowledged");
  assert_int_equal(b.n, 0);
  rb_alerts_clear(&b);
}

static void assert_pd_error(const char *body, const char *want)
{
  char err[256];
  const char *type;
  rb_alert_batch b;
  assert_int_equal(
      rb_alerts_parse_pagerduty(body, strlen(body), &b, &type, err, sizeof err), -1);
  assert_string_equal(err, want);
  assert_null(type);
}

static void test_malformed_events_name_the_field(void **state)
{
  (void)state;
  assert_pd_error("[]", "body: expected an object");
  assert_pd_error("{}", "event: missing");
  assert_pd_error("{\"event\": {\"event_type\": null}}",
                  "event.event_type: expected a string");
  assert_pd_error("{\"event\": {\"event_type\": \"incident.triggered\"}}",
                  "event.data: missing");
  assert_pd_error(
      "{\"event\": {\"event_type\": \"incident.resolved\", \"data\": {\"id\": "
      "\"P1\", \"created_at\": \"t\", \"title\": \"x\"}}}",
      "event.data.urgency: missing");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_secrets_split_on_commas_and_space),
      cmocka_unit_test(test_any_signature_under_any_secret_verifies),
      cmocka_unit_test(test_triggered_incident_maps_to_labels),
      cmocka_unit_test(test_malformed_events_name_the_field),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
