/* approvals_pg.c: the gates of every replica in rb_gates, answers taken by
 * one replica for another's gate in rb_answers, applied by the holder. */
#include "stdlib/serve/approvals_pg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "stdlib/pg/pg.h"

#define PUBLISH_MS 1000  /* how often the replica's gates are published */
#define FRESH_MS "10000" /* a gate row older than this is a dead replica's */
#define FORWARD_WAIT_MS 5000

struct rb_approvals_pg {
  const rb_config *cfg;
  char state_dir[4096];
  char name[512];
  PGconn *c; /* the thread's */
  pthread_t th;
  pthread_mutex_t mu; /* guards stop */
  int stop;
};

static int stopping(rb_approvals_pg *p)
{
  pthread_mutex_lock(&p->mu);
  int s = p->stop;
  pthread_mutex_unlock(&p->mu);
  return s;
}

static int cmd(PGconn *c, const char *sql, int n, const char *const *v)
{
  PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
  int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK ||
                 PQresultStatus(r) == PGRES_TUPLES_OK);
  if (!ok)
    fprintf(stderr, "runbook serve: store: approvals: %s", PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* The Slack message this replica posted for (run, step) (slack_post.c's
 * record), so that a click landing on another replica can be checked
 * against it; NULL members when none was posted. */
static json_t *posted(rb_approvals_pg *p, const char *run, const char *step)
{
  char path[4600];
  if (rb_fmt(path, sizeof path, "%s/serve/slack/posted/%s/%s.json", p->state_dir, run,
             step) != 0)
    return NULL;
  return json_load_file(path, 0, NULL);
}

/* Replaces this replica's rows of rb_gates with its pending gates now. */
static void publish(rb_approvals_pg *p)
{
  char err[512];
  json_t *pend = rb_host_approval_pending(p->state_dir, err, sizeof err);
  const char *me[1] = {p->name};
  if (pend == NULL || cmd(p->c, "BEGIN", 0, NULL) != 0)
    goto out;
  if (cmd(p->c, "DELETE FROM rb_gates WHERE replica = $1", 1, me) != 0)
    goto rollback;
  size_t i;
  json_t *g;
  json_array_foreach(pend, i, g)
  {
    const char *run = json_string_value(json_object_get(g, "run"));
    const char *step = json_string_value(json_object_get(g, "step"));
    json_t *m = run && step ? posted(p, run, step) : NULL;
    const char *v[5] = {run, step, p->name,
                        json_string_value(json_object_get(m, "channel")),
                        json_string_value(json_object_get(m, "ts"))};
    int bad = run && step &&
              cmd(p->c,
                  "INSERT INTO rb_gates (run, step, replica, seen_ms, slack_channel, "
                  "slack_ts) VALUES ($1, $2, $3, " RB_PG_NOW_MS
                  ", $4, $5) ON CONFLICT (run, step) DO UPDATE SET replica = "
                  "EXCLUDED.replica, seen_ms = EXCLUDED.seen_ms, slack_channel = "
                  "EXCLUDED.slack_channel, slack_ts = EXCLUDED.slack_ts",
                  5, v) != 0;
    json_decref(m);
    if (bad)
      goto rollback;
  }
  cmd(p->c, "COMMIT", 0, NULL);
  goto out;
rollback:
  PQclear(PQexec(p->c, "ROLLBACK"));
out:
  json_decref(pend);
}

/* Applies one answer taken by another replica, recording the result. */
static void apply_one(rb_approvals_pg *p, PGresult *r, int i)
{
  char msg[1024];
  /* the word as the approver sent it (NULL: none); the gate checks it */
  rb_approval_answer a = {PQgetvalue(r, i, 3),
                          NULL,
                          strcmp(PQgetvalue(r, i, 4), "t") == 0,
                          PQgetvalue(r, i, 5),
                          PQgetvalue(r, i, 6),
                          PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8)};
  int rc = rb_host_approval_answer(p->state_dir, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                                   &a, msg, sizeof msg);
  char code[16];
  snprintf(code, sizeof code, "%d", rc);
  const char *v[3] = {PQgetvalue(r, i, 0), code, msg};
  cmd(p->c,
      "UPDATE rb_answers SET done_ms = " RB_PG_NOW_MS ", code = $2::int, result = $3 "
      "WHERE id = $1::bigint",
      3, v);
  fprintf(stderr, "runbook serve: approval of %s/%s by %s taken by replica %s: %s\n",
          PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), a.identity, PQgetvalue(r, i, 7),
          rc == RB_APPROVAL_OK ? "recorded" : msg);
}

static void apply_answers(rb_approvals_pg *p)
{
  const char *me[1] = {p->name};
  PGresult *r =
      PQexecParams(p->c,
                   "SELECT id, run, step, by, approve, comment, channel, via, "
                   "confirm FROM rb_answers WHERE replica = $1 AND done_ms IS NULL "
                   "ORDER BY id",
                   1, NULL, me, NULL, NULL, 0);
  if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
    for (int i = 0; i < PQntuples(r); i++)
      apply_one(p, r, i);
  PQclear(r);
}

