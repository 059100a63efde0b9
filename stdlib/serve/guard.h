/* guard.h: the alert listener's defence against slow and hostile
 * clients, on top of libmicrohttpd's own limits: deadlines counted from a
 * connection's start, and a cap on connections not yet authenticated. */
#ifndef RB_SERVE_GUARD_H
#define RB_SERVE_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

typedef struct {
  int64_t header_ms;   /* a new connection's request headers must be complete by then */
  int64_t request_ms;  /* a whole request (and an idle keep-alive) by then */
  unsigned max_unauth; /* connections that have not yet made an authenticated request */
} rb_guard_limits;

typedef struct rb_guard rb_guard;

/* Starts the watchdog thread. NULL when it cannot. */
rb_guard *rb_guard_new(const rb_guard_limits *lim);
/* Stops the thread; call after MHD_stop_daemon. NULL-safe. */
void rb_guard_free(rb_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. A new
 * connection beyond max_unauth evicts the oldest unauthenticated one that
 * is not in the middle of a request. */
void rb_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* The request's headers arrived (first call of the access handler). */
void rb_guard_request_begins(rb_guard *g, struct MHD_Connection *c);
/* The request presented a valid credential. */
void rb_guard_authenticated(rb_guard *g, struct MHD_Connection *c);
/* The response was sent: the connection idles until its next request. */
void rb_guard_request_ends(rb_guard *g, struct MHD_Connection *c);
/* Connections closed by a deadline or evicted, for /metrics. */
void rb_guard_counts(rb_guard *g, unsigned long *deadline, unsigned long *evicted);

#endif
