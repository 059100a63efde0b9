/* mirror_pg.c: receives its runs' timeline appends, commits them to
 * rb_events and rb_runs before acknowledging, and takes over the runs of
 * replicas not heard from for [store] replica_timeout. */
#include "stdlib/serve/mirror_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"
#include "stdlib/pg/pg.h"

#define MAX_LINKS 80     /* above the serve's run cap */
#define TAKEOVER_MS 1000 /* how often dead replicas' runs are looked for */
#define RECORD_MAX (8 << 20)

typedef struct {
  int fd;
  pid_t pid;
  rb_buf in;
  char run[128];
  int ended;     /* its run recorded finished or failed */
  int resumed;   /* a run this replica took over */
  json_t *stuck; /* its failed event, to hand on once committed */
  char incident[300];
} link_t;

struct rb_mirror {
  const rb_config *cfg;
  char state_dir[4096], name[512], timeout[24];
  PGconn *c;
  pthread_t th;
  pthread_mutex_t mu; /* links, nlinks, stop */
  link_t links[MAX_LINKS];
  int nlinks, stop;
  int wake[2];
  rb_mirror_resume_fn resume;
  rb_mirror_stuck_fn stuck;
  void *resume_arg;
};

static int cmd(PGconn *c, const char *sql, int n, const char *const *v)
{
  PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
  int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK ||
                 PQresultStatus(r) == PGRES_TUPLES_OK);
  if (!ok)
    fprintf(stderr, "runbook serve: store: mirror: %s", PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* One line of a record: the event row, and the run's owner row when it is
 * the run's start or end. */
static int store_line(rb_mirror *m, link_t *l, const char *incident, const char *line)
{
  json_t *ev = json_loads(line, 0, NULL);
  if (!json_is_object(ev) || !json_is_integer(json_object_get(ev, "seq"))) {
    json_decref(ev);
    fprintf(stderr, "runbook serve: store: mirror: a line that is not a chained event\n");
    return -1;
  }
  char seq[32];
  snprintf(seq, sizeof seq, "%lld",
           (long long)json_integer_value(json_object_get(ev, "seq")));
  const char *run = json_string_value(json_object_get(ev, "run"));
  const char *kind = json_string_value(json_object_get(ev, "kind"));
  const char *event = json_string_value(json_object_get(ev, "event"));
  const char *v[3] = {incident, seq, line};
  int rc = cmd(m->c,
               "INSERT INTO rb_events (incident, seq, line) VALUES ($1, $2::bigint, $3) "
               "ON CONFLICT DO NOTHING",
               3, v);
  int is_run = run && kind && event && strcmp(kind, "run") == 0;
  if (rc == 0 && is_run && strcmp(event, "started") == 0) {
    const char *w[3] = {run, incident, m->name};
    snprintf(l->run, sizeof l->run, "%s", run);
    rc = cmd(
        m->c,
        "INSERT INTO rb_runs (run, incident, replica, state, updated_ms) VALUES ($1, "
        "$2, $3, 'running', " RB_PG_NOW_MS ") ON CONFLICT (run) DO UPDATE SET "
        "replica = EXCLUDED.replica, state = 'running', updated_ms = EXCLUDED.updated_ms",
        3, w);
  } else if (rc == 0 && is_run &&
             (strcmp(event, "finished") == 0 || strcmp(event, "failed") == 0)) {
    const char *w[2] = {run, event};
    l->ended = 1;
    if (l->resumed && strcmp(event, "failed") == 0 && l->stuck == NULL) {
      l->stuck = json_incref(ev);
      snprintf(l->incident, sizeof l->incident, "%s", incident);
    }
    rc =
        cmd(m->c,
            "UPDATE rb_runs SET state = $2, updated_ms = " RB_PG_NOW_MS " WHERE run = $1",
            2, w);
  }
  json_decref(ev);
  return rc;
}

/* A whole record: its lines in one transaction, then the acknowledgement. */
static int store_record(rb_mirror *m, link_t *l, const char *incident, char *text)
{
  int ok = cmd(m->c, "BEGIN", 0, NULL) == 0;
  for (char *line = text, *nl; ok && *line; line = nl + 1) {
    if ((nl = strchr(line, '\n')) == NULL)
      break;
    *nl = '\0';
    ok = store_line(m, l, incident, line) == 0;
  }
  ok = ok && cmd(m->c, "COMMIT", 0, NULL) == 0;
  if (!ok)
    PQclear(PQexec(m->c, "ROLLBACK"));
  char ack = ok ? 'k' : 'e';
  int sent = send(l->fd, &ack, 1, MSG_NOSIGNAL) == 1;
  if (l->stuck && ok && m->stuck) /* after the ack: the post may take seconds */
    m->stuck(m->resume_arg, l->incident, l->stuck);
  json_decref(l->stuck);
  l->stuck = NULL;
  return sent && ok ? 0 : -1;
}

/* Handles every complete record in l's buffer; -1 ends the link. */
static int drain(rb_mirror *m, link_t *l)
{
  for (;;) {
    char *buf = l->in.data, *nl = l->in.len ? memchr(buf, '\n', l->in.len) : NULL;
    char incident[300];
    size_t len;
    if (nl == NULL)
      return l->in.len > 600 ? -1 : 0;
    *nl = '\0';
    if (sscanf(buf, "RBM %299s %zu", incident, &len) != 2 || len > RECORD_MAX)
      return -1;
    size_t head = (size_t)(nl - buf) + 1;
    if (l->in.len < head + len) {
      *nl = '\n';
      return 0;
    }
    char *text = malloc(len + 1);
    if (text == NULL)
      return -1;
    memcpy(text, buf + head, len);
    text[len] = '\0';
    int rc = store_record(m, l, incident, text);
    free(text);
    memmove(buf, buf + head + len, l->in.len - head - len);
    l->in.len -= head + len;
    if (rc != 0)
      return -1;
  }
}

/* The child closed its end (ended, or died): a run it left unfinished stays
 * this replica's, stopped, for a human to resume or cancel. */
static void unlink_at(rb_mirror *m, int i)
{
  link_t *l = &m->links[i];
  if (l->run[0] && !l->ended && m->c) {
    const char *v[2] = {l->run, m->name};
    cmd(m->c,
        "UPDATE rb_runs SET state = 'stopped', updated_ms = " RB_PG_NOW_MS
        " WHERE run = $1 AND replica = $2 AND state = 'running'",
        2, v);
  }
  close(l->fd);
  json_decref(l->stuck);
  rb_buf_free(&l->in);
  pthread_mutex_lock(&m->mu);
  m->links[i] = m->links[--m->nlinks];
  pthread_mutex_unlock(&m->mu);
}

static int read_link(rb_mirror *m, link_t *l)
{
  char buf[65536];
  ssize_t n = recv(l->fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n <= 0 || rb_buf_add(&l->in, buf, (size_t)n) != 0)
    return -1;
  return drain(m, l);
}

/* Writes the store's lines of incident into this replica's state dir, so
 * `runbook resume` finds the journal where it looks. */
static int materialise(rb_mirror *m, const char *incident, char *path, size_t plen)
{
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/incidents", m->state_dir);
  if (rb_mkdirs(dir) != 0 || rb_fmt(path, plen, "%s/%s.jsonl", dir, incident) != 0)
    return -1;
  if (access(path, F_OK) == 0) {
    fprintf(stderr,
            "runbook serve: store: %s exists here already; not replacing it with the "
            "store's copy\n",
            path);
    return -1;
  }
  const char *v[1] = {incident};
  PGresult *r =
      PQexecParams(m->c, "SELECT line FROM rb_events WHERE incident = $1 ORDER BY seq", 1,
                   NULL, v, NULL, NULL, 0);
  int fd = -1, ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
  if (ok && (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
    ok = 0;
  for (int i = 0; ok && i < PQntuples(r); i++) {
    const char *line = PQgetvalue(r, i, 0);
    ok =
        write(fd, line, strlen(line)) == (ssize_t)strlen(line) && write(fd, "\n", 1) == 1;
  }
  if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0))
    ok = 0;
  PQclear(r);
  return ok ? 0 : -1;
}

/* Claims one run of a dead replica (SKIP LOCKED: two live replicas never
 * claim the same) into run/incident; 1 claimed, 0 none, -1 failed. */
static int claim_run(rb_mirror *m, char *run, char *incident, char *from, size_t len)
{
  const char *v[2] = {m->name, m->timeout};
  if (cmd(m->c, "BEGIN", 0, NULL) != 0)
    return -1;
  PGresult *r = PQexecParams(
      m->c,
      "SELECT run, incident, replica FROM rb_runs r WHERE state = 'running' AND replica "
      "<> $1 AND NOT EXISTS (SELECT 1 FROM rb_replicas p WHERE p.name = r.replica AND "
      "p.seen_ms > " RB_PG_NOW_MS " - $2::bigint) ORDER BY updated_ms LIMIT 1 FOR UPDATE "
      "SKIP LOCKED",
      2, NULL, v, NULL, NULL, 0);
  int got = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (got) {
    snprintf(run, len, "%s", PQgetvalue(r, 0, 0));
    snprintf(incident, len, "%s", PQgetvalue(r, 0, 1));
    snprintf(from, len, "%s", PQgetvalue(r, 0, 2));
  }
  PQclear(r);
  const char *w[3] = {run, m->name, from};
  if (got &&
      cmd(m->c,
          "UPDATE rb_runs SET replica = $2, taken_from = $3, updated_ms = " RB_PG_NOW_MS
          " WHERE run = $1",
          3, w) != 0)
    got = -1;
  if (cmd(m->c, got < 0 ? "ROLLBACK" : "COMMIT", 0, NULL) != 0)
    return -1;
  return got;
}

static void take_over(rb_mirror *m)
{
  char run[512], incident[512], from[512], path[4400];
  if (claim_run(m, run, incident, from, sizeof run) != 1)
    return;
  fprintf(
      stderr,
      "runbook serve: store: replica %s is gone; taking over its run %s (incident %s)\n",
      from, run, incident);
  const char *v[2] = {run, m->name};
  if (materialise(m, incident, path, sizeof path) != 0 ||
      m->resume(m->resume_arg, run) != 0) {
    fprintf(stderr, "runbook serve: store: cannot resume run %s here; it stays stopped\n",
            run);
    cmd(m->c,
        "UPDATE rb_runs SET state = 'stopped', updated_ms = " RB_PG_NOW_MS
        " WHERE run = $1 AND replica = $2",
        2, v);
  }
}

static int stopping(rb_mirror *m)
{
  pthread_mutex_lock(&m->mu);
  int s = m->stop;
  pthread_mutex_unlock(&m->mu);
  return s;
}

/* (Re)connects; while the database is away the runs' appends wait for an
 * acknowledgement that does not come, and stop. */
static int connected(rb_mirror *m)
{
  char err[512];
  if (m->c && PQstatus(m->c) == CONNECTION_OK)
    return 1;
  PQfinish(m->c);
  m->c = rb_pg_connect(m->cfg, err, sizeof err);
  return m->c != NULL;
}

/* One round: wait for input (or 250 ms), serve it, look for dead replicas. */
static void round_once(rb_mirror *m, int64_t *looked)
{
  struct pollfd p[MAX_LINKS + 1];
  pthread_mutex_lock(&m->mu);
  int n = m->nlinks;
  for (int i = 0; i < n; i++)
    p[i] = (struct pollfd){m->links[i].fd, POLLIN, 0};
  pthread_mutex_unlock(&m->mu);
  p[n] = (struct pollfd){m->wake[0], POLLIN, 0};
  if (poll(p, (nfds_t)n + 1, 250) > 0) {
    char drop[64];
    if (p[n].revents && read(m->wake[0], drop, sizeof drop) < 0) {
      /* nothing: the wake-up is only to rebuild the set */
    }
    for (int i = n - 1; i >= 0; i--)
      if (p[i].revents && read_link(m, &m->links[i]) != 0)
        unlink_at(m, i);
  }
  if (rb_now_mono_ms() - *looked >= TAKEOVER_MS) {
    *looked = rb_now_mono_ms();
    take_over(m);
  }
}

static void *loop(void *arg)
{
  rb_mirror *m = arg;
  int64_t looked = rb_now_mono_ms();
  while (!stopping(m)) {
    if (!connected(m)) {
      struct pollfd w = {m->wake[0], POLLIN, 0};
      poll(&w, 1, 1000);
      continue;
    }
    round_once(m, &looked);
  }
  return NULL;
}

int rb_mirror_pair(int *mine)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -1;
  *mine = sv[0];
  return sv[1];
}

