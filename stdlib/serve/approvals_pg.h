/* approvals_pg.h: approval gates answered through any replica: each replica
 * publishes its pending gates to the shared store and applies the answers
 * other replicas took for them, woken by LISTEN/NOTIFY. */
#ifndef RB_SERVE_APPROVALS_PG_H
#define RB_SERVE_APPROVALS_PG_H

#include <jansson.h>
#include <stddef.h>

#include "stdlib/rb_host.h"
#include "stdlib/serve/approvals.h"

typedef struct rb_approvals_pg rb_approvals_pg;

/* Starts the replica's gate thread (its own connection). NULL with err. */
rb_approvals_pg *rb_approvals_pg_start(const rb_config *cfg, const char *state_dir,
                                       char *err, size_t errlen);
/* Stops the thread and frees. NULL-safe. */
void rb_approvals_pg_stop(rb_approvals_pg *p);

/* An answer for a gate this replica does not hold: when another replica
 * published (run, step), the answer is handed to it and this waits (up to
 * 5 s) for its result. Returns the response body with *code, or NULL when
 * no replica holds the gate (the caller answers 404). Thread-safe. */
json_t *rb_approvals_pg_forward(rb_approvals_pg *p, const char *run, const char *step,
                                const rb_approval_answer *a, unsigned *code, char *note,
                                size_t notelen);

/* Records a Slack callback's signature as used by any replica (kept 11
 * minutes): 0 new, 1 used before (here or on another replica), -1 the
 * store could not say. Thread-safe. */
int rb_approvals_pg_slack_seen(rb_approvals_pg *p, const char *sig);

/* The replica, other than this one, that holds (run, step) and posted its
 * Slack message as (channel, ts), into out: 1 found, 0 none, -1 the store
 * could not say. Thread-safe. */
int rb_approvals_pg_slack_holder(rb_approvals_pg *p, const char *run, const char *step,
                                 const char *channel, const char *ts, char *out,
                                 size_t len);

/* Sends a's answers for gates not pending here through p. */
void rb_approvals_pg_attach(rb_approvals_pg *p, rb_approvers *a);

#endif
