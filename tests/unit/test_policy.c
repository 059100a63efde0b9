/* test_policy.c: the read/write gate over its whole table (every mode, step
 * kind and operation, in a step and while loading), and the name tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "stdlib/policy.h"

/* docs/design.md "Modes: reads and writes", written out independently of
 * the implementation: what a step of this kind may do in this mode. */
static rb_gate_verdict expected(rb_mode mode, int in_step, rb_step_kind kind,
                                rb_gate_op op)
{
  int read_only = kind == RB_STEP_CHECK || kind == RB_STEP_WAIT;
  if (op == RB_OP_READ) {
    if (mode == RB_MODE_DRILL)
      return RB_GATE_REFUSE_DRILL; /* the scenario answers instead */
    if (!in_step)
      return RB_GATE_REFUSE_LOADING;
    return RB_GATE_RUN; /* exec and dry-run read for real */
  }
  if (!in_step)
    return RB_GATE_REFUSE_LOADING;
  if (read_only)
    return RB_GATE_REFUSE_READONLY;
  return mode == RB_MODE_EXEC ? RB_GATE_RUN : RB_GATE_RECORD;
}

static void test_whole_table(void **state)
{
  (void)state;
  int cells = 0;
  for (int m = 0; m < RB_MODE_COUNT; m++)
    for (int in_step = 0; in_step <= 1; in_step++)
      for (int k = 0; k <= RB_STEP_UNKNOWN; k++)
        for (int op = RB_OP_READ; op <= RB_OP_WRITE; op++) {
          rb_gate_verdict want = expected(m, in_step, k, op);
          rb_gate_verdict got = rb_gate_decide(m, in_step, k, op);
          if (want != got)
            fail_msg("mode %s, %s, kind %s, %s: want %d, got %d", rb_mode_name(m),
                     in_step ? "in a step" : "loading", rb_step_kind_name(k),
                     op == RB_OP_READ ? "read" : "write", want, got);
          cells++;
        }
  assert_int_equal(cells, 3 * 2 * 10 * 2);
}

/* The rows of the design table, spelled out for an action and a check. */
static void test_design_rows(void **state)
{
  (void)state;
  assert_int_equal(rb_gate_decide(RB_MODE_EXEC, 1, RB_STEP_ACTION, RB_OP_WRITE),
                   RB_GATE_RUN);
  assert_int_equal(rb_gate_decide(RB_MODE_DRY_RUN, 1, RB_STEP_ACTION, RB_OP_WRITE),
                   RB_GATE_RECORD);
  assert_int_equal(rb_gate_decide(RB_MODE_DRILL, 1, RB_STEP_ACTION, RB_OP_WRITE),
                   RB_GATE_RECORD);
  assert_int_equal(rb_gate_decide(RB_MODE_DRY_RUN, 1, RB_STEP_ACTION, RB_OP_READ),
                   RB_GATE_RUN);
  assert_int_equal(rb_gate_decide(RB_MODE_DRILL, 1, RB_STEP_ACTION, RB_OP_READ),
                   RB_GATE_REFUSE_DRILL);
  assert_int_equal(rb_gate_decide(RB_MODE_EXEC, 1, RB_STEP_CHECK, RB_OP_READ),
                   RB_GATE_RUN);
  assert_int_equal(rb_gate_decide(RB_MODE_EXEC, 1, RB_STEP_WAIT, RB_OP_WRITE),
                   RB_GATE_REFUSE_READONLY);
  assert_int_equal(rb_gate_decide(RB_MODE_EXEC, 1, RB_STEP_NOTIFY, RB_OP_WRITE),
                   RB_GATE_RUN);
  assert_int_equal(rb_gate_decide(RB_MODE_EXEC, 0, RB_STEP_ACTION, RB_OP_WRITE),
                   RB_GATE_REFUSE_LOADING);
}

static void test_mode_names_round_trip(void **state)
{
  (void)state;
  for (int m = 0; m < RB_MODE_COUNT; m++) {
    rb_mode out = RB_MODE_COUNT;
    assert_int_equal(rb_mode_parse(rb_mode_name(m), &out), 0);
    assert_int_equal(out, m);
  }
  assert_string_equal(rb_mode_name(RB_MODE_DRY_RUN), "dry-run");
  rb_mode keep = RB_MODE_DRY_RUN;
  assert_int_equal(rb_mode_parse("dryrun", &keep), -1);
  assert_int_equal(rb_mode_parse(NULL, &keep), -1);
  assert_int_equal(keep, RB_MODE_DRY_RUN);
  assert_string_equal(rb_mode_name(RB_MODE_COUNT), "unknown");
}

static void test_terminal_kinds(void **state)
{
  (void)state;
  for (int k = 0; k <= RB_STEP_UNKNOWN; k++) {
    int want = k == RB_STEP_RESOLVED || k == RB_STEP_ESCALATED || k == RB_STEP_ABORTED;
    assert_int_equal(rb_step_kind_is_terminal(k), want);
  }
  assert_string_equal(rb_step_kind_name(RB_STEP_UNKNOWN), "unknown");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whole_table),
      cmocka_unit_test(test_design_rows),
      cmocka_unit_test(test_mode_names_round_trip),
      cmocka_unit_test(test_terminal_kinds),
  };
  return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
