/* test_slack.c: unit tests of the Slack request signature and its window
 * (stdlib/serve/slack.c) and of the approval message (slack_post.c). The
 * vectors were computed with `openssl dgst -sha256 -hmac`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "stdlib/serve/slack.h"
#include "stdlib/serve/slack_int.h"

#define SECRET "rb-unit-signing-secret-0001"
#define TS "1700000000"
#define BODY "payload=%7B%22type%22%3A%22block_actions%22%7D"
#define SIG "v0=ad97897743487fac19c075dad15821d5b2df5518abc469136977602da5fb1249"
#define SIG_EMPTY "v0=8f15984f649291bddf35eb81035a8c8aea64f31bd1d160b4061b4cc15de1d6aa"

static void test_sign_matches_the_known_vectors(void **state)
{
  (void)state;
  char out[80];
  assert_int_equal(rb_slack_sign(SECRET, TS, BODY, strlen(BODY), out, sizeof out), 0);
  assert_string_equal(out, SIG);
  assert_int_equal(rb_slack_sign(SECRET, TS, "", 0, out, sizeof out), 0);
  assert_string_equal(out, SIG_EMPTY);
  assert_int_equal(rb_slack_sign(SECRET, TS, BODY, strlen(BODY), out, 67), -1);
}

static void test_verify_accepts_the_vector_within_the_window(void **state)
{
  (void)state;
  int64_t t = 1700000000;
  assert_int_equal(rb_slack_verify(SECRET, TS, SIG, BODY, strlen(BODY), t), RB_SLACK_OK);
  assert_int_equal(rb_slack_verify(SECRET, TS, SIG, BODY, strlen(BODY), t + 300),
                   RB_SLACK_OK);
  assert_int_equal(rb_slack_verify(SECRET, TS, SIG, BODY, strlen(BODY), t - 300),
                   RB_SLACK_OK);
  /* signed but outside 5 minutes, either way */
  assert_int_equal(rb_slack_verify(SECRET, TS, SIG, BODY, strlen(BODY), t + 301),
                   RB_SLACK_STALE);
  assert_int_equal(rb_slack_verify(SECRET, TS, SIG, BODY, strlen(BODY), t - 301),
                   RB_SLACK_STALE);
}

static void test_verify_refuses_any_change(void **state)
{
  (void)state;
  int64_t t = 1700000000;
  const char *body2 = "payload=%7B%22type%22%3A%22block_actionz%22%7D";
  char upper[80];
  snprintf(upper, sizeof upper, "%s", SIG);
  for (char *p = upper + 3; *p; p++)
    if (*p >= 'a' && *p <= 'f')
      *p = (char)(*p - 32);
  const char *bad[] = {
      "v0=ad97897743487fac19c075dad15821d5b2df5518abc469136977602da5fb1248",
      "v1=ad97897743487fac19c075dad15821d5b2df5518abc469136977602da5fb1249",
      "v0=ad97897743487fac19c075dad15821d5b2df5518abc469136977602da5fb124", "", upper};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(rb_slack_verify(SECRET, TS, bad[i], BODY, strlen(BODY), t),
                     RB_SLACK_BAD_SIGNATURE);
  assert_int_equal(rb_slack_verify(SECRET, TS, SIG, body2, strlen(body2), t),
                   RB_SLACK_BAD_SIGNATURE);
  assert_int_equal(rb_slack_verify(SECRET, "1700000001", SIG, BODY, strlen(BODY), t),
                   RB_SLACK_BAD_SIGNATURE);
  assert_int_equal(
      rb_slack_verify("rb-unit-signing-secret-0002", TS, SIG, BODY, strlen(BODY), t),
      RB_SLACK_BAD_SIGNATURE);
  /* the timestamp is decimal seconds: nothing else is signed-over text */
  assert_int_equal(rb_slack_verify(SECRET, " 1700000000", SIG, BODY, strlen(BODY), t),
                   RB_SLACK_BAD_SIGNATURE);
  assert_int_equal(rb_slack_verify(SECRET, NULL, SIG, BODY, strlen(BODY), t),
                   RB_SLACK_BAD_SIGNATURE);
  assert_int_equal(rb_slack_verify(SECRET, TS, NULL, BODY, strlen(BODY), t),
                   RB_SLACK_BAD_SIGNATURE);
}

static json_t *find_block(const json_t *msg, const char *type)
{
  size_t i;
  json_t *b;
  json_array_foreach(json_object_get(msg, "blocks"), i, b)
  {
    if (strcmp(json_string_value(json_object_get(b, "type")), type) == 0)
      return b;
  }
  return NULL;
}

static void test_message_has_buttons_until_decided_and_escapes_text(void **state)
{
  (void)state;
  json_t *req =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:[{s:s}]}",
                "question", "Restart <api> & co?", "runbook", "rb", "incident", "INC-1",
                "run", "r1", "step", "act", "needs", "0 of 1; answered: nobody",
                "expires", "2030-01-01T00:00:00.000Z", "policy", "confirm", "checkout-db",
                "confirm_by", "step 'act'", "would_run", "cmd", "systemctl restart api");
  json_t *m = rb_slack_message(req);
  char *txt = json_dumps(m, 0);
  assert_non_null(strstr(txt, "Restart &lt;api&gt; &amp; co?"));
  assert_null(strstr(txt, "<api>"));
  assert_non_null(strstr(txt, "systemctl restart api"));
  json_t *act = find_block(m, "actions");
  assert_non_null(act);
  json_t *yes = json_array_get(json_object_get(act, "elements"), 0);
  assert_string_equal(json_string_value(json_object_get(yes, "value")), "r1/act");
  assert_string_equal(json_string_value(json_object_get(yes, "action_id")), "rb_approve");
  assert_non_null(find_block(m, "input"));
  free(txt);
  json_decref(m);
  json_object_set_new(req, "decision",
                      json_pack("{s:b, s:s, s:s, s:s}", "approved", 0, "by", "bob", "via",
                                "slack", "comment", "not now"));
  m = rb_slack_message(req);
  assert_null(find_block(m, "actions"));
  assert_null(find_block(m, "input"));
  txt = json_dumps(m, 0);
  assert_non_null(strstr(txt, "*Denied* by bob (slack): not now"));
  free(txt);
  json_decref(m);
  json_decref(req);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_matches_the_known_vectors),
      cmocka_unit_test(test_verify_accepts_the_vector_within_the_window),
      cmocka_unit_test(test_verify_refuses_any_change),
      cmocka_unit_test(test_message_has_buttons_until_decided_and_escapes_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
