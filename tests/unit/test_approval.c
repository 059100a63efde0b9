/* test_approval.c: approval gates through the state dir: the first answer
 * wins, a missing request can not be answered, silence is a denial. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/approval.h"

static char dir[256];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/rb-appr-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void *approve_later(void *arg)
{
  (void)arg;
  char err[256];
  for (int i = 0; i < 100; i++) {
    usleep(20000);
    if (rb_approval_decide(dir, "run1", "act", 1, "carol", "looks right", "http", err,
                           sizeof err) == 0)
      return NULL;
  }
  return NULL;
}

static void test_decision_from_another_process_is_picked_up(void **state)
{
  (void)state;
  pthread_t t;
  pthread_create(&t, NULL, approve_later, NULL);
  json_t *req = json_pack("{s:s}", "question", "Roll back?");
  rb_approval_decision d;
  char err[256];
  assert_int_equal(
      rb_approval_wait(dir, "run1", "act", req, 5000, 0, NULL, NULL, &d, err, sizeof err),
      0);
  pthread_join(t, NULL);
  assert_true(d.approved);
  assert_false(d.timed_out);
  assert_string_equal(d.by, "carol");
  assert_string_equal(d.comment, "looks right");
  assert_string_equal(d.via, "http");
  json_decref(d.answers);
  json_decref(req);
}

static void test_second_answer_is_refused(void **state)
{
  (void)state;
  char err[256];
  /* run1/act was approved by carol in the previous test */
  assert_int_equal(
      rb_approval_decide(dir, "run1", "act", 0, "dave", "", "http", err, sizeof err), -1);
  assert_string_equal(err, "step 'act' of run run1 was already approved by carol");
}

static void test_answer_without_request_is_refused(void **state)
{
  (void)state;
  char err[256];
  assert_int_equal(
      rb_approval_decide(dir, "nope", "act", 1, "eve", "", "http", err, sizeof err), -1);
  assert_string_equal(err, "no approval request for step 'act' of run nope");
}

static void test_silence_is_a_denial(void **state)
{
  (void)state;
  json_t *req = json_pack("{s:s}", "question", "Restart?");
  rb_approval_decision d;
  char err[256];
  assert_int_equal(rb_approval_wait(dir, "run2", "restart", req, 300, 0, NULL, NULL, &d,
                                    err, sizeof err),
                   0);
  assert_false(d.approved);
  assert_true(d.timed_out);
  assert_string_equal(d.by, "nobody");
  /* and the timeout is recorded, so a late answer is refused */
  assert_int_equal(
      rb_approval_decide(dir, "run2", "restart", 1, "late", "", "http", err, sizeof err),
      -1);
  json_decref(req);
}

static void test_path_tricks_in_ids_are_refused(void **state)
{
  (void)state;
  char err[256];
  assert_int_equal(
      rb_approval_decide(dir, "../x", "act", 1, "m", "", "http", err, sizeof err), -1);
  assert_string_equal(err, "invalid run or step id");
  assert_int_equal(
      rb_approval_decide(dir, "run1", "a/b", 1, "m", "", "http", err, sizeof err), -1);
}

static void test_pending_lists_only_undecided_requests(void **state)
{
  (void)state;
  json_t *req = json_pack("{s:s}", "question", "Scale up?");
  char err[256];
  rb_approval_decision d;
  assert_int_equal(
      rb_approval_wait(dir, "run3", "scale", req, 10, 0, NULL, NULL, &d, err, sizeof err),
      0);
  json_t *p = rb_approval_pending(dir, err, sizeof err);
  assert_non_null(p);
  /* every request so far has a decision (run3 timed out just now) */
  assert_int_equal(json_array_size(p), 0);
  json_decref(p);
  json_decref(req);
}

static int refusals, answers;

static void count_notes(void *arg, const char *event, json_t *detail)
{
  (void)arg;
  refusals += strcmp(event, "approval_refused") == 0;
  answers += strcmp(event, "approval_answered") == 0;
  json_decref(detail);
}

static int answer(const char *run, const char *who, int yes, char *msg, size_t len)
{
  rb_approval_answer a = {who, NULL, yes, "", "http", NULL};
  return rb_approval_answer_gate(dir, run, "q", &a, msg, len);
}

