/* approval.h: approval gates shared between a waiting run and whoever
 * decides: the operator's terminal, `runbook approve`, or the listener's
 * approvals endpoint. A request and a decision are files under
 * <state_dir>/approvals/<run>/, written atomically. No answer means deny. */
#ifndef RB_APPROVAL_H
#define RB_APPROVAL_H

#include <jansson.h>
#include <stdint.h>

typedef struct {
  int approved;
  int timed_out;
  int cancelled; /* the wait was stopped (signal, `runbook cancel`) */
  char by[128];
  char comment[512];
  char via[32]; /* "terminal", "command", "api", "timeout" */
} rb_approval_decision;

/* Writes the request an approver sees (<state_dir>/approvals/<run>/<step>
 * .request.json), so that `runbook approve` finds it. Returns 0 or -1. */
int rb_approval_post(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, char *err, size_t errlen);
/* Publishes `request` (unless posted already) (what the approver sees) and waits for a
 * decision until timeout_ms. When interactive, also asks on the terminal (stdin must be a
 * TTY). Returns 0 with *out filled (a timeout is a denial), or -1 with err when the
 * request cannot be written. */
int rb_approval_wait(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, int interactive,
                     rb_approval_decision *out, char *err, size_t errlen);
/* rb_approval_wait that also returns, within a quarter second, once
 * stop(arg) is non-zero: *out is then a denial with cancelled set, recorded
 * as the gate's decision (via "cancel") so the gate is no longer pending. */
int rb_approval_wait_stop(const char *state_dir, const char *run_id, const char *step_id,
                          const json_t *request, int64_t timeout_ms, int interactive,
                          int (*stop)(void *), void *stop_arg, rb_approval_decision *out,
                          char *err, size_t errlen);
/* Records a decision for a pending request. Errors when there is no such
 * pending request or it was already decided. */
int rb_approval_decide(const char *state_dir, const char *run_id, const char *step_id,
                       int approve, const char *by, const char *comment, const char *via,
                       char *err, size_t errlen);
/* Returns an array of pending requests (each the request object plus run
 * and step), or NULL with err. Caller decrefs. */
json_t *rb_approval_pending(const char *state_dir, char *err, size_t errlen);

#endif