void rb_mirror_attach(rb_mirror *m, int mine, pid_t pid, const char *run)
{
  pthread_mutex_lock(&m->mu);
  if (m->nlinks == MAX_LINKS) {
    pthread_mutex_unlock(&m->mu);
    close(mine); /* its run's first append fails: it stops */
    return;
  }
  link_t *l = &m->links[m->nlinks++];
  memset(l, 0, sizeof *l);
  l->fd = mine;
  l->pid = pid;
  rb_buf_init(&l->in, RECORD_MAX + 1024);
  if (run)
    snprintf(l->run, sizeof l->run, "%s", run);
  l->resumed = run != NULL;
  pthread_mutex_unlock(&m->mu);
  if (write(m->wake[1], "w", 1) < 0) {
    /* the pipe is full: the thread is awake anyway */
  }
}

char **rb_mirror_env(char **env)
{
  static char var[] = "RB_TIMELINE_MIRROR_FD=3";
  size_t n = 0;
  while (env[n])
    n++;
  char **out = calloc(n + 2, sizeof *out);
  if (out == NULL)
    return NULL;
  memcpy(out, env, n * sizeof *out);
  out[n] = var;
  free(env);
  return out;
}

rb_mirror *rb_mirror_start(const rb_config *cfg, const char *state_dir,
                           rb_mirror_resume_fn resume, rb_mirror_stuck_fn stuck,
                           void *arg, char *err, size_t errlen)
{
  int64_t timeout;
  if (rb_host_config_duration(cfg, "store", "replica_timeout", &timeout, err, errlen) !=
      0)
    return NULL;
  rb_mirror *m = calloc(1, sizeof *m);
  if (m == NULL || pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    free(m);
    rb_err(err, errlen, "cannot start the timeline mirror");
    return NULL;
  }
  m->cfg = cfg;
  m->resume = resume;
  m->stuck = stuck;
  m->resume_arg = arg;
  snprintf(m->state_dir, sizeof m->state_dir, "%s", state_dir);
  snprintf(m->timeout, sizeof m->timeout, "%lld", (long long)timeout);
  rb_pg_replica_name(cfg, state_dir, m->name, sizeof m->name);
  pthread_mutex_init(&m->mu, NULL);
  if (pthread_create(&m->th, NULL, loop, m) != 0) {
    close(m->wake[0]);
    close(m->wake[1]);
    pthread_mutex_destroy(&m->mu);
    free(m);
    rb_err(err, errlen, "cannot start the timeline mirror thread");
    return NULL;
  }
  return m;
}

void rb_mirror_stop(rb_mirror *m)
{
  if (m == NULL)
    return;
  pthread_mutex_lock(&m->mu);
  m->stop = 1;
  pthread_mutex_unlock(&m->mu);
  if (write(m->wake[1], "s", 1) < 0) {
    /* full: it wakes anyway */
  }
  pthread_join(m->th, NULL);
  for (int i = m->nlinks - 1; i >= 0; i--)
    unlink_at(m, i);
  PQfinish(m->c);
  close(m->wake[0]);
  close(m->wake[1]);
  pthread_mutex_destroy(&m->mu);
  free(m);
}
