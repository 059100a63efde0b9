/* model.h: a runbook's step graph as plain data, and the validator that
 * `runbook check` and every run use before anything executes. No Lua here:
 * the loader fills the model from the runbook's table. */
#ifndef RB_MODEL_H
#define RB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "stdlib/policy.h"

/* An outcome: how a run (or a step that ends it) ends. NONE: not ended. */
typedef enum {
  RB_OUTCOME_NONE = 0,
  RB_OUTCOME_RESOLVED,
  RB_OUTCOME_ESCALATED,
  RB_OUTCOME_ABORTED,
  RB_OUTCOME_FAILED,
  RB_OUTCOME_COUNT
} rb_outcome;

typedef struct {
  char *key;    /* "true", "false", "approved", "denied", a string value, "default" */
  char *target; /* step id */
} rb_branch;

/* Who may answer a gate, as written in a runbook (`approval_policy` or a
 * step's `approval = { ... }`) or a config [approvals.NAME] section. Zero
 * or NULL means "not set here"; approval_policy.c combines the layers. */
typedef struct {
  int min;            /* distinct approvers needed */
  int not_self;       /* 0 = not set, 1 = false, 2 = true */
  int allow_as;       /* 0 = not set, 1 = false, 2 = true: `--as LABEL` accepted */
  int64_t timeout_ms; /* no answer by then is a deny */
  char *confirm;      /* the word a terminal approver types instead of `yes` */
  char **from;        /* accounts, approver names or groups allowed to answer */
  size_t nfrom;
} rb_approval_policy;

/* Frees what p holds (not p) and zeroes it. NULL-safe. */
void rb_approval_policy_clear(rb_approval_policy *p);

typedef struct {
  char *id;
  rb_step_kind kind;
  char *title;
  int line;       /* where the step was declared, 0 when unknown */
  char *next;     /* action/notify/escalate/approval: the step after */
  char *on_error; /* where a failure goes instead of ending the run */
  rb_branch *branches;
  size_t nbranches;
  int64_t timeout_ms;        /* 0 = the default */
  int64_t every_ms;          /* wait: poll interval */
  int has_run;               /* check/action: a run function; wait: a condition */
  int approval;              /* action: gated by an approval */
  int idempotent;            /* action: safe to re-run when in doubt on resume */
  rb_approval_policy policy; /* action/approval: the gate's own policy */
} rb_step;

typedef enum {
  RB_PARAM_STRING,
  RB_PARAM_NUMBER,
  RB_PARAM_INTEGER,
  RB_PARAM_BOOLEAN,
  RB_PARAM_DURATION,
  RB_PARAM_ENUM
} rb_param_type;

typedef struct {
  char *name;
  char *def; /* default value as text, or NULL */
  char *description;
  int is_required; /* must be given with --var (or by the alert) */
  rb_param_type type;
  char **choices; /* enum: the accepted values */
  size_t nchoices;
  char *pattern; /* POSIX extended regex the whole value must match, or NULL */
} rb_param;

typedef struct {
  char *file;
  char *name;
  char *title;
  char *description;
  char *start;
  char *severity;            /* selects config [approvals.SEVERITY], or NULL */
  rb_approval_policy policy; /* approval_policy: every gate of the runbook */
  int line;                  /* of the runbook { } call */
  rb_step *steps;
  size_t nsteps, cap_steps;
  rb_param *params;
  size_t nparams;
  rb_step **by_id; /* sorted by id for rb_model_find; built by rb_model_index */
} rb_model;

/* "resolved", "escalated", "aborted", "failed"; "" for NONE. */
const char *rb_outcome_name(rb_outcome o);
/* The outcome for a name; RB_OUTCOME_NONE when s names none. */
rb_outcome rb_outcome_parse(const char *s);
/* The outcome a terminal step ends the run with; NONE for other kinds. */
rb_outcome rb_step_kind_outcome(rb_step_kind k);
const char *rb_param_type_name(rb_param_type t);
/* Returns 0 and sets *out for "string", "number", ...; -1 for anything else. */
int rb_param_type_parse(const char *s, rb_param_type *out);

rb_model *rb_model_new(const char *file);
/* NULL-safe. */
void rb_model_free(rb_model *m);
/* Appends a zeroed step with a copy of id and returns it (owned by m). */
rb_step *rb_model_add_step(rb_model *m, const char *id);
rb_param *rb_model_add_param(rb_model *m, const char *name);
int rb_step_add_branch(rb_step *s, const char *key, const char *target);
rb_step *rb_model_find(const rb_model *m, const char *id);
/* Builds the id index that makes rb_model_find O(log n); adding a step
 * drops it. Call once the steps are loaded. Returns 0 or -1 (no memory:
 * lookups stay linear). */
int rb_model_index(rb_model *m);
const rb_param *rb_model_find_param(const rb_model *m, const char *name);
/* The branch target for key, falling back to "default"; NULL if none. */
const char *rb_step_branch(const rb_step *s, const char *key);

/* Checks the graph. Each problem is one line "file:line: step 'id': what" in
 * out (newline separated, truncated to len). Returns the number of problems
 * (0 = valid). Problems: no name, no start or an unknown start, a step
 * without a title, an unknown kind, a branch/next/on_error to an unknown
 * step, a step unreachable from start, a check whose branches cover neither
 * both true and false nor a default, a wait without true and false, a
 * non-terminal step with no way forward, a check/action/wait without run. */
int rb_model_validate(const rb_model *m, char *out, size_t len);

#endif
