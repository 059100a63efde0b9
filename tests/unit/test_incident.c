/* test_incident.c: the incident id of alert-started runs, one per alert
 * group and firing, and the RFC 3339 reading it rests on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stdlib/serve/alerts.h"

static void incident_of(const char *body, size_t i, char *out, size_t len)
{
  rb_alert_batch b;
  char err[256];
  assert_int_equal(rb_alerts_parse_am(body, strlen(body), &b, err, sizeof err), 0);
  rb_alerts_incident(&b, i, out, len);
  rb_alerts_clear(&b);
}

#define ALERT(st, fp, at)                                                                \
  "{\"status\":\"" st "\",\"labels\":{\"alertname\":\"A\"},\"fingerprint\":\"" fp        \
  "\",\"startsAt\":\"" at "\"}"

static void one_incident_per_group_and_firing(void **state)
{
  (void)state;
  char a[128], b[128], c[128], d[128];
  incident_of(
      "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"A\\\"}\",\"alerts\":[" ALERT(
          "firing", "f2", "2026-11-22T09:40:00.5Z") "," ALERT("firing", "f1",
                                                              "2026-11-22T09:36:08."
                                                              "312999Z") "]}",
      0, a, sizeof a);
  incident_of(
      "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"A\\\"}\",\"alerts\":[" ALERT(
          "firing", "f2", "2026-11-22T09:40:00.5Z") "," ALERT("firing", "f1",
                                                              "2026-11-22T09:36:08."
                                                              "312999Z") "]}",
      1, b, sizeof b);
  assert_string_equal(a, b); /* every alert of the firing joins it */
  assert_int_equal(strlen(a), strlen("ALERT-") + 12 + 1 + strlen("20261122T093608.312Z"));
  assert_string_equal(a + 18, "-20261122T093608.312Z");
  /* the first alert resolved and was sent as such: it no longer counts */
  incident_of(
      "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"A\\\"}\",\"alerts\":[" ALERT(
          "resolved", "f1", "2026-11-22T09:00:00Z") "," ALERT("firing", "f2",
                                                              "2026-11-22T10:00:00+01:"
                                                              "00") "]}",
      0, c, sizeof c);
  assert_memory_equal(a, c, 18);
  assert_string_equal(c + 18, "-20261122T090000.000Z");
  /* the resolved alert itself belongs to the firing that ended: the earliest */
  incident_of(
      "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"A\\\"}\",\"alerts\":[" ALERT(
          "resolved", "f1",
          "2026-11-22T08:00:00Z") "," ALERT("firing", "f2", "2026-11-22T09:00:00Z") "]}",
      0, c, sizeof c);
  assert_string_equal(c + 18, "-20261122T080000.000Z");
  /* another group, same times: another incident */
  incident_of(
      "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"B\\\"}\",\"alerts\":[" ALERT(
          "firing", "f1", "2026-11-22T09:36:08.312Z") "]}",
      0, d, sizeof d);
  assert_memory_not_equal(a, d, 18);
  assert_string_equal(d + 18, "-20261122T093608.312Z");
}

static void without_a_group_key_each_alert_is_its_own_group(void **state)
{
  (void)state;
  char a[128], b[128];
  incident_of("{\"alerts\":[" ALERT("firing", "e1", "2026-11-22T09:36:08.312Z") "," ALERT(
                  "firing", "e2", "2026-11-22T09:30:00Z") "]}",
              0, a, sizeof a);
  incident_of("{\"alerts\":[" ALERT("firing", "e1", "2026-11-22T09:36:08.312Z") "," ALERT(
                  "firing", "e2", "2026-11-22T09:30:00Z") "]}",
              1, b, sizeof b);
  assert_string_equal(a, "ALERT-e1-20261122T093608.312Z");
  assert_string_equal(b, "ALERT-e2-20261122T093000.000Z");
  incident_of(
      "{\"alerts\":[{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"e3\"}]}", 0, a,
      sizeof a);
  assert_string_equal(a, "ALERT-e3"); /* no startsAt: no firing to tell apart */
}

static void group_key_must_be_a_string(void **state)
{
  (void)state;
  rb_alert_batch b;
  char err[256];
  const char *body = "{\"groupKey\":7,\"alerts\":[]}";
  assert_int_equal(rb_alerts_parse_am(body, strlen(body), &b, err, sizeof err), -1);
  assert_string_equal(err, "groupKey: expected a string");
}

static void rfc3339(void **state)
{
  (void)state;
  assert_int_equal(rb_alerts_rfc3339_ms("1970-01-01T00:00:01Z"), 1000);
  assert_int_equal(rb_alerts_rfc3339_ms("1970-01-01T01:00:01.25+01:00"), 1250);
  assert_int_equal(rb_alerts_rfc3339_ms("1970-01-01T00:00:00.123456789Z"), 123);
  assert_int_equal(rb_alerts_rfc3339_ms("1969-12-31T23:00:00-01:00"), 0);
  const char *bad[] = {"",
                       "2026-11-22",
                       "2026-11-22T09:36:08",
                       "2026-13-22T09:36:08Z",
                       "2026-11-22T09:36:08.Z",
                       "2026-11-22T09:36:08+0100",
                       "2026-11-22 09:36:08Z",
                       "2026-11-22T09:36:08Zjunk",
                       NULL};
  for (int i = 0; bad[i]; i++)
    assert_int_equal(rb_alerts_rfc3339_ms(bad[i]), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(one_incident_per_group_and_firing),
      cmocka_unit_test(without_a_group_key_each_alert_is_its_own_group),
      cmocka_unit_test(group_key_must_be_a_string),
      cmocka_unit_test(rfc3339),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