/* min = 2 from a group of three, one of whom started the run. */
static json_t *quorum_request(void)
{
  json_t *pol =
      json_pack("{s:i, s:[{s:s, s:[s], s:[s,s,s]}], s:b, s:s, s:[s], s:b, s:I}", "min", 2,
                "from", "by", "step 'q'", "names", "sre", "members", "alice", "bob",
                "carol", "not_self", 1, "not_self_by", "step 'q'", "self", "carol",
                "allow_as", 1, "timeout_ms", (json_int_t)5000);
  return json_pack("{s:s, s:o}", "question", "Fail over?", "policy", pol);
}

static void test_quorum_counts_distinct_allowed_identities(void **state)
{
  (void)state;
  json_t *req = quorum_request();
  char err[512];
  rb_approval_decision d;
  memset(&d, 0, sizeof d);
  assert_int_equal(rb_approval_post(dir, "run4", "q", req, 5000, err, sizeof err), 0);
  assert_int_equal(answer("run4", "alice", 1, err, sizeof err), RB_APPROVAL_OK);
  assert_string_equal(err, "1 of 2 from sre; answered: alice");
  assert_int_equal(answer("run4", "alice", 1, err, sizeof err), RB_APPROVAL_CONFLICT);
  assert_non_null(strstr(err, "alice already answered"));
  assert_int_equal(answer("run4", "mallory", 1, err, sizeof err), RB_APPROVAL_REFUSED);
  assert_string_equal(err, "refused by step 'q': mallory is not in from = [\"sre\"]");
  assert_int_equal(answer("run4", "carol", 1, err, sizeof err), RB_APPROVAL_REFUSED);
  assert_string_equal(err, "refused by step 'q' (not_self): carol started this run");
  json_t *p = rb_approval_pending(dir, err, sizeof err);
  assert_int_equal(json_array_size(p), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(p, 0), "needs")),
                      "1 of 2 from sre; answered: alice");
  json_decref(p);
  assert_int_equal(answer("run4", "bob", 1, err, sizeof err), RB_APPROVAL_OK);
  refusals = answers = 0;
  assert_int_equal(rb_approval_wait(dir, "run4", "q", req, 5000, 0, count_notes, NULL, &d,
                                    err, sizeof err),
                   0);
  assert_true(d.approved);
  assert_non_null(strstr(d.by, "alice"));
  assert_non_null(strstr(d.by, "bob"));
  assert_int_equal(json_array_size(d.answers), 2);
  assert_int_equal(answers, 2);
  assert_int_equal(refusals, 2);
  json_decref(d.answers);
  json_decref(req);
}

static void test_one_allowed_denial_denies(void **state)
{
  (void)state;
  json_t *req = quorum_request();
  char err[512];
  rb_approval_decision d;
  memset(&d, 0, sizeof d);
  assert_int_equal(rb_approval_post(dir, "run5", "q", req, 5000, err, sizeof err), 0);
  assert_int_equal(answer("run5", "alice", 1, err, sizeof err), RB_APPROVAL_OK);
  assert_int_equal(answer("run5", "bob", 0, err, sizeof err), RB_APPROVAL_OK);
  assert_int_equal(
      rb_approval_wait(dir, "run5", "q", req, 5000, 0, NULL, NULL, &d, err, sizeof err),
      0);
  assert_false(d.approved);
  assert_false(d.timed_out);
  assert_int_equal(answer("run5", "carol", 1, err, sizeof err), RB_APPROVAL_CONFLICT);
  json_decref(d.answers);
  json_decref(req);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decision_from_another_process_is_picked_up),
      cmocka_unit_test(test_second_answer_is_refused),
      cmocka_unit_test(test_answer_without_request_is_refused),
      cmocka_unit_test(test_silence_is_a_denial),
      cmocka_unit_test(test_path_tricks_in_ids_are_refused),
      cmocka_unit_test(test_pending_lists_only_undecided_requests),
      cmocka_unit_test(test_quorum_counts_distinct_allowed_identities),
      cmocka_unit_test(test_one_allowed_denial_denies),
  };
  return cmocka_run_group_tests_name("approval", tests, setup, teardown);
}