/* (Re)connects the thread's connection and listens for answers. */
static int connect_listen(rb_approvals_pg *p)
{
  char err[512];
  if (p->c && PQstatus(p->c) == CONNECTION_OK)
    return 0;
  PQfinish(p->c);
  p->c = rb_pg_connect(p->cfg, err, sizeof err);
  if (p->c == NULL || cmd(p->c, "LISTEN rb_answers", 0, NULL) != 0) {
    PQfinish(p->c);
    p->c = NULL;
    return -1;
  }
  return 0;
}

/* Sleeps until a NOTIFY arrives or 250 ms pass. */
static void wait_notify(rb_approvals_pg *p)
{
  int fd = PQsocket(p->c);
  fd_set rd;
  FD_ZERO(&rd);
  struct timeval tv = {0, 250 * 1000};
  if (fd >= 0)
    FD_SET(fd, &rd);
  if (select(fd + 1, &rd, NULL, NULL, &tv) > 0 && PQconsumeInput(p->c))
    for (PGnotify *n; (n = PQnotifies(p->c)) != NULL;)
      PQfreemem(n);
}

static void *loop(void *arg)
{
  rb_approvals_pg *p = arg;
  int64_t published = 0;
  while (!stopping(p)) {
    if (connect_listen(p) != 0) {
      usleep(1000 * 1000); /* the dedup store reports the loss */
      continue;
    }
    if (rb_now_mono_ms() - published >= PUBLISH_MS) {
      publish(p);
      published = rb_now_mono_ms();
    }
    apply_answers(p);
    wait_notify(p);
  }
  return NULL;
}

/* -- the replica that took the answer ---------------------------------------- */

/* The replica that published (run, step) lately, into out; 0 when none. */
static int holder(PGconn *c, const char *run, const char *step, char *out, size_t len)
{
  const char *v[2] = {run, step};
  PGresult *r = PQexecParams(c,
                             "SELECT replica FROM rb_gates WHERE run = $1 AND step = $2 "
                             "AND seen_ms > " RB_PG_NOW_MS " - " FRESH_MS,
                             2, NULL, v, NULL, NULL, 0);
  int found = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (found)
    snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return found;
}

