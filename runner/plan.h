/* plan.h: plans: what a dry-run saves (the path with its decisions, every
 * write in order, the preflights) and `exec --plan`, which follows it. */
#ifndef RB_PLAN_H
#define RB_PLAN_H

#include <jansson.h>
#include <stdio.h>

#include "runner/run.h"

/* The [plan] config section (max_age). */
extern const rb_config_section rb_config_plan;

/* What a run does with plans: records one (dry-run), follows one (exec
 * --plan), or neither. Owned by the executor (rb_exec.plan). */
typedef struct rb_plan_state rb_plan_state;

/* -- loading and checking a saved plan --------------------------------------- */

/* A plan is the document RB_PLAN_DOC of its dry-run in the run store
 * (runner/store.h; the state dir keeps it as runs/<run>.plan.json). */
#define RB_PLAN_DOC "plan.json"
/* The plan of run as saved (new reference), or NULL with err; *absent is 1
 * when the run has none. No checks: rb_plan_load_checked makes them. */
json_t *rb_plan_read(const char *state_dir, const char *run, int *absent, char *err,
                     size_t errlen);
/* Loads the plan of dry-run `run` and checks it may be executed now: it
 * exists (the run was a dry-run that finished), no preflight failed, it is
 * younger than [plan] max_age, and the runbook file still has the digest it
 * had. Returns the plan (new reference) or NULL with why in err and the
 * exit code in *code. */
json_t *rb_plan_load_checked(const char *state_dir, const rb_config *cfg, const char *run,
                             const char *runbook_path, int *code, char *err,
                             size_t errlen);
/* The --var values an exec of plan runs with: the plan's parameters. An
 * explicit var that differs from the plan's is refused (fail closed).
 * Returns a new object of name -> text, or NULL with err. */
json_t *rb_plan_vars(const json_t *plan, const json_t *explicit_vars, char *err,
                     size_t errlen);
/* Compares a fresh dry-run's plan with the saved one: path (steps and
 * branches taken, notify/escalate as recorded) and writes. Returns 0 when
 * equal, else 1 with the first difference, plan vs now, in diff. */
int rb_plan_diff(const json_t *plan, const json_t *now, char *diff, size_t len);

/* The SHA-256 of a file's bytes (the runbook's digest). Returns 0 or -1. */
int rb_plan_file_digest(const char *path, char hex[65]);
/* One readable line for a write or a path entry of a plan. */
void rb_plan_write_line(const json_t *w, char *out, size_t len);
void rb_plan_step_line(const json_t *e, char *out, size_t len);
/* The writes a would_run (dry-run) or started (exec) event describes, in
 * the form plans keep and compare (each with its digest). New array. */
json_t *rb_plan_writes_of(const char *step, const char *run, const json_t *detail);
/* A copy of v whose strings have run's id written as {run}: a write or a
 * status update that names its own run is the same in the plan and now. */
json_t *rb_plan_neutral(const json_t *v, const char *run);

/* exec --plan (o->plan set): a dry-run pass that must reproduce the plan,
 * then the real run following it. Returns the exit code. */
int rb_plan_execute(const rb_run_opts *o);

/* For `runbook approvals`: the plan lines of a pending request, if any. */
void rb_plan_print_request(const json_t *req, FILE *out);

#endif
