/* test_model.c: the step-graph validator: each rule of `runbook check`
 * produces exactly one problem naming file:line and the step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/model.h"

/* A valid three-step graph: a check branching to an action or an outcome. */
static rb_model *valid_model(void)
{
  rb_model *m = rb_model_new("rb.lua");
  m->name = strdup("demo");
  m->title = strdup("Demo");
  m->start = strdup("look");
  m->line = 1;
  rb_step *s = rb_model_add_step(m, "look");
  s->kind = RB_STEP_CHECK;
  s->title = strdup("Look?");
  s->line = 5;
  s->has_run = 1;
  rb_step_add_branch(s, "true", "fix");
  rb_step_add_branch(s, "false", "done");
  s = rb_model_add_step(m, "fix");
  s->kind = RB_STEP_ACTION;
  s->title = strdup("Fix");
  s->line = 10;
  s->has_run = 1;
  s->next = strdup("done");
  s = rb_model_add_step(m, "done");
  s->kind = RB_STEP_RESOLVED;
  s->title = strdup("Done");
  s->line = 15;
  return m;
}

static void expect_one(rb_model *m, const char *needle)
{
  char out[2048];
  int n = rb_model_validate(m, out, sizeof out);
  if (n != 1 || strstr(out, needle) == NULL)
    fail_msg("want 1 problem containing \"%s\", got %d:\n%s", needle, n, out);
  rb_model_free(m);
}

static void test_valid_graph_has_no_problems(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  char out[1024];
  assert_int_equal(rb_model_validate(m, out, sizeof out), 0);
  assert_string_equal(out, "");
  rb_model_free(m);
}

static void test_missing_start_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->start);
  m->start = NULL;
  /* Without a start nothing is reachable, but only the start is blamed. */
  char out[2048];
  int n = rb_model_validate(m, out, sizeof out);
  assert_int_equal(n, 1);
  assert_non_null(strstr(out, "rb.lua:1: runbook has no start step"));
  rb_model_free(m);
}

static void test_unknown_start_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->start);
  m->start = strdup("lok");
  char out[2048];
  int n = rb_model_validate(m, out, sizeof out);
  assert_true(n >= 1);
  assert_non_null(strstr(out, "rb.lua:1: start goes to unknown step 'lok'"));
  rb_model_free(m);
}

static void test_branch_to_unknown_step_names_file_line_and_step(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->steps[0].branches[0].target);
  m->steps[0].branches[0].target = strdup("fxi");
  /* fix becomes unreachable too: two problems, the branch one first */
  char out[2048];
  int n = rb_model_validate(m, out, sizeof out);
  assert_int_equal(n, 2);
  assert_non_null(
      strstr(out, "rb.lua:5: step 'look': branch 'true' goes to unknown step 'fxi'"));
  assert_non_null(
      strstr(out, "rb.lua:10: step 'fix': is unreachable from start step 'look'"));
  rb_model_free(m);
}

static void test_unreachable_step_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  rb_step *s = rb_model_add_step(m, "orphan");
  s->kind = RB_STEP_ABORTED;
  s->title = strdup("Orphan");
  s->line = 20;
  expect_one(m, "rb.lua:20: step 'orphan': is unreachable from start step 'look'");
}

static void test_check_without_false_branch_or_default_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->steps[0].branches[1].key);
  m->steps[0].branches[1].key = strdup("maybe");
  expect_one(m, "rb.lua:5: step 'look': check branches must cover both true and false");
}

static void test_check_with_default_only_is_valid(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->steps[0].branches[1].key);
  m->steps[0].branches[1].key = strdup("default");
  free(m->steps[0].branches[0].key);
  m->steps[0].branches[0].key = strdup("rollback");
  assert_int_equal(rb_model_validate(m, NULL, 0), 0);
  rb_model_free(m);
}

static void test_step_without_title_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->steps[1].title);
  m->steps[1].title = NULL;
  expect_one(m, "rb.lua:10: step 'fix': has no title");
}

static void test_action_without_next_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->steps[1].next);
  m->steps[1].next = NULL;
  expect_one(m, "step 'fix': has no next step");
}

static void test_action_without_run_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  m->steps[1].has_run = 0;
  expect_one(m, "step 'fix': action has no run function");
}

static void test_terminal_step_with_next_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  m->steps[2].next = strdup("look");
  expect_one(m, "step 'done': is a resolved step and ends the run");
}

static void test_on_error_to_unknown_step_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  m->steps[1].on_error = strdup("nowhere");
  expect_one(m, "step 'fix': on_error goes to unknown step 'nowhere'");
}

static void test_unknown_kind_is_reported(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  m->steps[1].kind = RB_STEP_UNKNOWN;
  expect_one(m, "step 'fix': unknown step kind");
}