/* Waits for the holder's result of answer id: 1 with rc and msg, else 0. */
static int result_of(PGconn *c, const char *id, int *rc, char *msg, size_t len)
{
  const char *v[1] = {id};
  for (int64_t end = rb_now_mono_ms() + FORWARD_WAIT_MS; rb_now_mono_ms() < end;) {
    PGresult *r =
        PQexecParams(c,
                     "SELECT code, result FROM rb_answers WHERE id = $1::bigint "
                     "AND done_ms IS NOT NULL",
                     1, NULL, v, NULL, NULL, 0);
    int done = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (done) {
      *rc = atoi(PQgetvalue(r, 0, 0));
      snprintf(msg, len, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    if (done)
      return 1;
    usleep(20 * 1000);
  }
  return 0;
}

/* Records the answer for replica r and wakes it; the row id into id. */
static int hand_over(rb_approvals_pg *p, PGconn *c, const char *run, const char *step,
                     const char *r, const rb_approval_answer *a, char *id, size_t len)
{
  const char *v[9] = {run,        step,        r,
                      p->name,    a->identity, a->approve ? "t" : "f",
                      a->comment, a->channel,  a->confirm}; /* NULL: SQL NULL */
  PGresult *res =
      PQexecParams(c,
                   "INSERT INTO rb_answers (run, step, replica, via, by, "
                   "approve, comment, channel, confirm, created_ms) VALUES ($1, $2, $3, "
                   "$4, $5, $6::boolean, $7, $8, $9, " RB_PG_NOW_MS ") RETURNING id",
                   9, NULL, v, NULL, NULL, 0);
  int ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
  if (ok)
    snprintf(id, len, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  const char *n[1] = {r};
  return ok && cmd(c, "SELECT pg_notify('rb_answers', $1)", 1, n) == 0 ? 0 : -1;
}

static json_t *fail(unsigned *code, unsigned c, const char *msg, const char *r,
                    char *note, size_t len)
{
  *code = c;
  snprintf(note, len, "%s", msg);
  return r ? json_pack("{s:s, s:s}", "error", msg, "replica", r)
           : json_pack("{s:s}", "error", msg);
}

json_t *rb_approvals_pg_forward(rb_approvals_pg *p, const char *run, const char *step,
                                const rb_approval_answer *a, unsigned *code, char *note,
                                size_t notelen)
{
  static const unsigned codes[] = {200, 500, 404, 403, 409};
  char err[512], r[512], id[32], msg[1024];
  int rc = 0;
  json_t *out = NULL;
  PGconn *c = rb_pg_connect(p->cfg, err, sizeof err);
  if (c == NULL)
    return fail(code, 503, "the shared store is unavailable", NULL, note, notelen);
  if (!holder(c, run, step, r, sizeof r) || strcmp(r, p->name) == 0)
    goto out; /* no replica holds it: 404 from the caller */
  if (hand_over(p, c, run, step, r, a, id, sizeof id) != 0)
    out = fail(code, 503, "the shared store is unavailable", r, note, notelen);
  else if (!result_of(c, id, &rc, msg, sizeof msg)) {
    *code = 202;
    snprintf(note, notelen, "(%s %s by %s, for replica %s)",
             a->approve ? "approve" : "deny", step, a->identity, r);
    out = json_pack("{s:s, s:s, s:s, s:b}", "run", run, "step", step, "replica", r,
                    "queued", 1);
  } else if (rc != RB_APPROVAL_OK)
    out = fail(code, rc < 0 && rc >= -4 ? codes[-rc] : 500, msg, r, note, notelen);
  else {
    *code = 200;
    snprintf(note, notelen, "(%s %s by %s, via replica %s)",
             a->approve ? "approve" : "deny", step, a->identity, r);
    out =
        json_pack("{s:s, s:s, s:b, s:s, s:s, s:s}", "run", run, "step", step, "approved",
                  a->approve, "by", a->identity, "needs", msg, "replica", r);
  }
out:
  PQfinish(c);
  return out;
}

/* -- Slack clicks through any replica ---------------------------------------- */

#define SEEN_KEEP_MS "660000" /* longer than Slack's 5-minute window, either way */

int rb_approvals_pg_slack_seen(rb_approvals_pg *p, const char *sig)
{
  char err[512];
  PGconn *c = rb_pg_connect(p->cfg, err, sizeof err);
  if (c == NULL)
    return -1;
  const char *v[1] = {sig};
  int rc = cmd(c, "DELETE FROM rb_slack_seen WHERE expires_ms < " RB_PG_NOW_MS, 0, NULL);
  PGresult *r = rc ? NULL
                   : PQexecParams(c,
                                  "INSERT INTO rb_slack_seen (sig, expires_ms) VALUES "
                                  "($1, " RB_PG_NOW_MS " + " SEEN_KEEP_MS
                                  ") ON CONFLICT (sig) DO NOTHING",
                                  1, NULL, v, NULL, NULL, 0);
  if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
    rc = -1;
  else
    rc = strcmp(PQcmdTuples(r), "0") == 0; /* the key was there: used before */
  if (r && rc < 0)
    fprintf(stderr, "runbook serve: store: slack: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return rc;
}

int rb_approvals_pg_slack_holder(rb_approvals_pg *p, const char *run, const char *step,
                                 const char *channel, const char *ts, char *out,
                                 size_t len)
{
  char err[512];
  PGconn *c = rb_pg_connect(p->cfg, err, sizeof err);
  if (c == NULL)
    return -1;
  const char *v[5] = {run, step, channel, ts, p->name};
  PGresult *r = PQexecParams(c,
                             "SELECT replica FROM rb_gates WHERE run = $1 AND step = $2 "
                             "AND slack_channel = $3 AND slack_ts = $4 AND replica <> $5 "
                             "AND seen_ms > " RB_PG_NOW_MS " - " FRESH_MS,
                             5, NULL, v, NULL, NULL, 0);
  int rc = r && PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) == 1 : -1;
  if (rc == 1)
    snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return rc;
}

static json_t *forward(void *arg, const char *run, const char *step,
                       const rb_approval_answer *a, unsigned *code, char *note,
                       size_t notelen)
{
  return rb_approvals_pg_forward(arg, run, step, a, code, note, notelen);
}

void rb_approvals_pg_attach(rb_approvals_pg *p, rb_approvers *a)
{
  rb_approvers_set_forward(a, forward, p);
}

rb_approvals_pg *rb_approvals_pg_start(const rb_config *cfg, const char *state_dir,
                                       char *err, size_t errlen)
{
  rb_approvals_pg *p = calloc(1, sizeof *p);
  if (p == NULL) {
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  p->cfg = cfg;
  snprintf(p->state_dir, sizeof p->state_dir, "%s", state_dir);
  rb_pg_replica_name(cfg, state_dir, p->name, sizeof p->name);
  pthread_mutex_init(&p->mu, NULL);
  if (pthread_create(&p->th, NULL, loop, p) != 0) {
    pthread_mutex_destroy(&p->mu);
    free(p);
    rb_err(err, errlen, "cannot start the approvals thread");
    return NULL;
  }
  return p;
}

void rb_approvals_pg_stop(rb_approvals_pg *p)
{
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->th, NULL);
  PQfinish(p->c);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
