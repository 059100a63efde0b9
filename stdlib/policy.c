/* policy.c: names of modes and step kinds, and the read/write gate as a pure
 * function of mode, step kind and operation (tests/unit/test_policy.c). */
#include "stdlib/policy.h"

#include <string.h>

static const char *const mode_names[RB_MODE_COUNT] = {"exec", "dry-run", "drill"};

static const char *const kind_names[RB_STEP_UNKNOWN] = {
    "check",    "action",   "wait",      "approval", "notify",
    "escalate", "resolved", "escalated", "aborted"};

const char *rb_mode_name(rb_mode m)
{
  return m >= 0 && m < RB_MODE_COUNT ? mode_names[m] : "unknown";
}

int rb_mode_parse(const char *s, rb_mode *out)
{
  for (int m = 0; s && m < RB_MODE_COUNT; m++)
    if (strcmp(s, mode_names[m]) == 0) {
      *out = (rb_mode)m;
      return 0;
    }
  return -1;
}

const char *rb_step_kind_name(rb_step_kind k)
{
  return k >= 0 && k < RB_STEP_UNKNOWN ? kind_names[k] : "unknown";
}

rb_step_kind rb_step_kind_parse(const char *s)
{
  for (int k = 0; s && k < RB_STEP_UNKNOWN; k++)
    if (strcmp(s, kind_names[k]) == 0)
      return (rb_step_kind)k;
  return RB_STEP_UNKNOWN;
}

int rb_step_kind_is_terminal(rb_step_kind k)
{
  return k == RB_STEP_RESOLVED || k == RB_STEP_ESCALATED || k == RB_STEP_ABORTED;
}

rb_gate_verdict rb_gate_decide(rb_mode mode, int in_step, rb_step_kind kind,
                               rb_gate_op op)
{
  if (op == RB_OP_READ) {
    if (mode == RB_MODE_DRILL)
      return RB_GATE_REFUSE_DRILL;
    return in_step ? RB_GATE_RUN : RB_GATE_REFUSE_LOADING;
  }
  if (!in_step)
    return RB_GATE_REFUSE_LOADING;
  if (kind == RB_STEP_CHECK || kind == RB_STEP_WAIT)
    return RB_GATE_REFUSE_READONLY;
  return mode == RB_MODE_EXEC ? RB_GATE_RUN : RB_GATE_RECORD;
}
