/* guard.c: per-connection deadlines from the connection's start and
 * a cap on unauthenticated connections, enforced by a watchdog thread. */
#include "stdlib/serve/guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "runner/base/util.h"

/* libmicrohttpd's connection timeout only fires on an idle connection, so
 * a client sending one header line every few seconds holds a slot forever
 * (slowloris). The guard records when each connection (or its current
 * request) began and shuts the socket down when a deadline passes;
 * libmicrohttpd then sees the end of the stream and closes it itself. */

enum { WAITING, IN_REQUEST, IDLE }; /* stage of a connection */

typedef struct conn {
  struct conn *prev, *next;
  int fd;
  int stage;
  int authed; /* has made an authenticated request */
  int shut;   /* shut down by the guard, waiting for libmicrohttpd to close it */
  int64_t since_ms;
} conn;

struct rb_guard {
  rb_guard_limits lim;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int stop;
  conn *head; /* oldest first */
  conn *tail;
  unsigned long by_deadline, evicted;
};

static void cut(conn *k)
{
  if (!k->shut) {
    shutdown(k->fd, SHUT_RDWR);
    k->shut = 1;
  }
}

static int64_t deadline_of(const rb_guard *g, const conn *k)
{
  return k->since_ms + (k->stage == WAITING ? g->lim.header_ms : g->lim.request_ms);
}

static void *watch(void *arg)
{
  rb_guard *g = arg;
  pthread_mutex_lock(&g->mu);
  while (!g->stop) {
    int64_t now = rb_now_mono_ms();
    for (conn *k = g->head; k; k = k->next)
      if (!k->shut && now >= deadline_of(g, k)) {
        cut(k);
        g->by_deadline++;
      }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

rb_guard *rb_guard_new(const rb_guard_limits *lim)
{
  rb_guard *g = calloc(1, sizeof *g);
  if (g == NULL)
    return NULL;
  g->lim = *lim;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  /* the watchdog takes no signal: SIGTERM and SIGCHLD are the main thread's
   * (sigtimedwait), and one delivered here would kill the listener */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&g->thread, NULL, watch, g);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return NULL;
  }
  return g;
}

void rb_guard_free(rb_guard *g)
{
  if (g == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  g->stop = 1;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->mu);
  pthread_join(g->thread, NULL);
  for (conn *k = g->head, *n; k; k = n) {
    n = k->next;
    free(k);
  }
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  free(g);
}

/* The oldest connection that is unauthenticated and not mid-request. */
static void evict_if_full(rb_guard *g, const conn *fresh)
{
  unsigned n = 0;
  conn *oldest = NULL;
  for (conn *k = g->head; k; k = k->next) {
    if (k == fresh || k->shut || k->authed || k->stage == IN_REQUEST)
      continue;
    n++;
    if (oldest == NULL)
      oldest = k;
  }
  if (n >= g->lim.max_unauth && oldest) {
    cut(oldest);
    g->evicted++;
  }
}

void rb_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
  rb_guard *g = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn *k = calloc(1, sizeof *k);
    *socket_context = k;
    if (k == NULL || ci == NULL) {
      free(k);
      *socket_context = NULL;
      return;
    }
    k->fd = ci->connect_fd;
    k->stage = WAITING;
    k->since_ms = rb_now_mono_ms();
    pthread_mutex_lock(&g->mu);
    k->prev = g->tail;
    if (g->tail)
      g->tail->next = k;
    else
      g->head = k;
    g->tail = k;
    evict_if_full(g, k);
    pthread_mutex_unlock(&g->mu);
    return;
  }
  /* closed: libmicrohttpd closes the socket after this returns */
  conn *k = *socket_context;
  if (k == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  if (k->prev)
    k->prev->next = k->next;
  else
    g->head = k->next;
  if (k->next)
    k->next->prev = k->prev;
  else
    g->tail = k->prev;
  pthread_mutex_unlock(&g->mu);
  free(k);
  *socket_context = NULL;
}

static conn *conn_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

void rb_guard_request_begins(rb_guard *g, struct MHD_Connection *c)
{
  conn *k = conn_of(c);
  if (k == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  /* a keep-alive request: its deadline counts from the end of the last */
  k->stage = IN_REQUEST;
  pthread_mutex_unlock(&g->mu);
}

void rb_guard_authenticated(rb_guard *g, struct MHD_Connection *c)
{
  conn *k = conn_of(c);
  if (k == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  k->authed = 1;
  pthread_mutex_unlock(&g->mu);
}

void rb_guard_request_ends(rb_guard *g, struct MHD_Connection *c)
{
  conn *k = conn_of(c);
  if (k == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  k->stage = IDLE;
  k->since_ms = rb_now_mono_ms();
  pthread_mutex_unlock(&g->mu);
}

void rb_guard_counts(rb_guard *g, unsigned long *deadline, unsigned long *evicted)
{
  pthread_mutex_lock(&g->mu);
  *deadline = g->by_deadline;
  *evicted = g->evicted;
  pthread_mutex_unlock(&g->mu);
}
