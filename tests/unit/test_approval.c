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
    if (rb_approval_decide(dir, "run1", "act", 1, "carol", "looks right", "command", err,
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
      rb_approval_wait(dir, "run1", "act", req, 5000, 0, &d, err, sizeof err), 0);
  pthread_join(t, NULL);
  assert_true(d.approved);
  assert_false(d.timed_out);
  assert_string_equal(d.by, "carol");
  assert_string_equal(d.comment, "looks right");
  assert_string_equal(d.via, "command");
  json_decref(req);
}

static void test_second_answer_is_refused(void **state)
{
  (void)state;
  char err[256];
  /* run1/act was approved by carol in the previous test */
  assert_int_equal(
      rb_approval_decide(dir, "run1", "act", 0, "dave", "", "command", err, sizeof err),
      -1);
  assert_string_equal(err, "step 'act' of run run1 was already approved by carol");
}

static void test_answer_without_request_is_refused(void **state)
{
  (void)state;
  char err[256];
  assert_int_equal(
      rb_approval_decide(dir, "nope", "act", 1, "eve", "", "command", err, sizeof err),
      -1);
  assert_string_equal(err, "no approval request for step 'act' of run nope");
}

static void test_silence_is_a_denial(void **state)
{
  (void)state;
  json_t *req = json_pack("{s:s}", "question", "Restart?");
  rb_approval_decision d;
  char err[256];
  assert_int_equal(
      rb_approval_wait(dir, "run2", "restart", req, 300, 0, &d, err, sizeof err), 0);
  assert_false(d.approved);
  assert_true(d.timed_out);
  assert_string_equal(d.by, "nobody");
  /* and the timeout is recorded, so a late answer is refused */
  assert_int_equal(rb_approval_decide(dir, "run2", "restart", 1, "late", "", "command",
                                      err, sizeof err),
                   -1);
  json_decref(req);
}

static void test_path_tricks_in_ids_are_refused(void **state)
{
  (void)state;
  char err[256];
  assert_int_equal(
      rb_approval_decide(dir, "../x", "act", 1, "m", "", "command", err, sizeof err), -1);
  assert_string_equal(err, "invalid run or step id");
  assert_int_equal(
      rb_approval_decide(dir, "run1", "a/b", 1, "m", "", "command", err, sizeof err), -1);
}

static void test_pending_lists_only_undecided_requests(void **state)
{
  (void)state;
  json_t *req = json_pack("{s:s}", "question", "Scale up?");
  char err[256];
  rb_approval_decision d;
  assert_int_equal(
      rb_approval_wait(dir, "run3", "scale", req, 10, 0, &d, err, sizeof err), 0);
  json_t *p = rb_approval_pending(dir, err, sizeof err);
  assert_non_null(p);
  /* every request so far has a decision (run3 timed out just now) */
  assert_int_equal(json_array_size(p), 0);
  json_decref(p);
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
  };
  return cmocka_run_group_tests_name("approval", tests, setup, teardown);
}