static void test_wait_needs_both_outcomes(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  m->steps[1].kind = RB_STEP_WAIT;
  free(m->steps[1].next);
  m->steps[1].next = NULL;
  rb_step_add_branch(&m->steps[1], "true", "done");
  expect_one(m, "step 'fix': wait branches must cover true (condition met) and false");
}

static void test_steps_reached_only_through_on_error_are_reachable(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  rb_step *s = rb_model_add_step(m, "cleanup");
  s->kind = RB_STEP_ESCALATED;
  s->title = strdup("Hand over");
  m->steps[1].on_error = strdup("cleanup");
  assert_int_equal(rb_model_validate(m, NULL, 0), 0);
  rb_model_free(m);
}

static void test_cycles_are_allowed(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  free(m->steps[1].next);
  m->steps[1].next = strdup("look"); /* retry loop: fix, then look again */
  assert_int_equal(rb_model_validate(m, NULL, 0), 0);
  rb_model_free(m);
}

static void test_branch_lookup_falls_back_to_default(void **state)
{
  (void)state;
  rb_model *m = valid_model();
  rb_step_add_branch(&m->steps[0], "default", "done");
  assert_string_equal(rb_step_branch(&m->steps[0], "true"), "fix");
  assert_string_equal(rb_step_branch(&m->steps[0], "other"), "done");
  rb_model_free(m);
}

static void test_kind_names_round_trip(void **state)
{
  (void)state;
  for (int k = 0; k < RB_STEP_UNKNOWN; k++)
    assert_int_equal(rb_step_kind_parse(rb_step_kind_name((rb_step_kind)k)), k);
  assert_int_equal(rb_step_kind_parse("chek"), RB_STEP_UNKNOWN);
  assert_int_equal(rb_step_kind_parse(NULL), RB_STEP_UNKNOWN);
}

static void test_large_graph_validates(void **state)
{
  (void)state;
  rb_model *m = rb_model_new("big.lua");
  m->name = strdup("big");
  m->title = strdup("Big");
  m->start = strdup("s0");
  char id[32], next[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof id, "s%d", i);
    rb_step *s = rb_model_add_step(m, id);
    s->title = strdup(id);
    s->line = i + 1;
    if (i == 4999) {
      s->kind = RB_STEP_RESOLVED;
    } else {
      s->kind = RB_STEP_ACTION;
      s->has_run = 1;
      snprintf(next, sizeof next, "s%d", i + 1);
      s->next = strdup(next);
    }
  }
  assert_int_equal(rb_model_validate(m, NULL, 0), 0);
  rb_model_free(m);
}

static void test_outcome_names_round_trip(void **state)
{
  (void)state;
  for (int o = RB_OUTCOME_RESOLVED; o < RB_OUTCOME_COUNT; o++)
    assert_int_equal(rb_outcome_parse(rb_outcome_name(o)), o);
  assert_string_equal(rb_outcome_name(RB_OUTCOME_NONE), "");
  assert_int_equal(rb_outcome_parse("resolve"), RB_OUTCOME_NONE);
  assert_int_equal(rb_outcome_parse(NULL), RB_OUTCOME_NONE);
  assert_int_equal(rb_step_kind_outcome(RB_STEP_ESCALATED), RB_OUTCOME_ESCALATED);
  assert_int_equal(rb_step_kind_outcome(RB_STEP_ABORTED), RB_OUTCOME_ABORTED);
  assert_int_equal(rb_step_kind_outcome(RB_STEP_RESOLVED), RB_OUTCOME_RESOLVED);
  assert_int_equal(rb_step_kind_outcome(RB_STEP_ACTION), RB_OUTCOME_NONE);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_graph_has_no_problems),
      cmocka_unit_test(test_missing_start_is_reported),
      cmocka_unit_test(test_unknown_start_is_reported),
      cmocka_unit_test(test_branch_to_unknown_step_names_file_line_and_step),
      cmocka_unit_test(test_unreachable_step_is_reported),
      cmocka_unit_test(test_check_without_false_branch_or_default_is_reported),
      cmocka_unit_test(test_check_with_default_only_is_valid),
      cmocka_unit_test(test_step_without_title_is_reported),
      cmocka_unit_test(test_action_without_next_is_reported),
      cmocka_unit_test(test_action_without_run_is_reported),
      cmocka_unit_test(test_terminal_step_with_next_is_reported),
      cmocka_unit_test(test_on_error_to_unknown_step_is_reported),
      cmocka_unit_test(test_unknown_kind_is_reported),
      cmocka_unit_test(test_wait_needs_both_outcomes),
      cmocka_unit_test(test_steps_reached_only_through_on_error_are_reachable),
      cmocka_unit_test(test_cycles_are_allowed),
      cmocka_unit_test(test_branch_lookup_falls_back_to_default),
      cmocka_unit_test(test_kind_names_round_trip),
      cmocka_unit_test(test_large_graph_validates),
      cmocka_unit_test(test_outcome_names_round_trip),
  };
  return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
