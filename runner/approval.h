/* approval.h: approval gates shared between a waiting run and whoever
 * answers: the operator's terminal, `runbook approve`, or the listener's
 * approvals endpoint. A request, one answer per identity and the decision
 * are files under <state_dir>/approvals/<run>/. No decision means deny. */
#ifndef RB_APPROVAL_H
#define RB_APPROVAL_H

#include <jansson.h>
#include <stdint.h>

#include "runner/config.h"
#include "runner/model.h"

typedef struct {
  int approved;
  int timed_out;
  int cancelled; /* the wait was stopped (signal, `runbook cancel`) */
  char by[128];
  char comment[512];
  char via[32];    /* "terminal", "cli", "http", "slack", "timeout" */
  json_t *answers; /* the answers it was made of, or NULL; caller decrefs */
} rb_approval_decision;

/* rb_approval_answer and the RB_APPROVAL_* results are part of the host
 * interface (stdlib/rb_host.h): the listener answers gates through it. */

/* The waiter reports each answer and refusal it sees (detail stolen). */
typedef void (*rb_approval_note_fn)(void *arg, const char *event, json_t *detail);

/* The account of the real uid (getpwuid, not $USER), or "uid:N". */
const char *rb_approval_account(void);

/* The policy of a gate as JSON (kept in the request and by the waiter):
 * config [approvals.SEVERITY], the runbook's approval_policy and the
 * step's approval table combined so that each holds; groups expanded.
 * self: the identities not_self refuses. NULL with err on a bad policy. */
json_t *rb_approval_policy_build(const rb_config *cfg, const rb_model *m,
                                 const rb_step *s, const json_t *self,
                                 int64_t default_timeout_ms, char *err, size_t errlen);
/* 0 when identity may answer under pol (NULL = anyone), else -1 with why,
 * which names the policy that refuses. */
int rb_approval_policy_check(const json_t *pol, const char *identity, int labelled,
                             char *why, size_t len);
/* What the gate still needs: "1 of 2 from sre; answered: alice". */
void rb_approval_policy_needs(const json_t *pol, const json_t *answers, char *out,
                              size_t len);

/* Writes the request an approver sees (<state_dir>/approvals/<run>/<step>
 * .request.json), so that `runbook approve` finds it. Returns 0 or -1. */
int rb_approval_post(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, char *err, size_t errlen);
/* Publishes `request` (unless posted already) and waits until its
 * "policy" is met (or denied) or timeout_ms passes, counting the answer
 * files; only the waiter writes the decision, with link() so the first
 * final decision wins. When interactive, also asks on the terminal (stdin
 * a TTY). note (may be NULL) hears every answer and refusal. Returns 0
 * with *out (a timeout is a denial), or -1 with err. */
int rb_approval_wait(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, int interactive,
                     rb_approval_note_fn note, void *arg, rb_approval_decision *out,
                     char *err, size_t errlen);
/* rb_approval_wait that also returns, within a quarter second, once
 * stop(arg) is non-zero: *out is then a denial with cancelled set, recorded
 * as the gate's decision (via "cancel") so the gate is no longer pending. */
int rb_approval_wait_stop(const char *state_dir, const char *run_id, const char *step_id,
                          const json_t *request, int64_t timeout_ms, int interactive,
                          rb_approval_note_fn note, void *arg, int (*stop)(void *),
                          void *stop_arg, rb_approval_decision *out, char *err,
                          size_t errlen);
/* Records one answer to a pending request, checked against the policy
 * the request carries. Returns RB_APPROVAL_OK with what the gate still
 * needs in msg, or another RB_APPROVAL_* with the reason in msg. A refusal
 * is left for the waiter to put on the timeline. */
int rb_approval_answer_gate(const char *state_dir, const char *run_id,
                            const char *step_id, const rb_approval_answer *a, char *msg,
                            size_t msglen);
/* rb_approval_answer_gate with identity `by` and no label; 0 or -1. */
int rb_approval_decide(const char *state_dir, const char *run_id, const char *step_id,
                       int approve, const char *by, const char *comment, const char *via,
                       char *err, size_t errlen);
/* rb_host_approval_refuse and rb_host_approval_status (stdlib/rb_host.h). */
int rb_approval_refuse(const char *state_dir, const char *run_id, const char *step_id,
                       const rb_approval_answer *a, const char *why, char *msg,
                       size_t msglen);
json_t *rb_approval_status(const char *state_dir, const char *run_id, const char *step_id,
                           char *err, size_t errlen);
/* 0 when a may answer a gate whose policy is pol as far as `confirm` goes
 * (a denial, or the right word), else -1 with why naming the layer. */
int rb_approval_confirm_check(const json_t *pol, const rb_approval_answer *a, char *why,
                              size_t len);
/* Returns an array of pending requests (each the request object plus run,
 * step, the answers so far and "needs"), or NULL with err. Caller decrefs. */
json_t *rb_approval_pending(const char *state_dir, char *err, size_t errlen);

#endif
