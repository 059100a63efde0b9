/* slack.h: approvals from Slack: the listener posts each pending gate to the
 * [slack] channel with Approve / Deny buttons and takes the signed clicks. */
#ifndef RB_SERVE_SLACK_H
#define RB_SERVE_SLACK_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "stdlib/rb_host.h"
#include "stdlib/serve/approvals.h"

typedef struct rb_slack rb_slack;

/* Reads [slack] and every [approver.NAME] slack_user. NULL with *bad = 0
 * when there is no [slack] section; NULL with *bad = 1 and err when it is
 * incomplete (channel, bot_token and signing_secret are all required), a
 * slack_user is malformed or given twice, or the signing secret equals one
 * of others[] (the listener's other credentials) or an approver's token. */
rb_slack *rb_slack_new(const rb_config *cfg, const char *state_dir,
                       const char *const *others, size_t nothers, const rb_approvers *ap,
                       int *bad, char *err, size_t errlen);
/* Starts the thread that posts requests and follows them up; 0 or -1. */
int rb_slack_start(rb_slack *sl);
/* Stops the thread and wipes the secrets. NULL-safe. */
void rb_slack_free(rb_slack *sl);

/* The Slack signature of a request: "v0=" and the hex HMAC-SHA256 of
 * "v0:TS:BODY" keyed with secret, into out (at least 68 bytes). 0 or -1. */
int rb_slack_sign(const char *secret, const char *ts, const void *body, size_t len,
                  char *out, size_t outlen);
enum { RB_SLACK_OK = 0, RB_SLACK_BAD_SIGNATURE = -1, RB_SLACK_STALE = -2 };
/* Checks the X-Slack-Signature sig over ts and body in constant time, then
 * that ts is within 5 minutes of now_s either way. RB_SLACK_*. */
int rb_slack_verify(const char *secret, const char *ts, const char *sig, const void *body,
                    size_t len, int64_t now_s);

/* POST /slack/actions: one interactive callback. ctype, ts and sig are the
 * Content-Type, X-Slack-Request-Timestamp and X-Slack-Signature headers
 * (NULL when absent). Sets *code, *authed (the signature held) and note
 * (for the log); returns the JSON body, or NULL for an empty 200. */
json_t *rb_slack_http(rb_slack *sl, const char *method, const char *ctype, const char *ts,
                      const char *sig, const char *body, size_t len, unsigned *code,
                      int *authed, char *note, size_t notelen);

struct rb_approvals_pg;
/* With [store] url: used signatures are shared by the replicas, and a click
 * on a message another replica posted is answered through the store. */
void rb_slack_set_store(rb_slack *sl, struct rb_approvals_pg *pg);

/* The environment variables [slack] reads its secrets from (as configured),
 * so that the listener keeps them from the runs it starts: up to max names
 * into out, returns how many. */
size_t rb_slack_env_names(const rb_config *cfg, const char **out, size_t max);

#endif
