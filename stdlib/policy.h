/* policy.h: the vocabulary the runner and the stdlib share, as plain C:
 * modes, step kinds, and the read/write gate policy of docs/design.md. */
#ifndef RB_POLICY_H
#define RB_POLICY_H

typedef enum { RB_MODE_EXEC = 0, RB_MODE_DRY_RUN, RB_MODE_DRILL, RB_MODE_COUNT } rb_mode;

typedef enum {
  RB_STEP_CHECK,
  RB_STEP_ACTION,
  RB_STEP_WAIT,
  RB_STEP_APPROVAL,
  RB_STEP_NOTIFY,
  RB_STEP_ESCALATE,
  RB_STEP_RESOLVED,
  RB_STEP_ESCALATED,
  RB_STEP_ABORTED,
  RB_STEP_UNKNOWN
} rb_step_kind;

/* "exec", "dry-run", "drill"; "unknown" out of range. */
const char *rb_mode_name(rb_mode m);
/* The mode for a name; -1 when s names none (or is NULL). */
int rb_mode_parse(const char *s, rb_mode *out);

const char *rb_step_kind_name(rb_step_kind k);
rb_step_kind rb_step_kind_parse(const char *s);
/* 1 for resolved, escalated and aborted: steps that end the run. */
int rb_step_kind_is_terminal(rb_step_kind k);

typedef enum { RB_OP_READ, RB_OP_WRITE } rb_gate_op;

typedef enum {
  RB_GATE_RUN,             /* perform it */
  RB_GATE_RECORD,          /* record it as would_run, perform nothing */
  RB_GATE_REFUSE_LOADING,  /* no step runs: the runbook file is being loaded */
  RB_GATE_REFUSE_READONLY, /* a write from a check or wait */
  RB_GATE_REFUSE_DRILL     /* a read in a drill, which touches no system */
} rb_gate_verdict;

/* What the host does with one operation. in_step is 0 while the runbook
 * loads (kind is then ignored). The order of the refusals is part of the
 * policy: a write while loading names loading, a read in a drill names the
 * drill even while loading. */
rb_gate_verdict rb_gate_decide(rb_mode mode, int in_step, rb_step_kind kind,
                               rb_gate_op op);

#endif
