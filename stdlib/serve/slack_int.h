/* slack_int.h: what slack.c (config, callbacks) and slack_post.c (the
 * messages and the thread that posts them) share; not for other files. */
#ifndef RB_SERVE_SLACK_INT_H
#define RB_SERVE_SLACK_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "stdlib/serve/slack.h"

/* How long a signature is remembered: the 5-minute window both ways, and
 * a minute of slack for clocks. */
#define RB_SLACK_WINDOW_S 300
#define RB_SLACK_SEEN_KEEP_S 660
/* Slack lets a response_url be used 5 times within 30 minutes. */
#define RB_SLACK_RESPONSE_USES 5
#define RB_SLACK_RESPONSE_MS (30 * 60 * 1000)

struct rb_slack {
  char *bot_token;      /* secret: registered with the redactor */
  char *secret;         /* the signing secret */
  char api[512];        /* [slack] api_url without a trailing '/' */
  char origin[512];     /* its scheme://host[:port] */
  char channel[128];    /* [slack] channel */
  char state_dir[4096]; /* the listener's */
  char dir[4200];       /* <state_dir>/serve/slack: posted/, seen/ */
  json_t *users;        /* Slack user id -> approver name */
  pthread_mutex_t mu;   /* the marks under dir/posted and the outbox */
  pthread_cond_t cv;    /* wakes the thread: stop, or something to send */
  pthread_t th;
  int started, stop, curl;
  json_t *outbox; /* [{url, body}]: answers to response_urls, in order */
  json_t *retry;  /* "run/step" -> wall ms before which a failed post waits */
  int64_t pruned_at, scanned_at; /* wall ms of the last prune, pending scan */
  struct rb_approvals_pg *pg;    /* [store] url: clicks through any replica */
};

/* The message of a gate (the request as rb_host_approval_status gives it):
 * {text, blocks}, with the buttons while it is pending. */
json_t *rb_slack_message(const json_t *req);
/* Queues body (stolen) for a POST to url, a callback's response_url. */
void rb_slack_queue(rb_slack *sl, const char *url, json_t *body);
/* The mark of a posted gate ({channel, ts, answers, response_url, ...}),
 * or NULL. Call with mu held. */
json_t *rb_slack_mark_get(const rb_slack *sl, const char *run, const char *step);
/* The same with another suffix: ".done.json" once the gate is decided. */
json_t *rb_slack_mark_read(const rb_slack *sl, const char *run, const char *step,
                           const char *suffix);
/* Replaces the mark atomically; 0 or -1. Call with mu held. */
int rb_slack_mark_put(const rb_slack *sl, const char *run, const char *step,
                      const json_t *mark);
/* 1 when url may be followed: hooks.slack.com, or api_url's own host. */
int rb_slack_url_allowed(const rb_slack *sl, const char *url);
/* The thread: posts new requests, follows answers and decisions up. */
void *rb_slack_thread(void *arg);

#endif
