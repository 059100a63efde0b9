/* approvals.h: the listener's approvals endpoint: approver
 * credentials from [approver.NAME] and the answers they give over HTTP. */
#ifndef RB_SERVE_APPROVALS_H
#define RB_SERVE_APPROVALS_H

#include <jansson.h>
#include <stddef.h>

#include "stdlib/rb_host.h"

typedef struct rb_approvers rb_approvers;

#define RB_APPROVERS_MAX 256

/* Reads every [approver.NAME] token. An approver token equal to the alert
 * token (alert_token may be NULL) is refused: the two credentials must be
 * distinct. NULL with err. */
rb_approvers *rb_approvers_load(const rb_config *cfg, const char *alert_token, char *err,
                                size_t errlen);
/* Wipes the tokens. NULL-safe. */
void rb_approvers_free(rb_approvers *a);
size_t rb_approvers_count(const rb_approvers *a);
/* 1 when some approver's token equals tok (compared in constant time). */
int rb_approvers_has_token(const rb_approvers *a, const char *tok);
/* The environment variables the [approver.NAME] tokens are read from, so
 * that the runs the listener starts do not inherit them: up to max names
 * into out, returns how many. */
size_t rb_approvers_env_names(const rb_config *cfg, const char **out, size_t max);

/* Where an answer for a gate not pending here goes (the shared store's
 * other replicas, approvals_pg.c): a response body with *code, or NULL for
 * the usual 404. */
typedef json_t *(*rb_approvals_forward)(void *arg, const char *run, const char *step,
                                        const rb_approval_answer *a, unsigned *code,
                                        char *note, size_t notelen);
void rb_approvers_set_forward(rb_approvers *a, rb_approvals_forward fn, void *arg);

/* GET /approvals (pending gates) and POST /approvals/RUN/STEP (an answer
 * {approve, comment, confirm} recorded as the credential's name). auth is the
 * Authorization header or NULL. Sets *code and note (for the log); returns
 * the JSON body. */
json_t *rb_approvals_http(const rb_approvers *a, const char *state_dir,
                          const char *method, const char *url, const char *auth,
                          const char *body, size_t len, unsigned *code, char *note,
                          size_t notelen);

#endif
