/* dedup_pg.c: the dedup store shared by `runbook serve` replicas: one row
 * per key in PostgreSQL, claimed by the first replica's INSERT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "stdlib/pg/pg.h"
#include "stdlib/serve/dedup.h"

/* Ends of runs the database missed while it was away, replayed on return. */
#define MAX_PENDING 1024
#define RETRY_MS 1000   /* between reconnection attempts */
#define CLEANUP_MS 5000 /* between cleanups of expired keys */

typedef struct {
  char key[RB_DEDUP_KEY_MAX + 1];
  int forget; /* 1 forget, 0 finished */
} pending_end;

typedef struct {
  rb_dedup base;
  PGconn *c;
  char name[512]; /* this replica */
  char window[24], timeout[24];
  size_t max_keys, count;
  int up;
  unsigned long errors;
  char why[512]; /* the last failure */
  int64_t last_try, last_clean;
  pending_end *pend;
  size_t npend;
} pgd;

/* The window as SQL: an expired key (its run ended a window ago) is taken
 * over as if new; a duplicate counts a hit. hits = 0 back means claimed. */
#define EXPIRED "(NOT d.active AND d.ended_ms <= " RB_PG_NOW_MS " - $3::bigint)"
static const char claim_sql[] =
    "INSERT INTO rb_dedup AS d (key, active, owner, claimed_ms, ended_ms, hits) "
    "VALUES ($1, true, $2, " RB_PG_NOW_MS ", NULL, 0) "
    "ON CONFLICT (key) DO UPDATE SET "
    "hits = CASE WHEN " EXPIRED " THEN 0 ELSE d.hits + 1 END, "
    "owner = CASE WHEN " EXPIRED " THEN EXCLUDED.owner ELSE d.owner END, "
    "claimed_ms = CASE WHEN " EXPIRED " THEN EXCLUDED.claimed_ms ELSE d.claimed_ms END, "
    "ended_ms = CASE WHEN " EXPIRED " THEN NULL ELSE d.ended_ms END, "
    "active = d.active OR " EXPIRED " RETURNING hits";

/* A statement failed: the connection may be gone, which makes the store
 * unavailable (the listener answers 503) until a reconnection works. */
static void failed(pgd *d, const char *what)
{
  char msg[512];
  rb_pg_err(d->c, what, msg, sizeof msg);
  d->errors++;
  snprintf(d->why, sizeof d->why, "%s", msg);
  if (PQstatus(d->c) != CONNECTION_OK && d->up) {
    d->up = 0;
    d->last_try = rb_now_mono_ms();
    fprintf(stderr,
            "runbook serve: store: lost the database (%s): alerts get 503 until it "
            "is back\n",
            msg);
  } else if (d->up)
    fprintf(stderr, "runbook serve: store: %s\n", msg);
}

/* Runs sql with params; the result when it has the status wanted, else NULL
 * (the failure noted). */
static PGresult *run(pgd *d, const char *what, const char *sql, int n,
                     const char *const *params, ExecStatusType want)
{
  PGresult *r = PQexecParams(d->c, sql, n, NULL, params, NULL, NULL, 0);
  if (r && PQresultStatus(r) == want)
    return r;
  PQclear(r);
  failed(d, what);
  return NULL;
}

static int run_cmd(pgd *d, const char *what, const char *sql, int n,
                   const char *const *params)
{
  PGresult *r = run(d, what, sql, n, params, PGRES_COMMAND_OK);
  PQclear(r);
  return r ? 0 : -1;
}

static int end_key(pgd *d, const char *key, int forget)
{
  const char *p[2] = {key, d->name};
  return run_cmd(d, forget ? "forgetting a key" : "ending a key",
                 forget ? "DELETE FROM rb_dedup WHERE key = $1 AND owner = $2 AND active"
                        : "UPDATE rb_dedup SET active = false, ended_ms = " RB_PG_NOW_MS
                          " WHERE key = $1 AND owner = $2 AND active",
                 2, p);
}

static void remember_end(pgd *d, const char *key, int forget)
{
  if (d->npend == MAX_PENDING) {
    fprintf(stderr,
            "runbook serve: store: %d ends of runs waiting for the database; "
            "key %s stays active until this replica restarts\n",
            MAX_PENDING, key);
    return;
  }
  pending_end *p = &d->pend[d->npend++];
  snprintf(p->key, sizeof p->key, "%s", key);
  p->forget = forget;
}

static int heartbeat(pgd *d)
{
  const char *p[1] = {d->name};
  return run_cmd(
      d, "heartbeat",
      "INSERT INTO rb_replicas (name, started_ms, seen_ms) VALUES ($1, " RB_PG_NOW_MS
      ", " RB_PG_NOW_MS ") ON CONFLICT (name) DO UPDATE SET seen_ms = "
      "EXCLUDED.seen_ms",
      1, p);
}

/* The claim is the hot path: parsed and planned once per connection. */
static int prepare(pgd *d)
{
  PGresult *r = PQprepare(d->c, "rb_claim", claim_sql, 3, NULL);
  int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok)
    failed(d, "preparing the claim");
  return ok ? 0 : -1;
}

/* Back after a loss: the schema is checked again (someone may have
 * restored another database) and the missed ends are replayed. */
static int reconnect(pgd *d)
{
  int64_t now = rb_now_mono_ms();
  if (now - d->last_try < RETRY_MS)
    return 0;
  d->last_try = now;
  PQreset(d->c);
  char err[512];
  if (PQstatus(d->c) != CONNECTION_OK) {
    rb_pg_err(d->c, "reconnecting", d->why, sizeof d->why);
    return 0;
  }
  if (rb_pg_check_schema(d->c, err, sizeof err) != 0) {
    snprintf(d->why, sizeof d->why, "%s", err);
    return 0;
  }
  if (prepare(d) != 0)
    return 0;
  d->up = 1;
  fprintf(stderr, "runbook serve: store: the database is back; taking alerts again\n");
  size_t n = d->npend;
  d->npend = 0;
  for (size_t i = 0; i < n; i++)
    if (end_key(d, d->pend[i].key, d->pend[i].forget) != 0)
      remember_end(d, d->pend[i].key, d->pend[i].forget);
  return d->up && heartbeat(d) == 0;
}

static int pg_claim(rb_dedup *base, const char *key, int64_t now_ms, char *err,
                    size_t errlen)
{
  pgd *d = (pgd *)base;
  (void)now_ms; /* the database's clock is the one all replicas share */
  if (!d->up && !reconnect(d))
    return rb_err(err, errlen, "the shared store is unavailable: %s", d->why), -2;
  if (d->count >= d->max_keys)
    return -1;
  const char *p[3] = {key, d->name, d->window};
  PGresult *r = PQexecPrepared(d->c, "rb_claim", 3, p, NULL, NULL, 0);
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    r = NULL;
    failed(d, "claiming a key");
  }
  if (r == NULL)
    return rb_err(err, errlen, "%s", d->why), -2;
  int dup = PQntuples(r) != 1 || atol(PQgetvalue(r, 0, 0)) != 0;
  PQclear(r);
  if (!dup)
    d->count++;
  return dup;
}

static void pg_end(pgd *d, const char *key, int forget)
{
  if ((!d->up && !reconnect(d)) || end_key(d, key, forget) != 0)
    remember_end(d, key, forget);
}

static void pg_finished(rb_dedup *base, const char *key, int64_t now_ms)
{
  (void)now_ms;
  pg_end((pgd *)base, key, 0);
}

static void pg_forget(rb_dedup *base, const char *key)
{
  pg_end((pgd *)base, key, 1);
}

/* Every claim was committed when it returned (synchronous_commit). */
static int pg_sync(rb_dedup *base, char *err, size_t errlen)
{
  pgd *d = (pgd *)base;
  return d->up ? 0 : rb_err(err, errlen, "the shared store is unavailable: %s", d->why);
}

static unsigned pg_hits(const rb_dedup *base, const char *key)
{
  pgd *d = (pgd *)base;
  const char *p[1] = {key};
  unsigned n = 0;
  if (!d->up)
    return 0;
  PGresult *r = run(d, "reading hits", "SELECT hits FROM rb_dedup WHERE key = $1", 1, p,
                    PGRES_TUPLES_OK);
  if (r && PQntuples(r) == 1)
    n = (unsigned)atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  return n;
}

static size_t pg_count(const rb_dedup *base)
{
  return ((const pgd *)base)->count;
}

/* Ends the keys of replicas not heard from for replica_timeout (their runs
 * died with them), drops keys whose window has passed and recounts. */
static void cleanup(pgd *d)
{
  const char *t[1] = {d->timeout}, *w[1] = {d->window};
  if (run_cmd(d, "ending the keys of dead replicas",
              "UPDATE rb_dedup d SET active = false, ended_ms = " RB_PG_NOW_MS
              " WHERE d.active AND NOT EXISTS (SELECT 1 FROM rb_replicas r WHERE r.name "
              "= d.owner AND r.seen_ms > " RB_PG_NOW_MS " - $1::bigint)",
              1, t) != 0 ||
      run_cmd(d, "dropping expired keys",
              "DELETE FROM rb_dedup WHERE NOT active AND ended_ms <= " RB_PG_NOW_MS
              " - $1::bigint",
              1, w) != 0)
    return;
  PGresult *r =
      run(d, "counting keys", "SELECT count(*) FROM rb_dedup", 0, NULL, PGRES_TUPLES_OK);
  if (r && PQntuples(r) == 1)
    d->count = (size_t)atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
}

static void pg_tick(rb_dedup *base)
{
  pgd *d = (pgd *)base;
  if ((!d->up && !reconnect(d)) || heartbeat(d) != 0)
    return;
  int64_t now = rb_now_mono_ms();
  if (now - d->last_clean >= CLEANUP_MS) {
    d->last_clean = now;
    cleanup(d);
  }
}

static int pg_health(rb_dedup *base, char *what, size_t len, unsigned long *errors)
{
  pgd *d = (pgd *)base;
  *errors = d->errors;
  if (d->up)
    snprintf(what, len, "postgresql (replica %s)", d->name);
  else
    snprintf(what, len, "postgresql unavailable: %s", d->why);
  return d->up;
}

static void pg_free(rb_dedup *base)
{
  pgd *d = (pgd *)base;
  PQfinish(d->c);
  free(d->pend);
  free(d);
}

static const rb_dedup_ops pg_ops = {
    pg_claim, pg_finished, pg_forget, pg_sync,   pg_hits,
    pg_count, pg_free,     pg_tick,   pg_health,
};

/* Keys this replica claimed before a crash end now, as the file store's
 * do: the runs that held them died with the listener. */
static int settle(pgd *d, char *err, size_t errlen)
{
  const char *p[1] = {d->name};
  if (prepare(d) != 0 || heartbeat(d) != 0 ||
      run_cmd(d, "ending this replica's old keys",
              "UPDATE rb_dedup SET active = false, ended_ms = " RB_PG_NOW_MS
              " WHERE active AND owner = $1",
              1, p) != 0)
    return rb_err(err, errlen, "%s", d->why);
  cleanup(d);
  return 0;
}

rb_dedup *rb_dedup_open_pg(const rb_config *cfg, const char *state_dir, int64_t window_ms,
                           size_t max_keys, char *err, size_t errlen)
{
  int64_t timeout;
  if (rb_host_config_duration(cfg, "store", "replica_timeout", &timeout, err, errlen) !=
      0)
    return NULL;
  pgd *d = calloc(1, sizeof *d);
  if (d == NULL || (d->pend = calloc(MAX_PENDING, sizeof *d->pend)) == NULL) {
    free(d);
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  d->base.ops = &pg_ops;
  d->max_keys = max_keys;
  d->up = 1;
  snprintf(d->window, sizeof d->window, "%lld", (long long)window_ms);
  snprintf(d->timeout, sizeof d->timeout, "%lld", (long long)timeout);
  rb_pg_replica_name(cfg, state_dir, d->name, sizeof d->name);
  d->c = rb_pg_connect(cfg, err, errlen);
  if (d->c == NULL || rb_pg_check_schema(d->c, err, errlen) != 0 ||
      settle(d, err, errlen) != 0) {
    pg_free(&d->base);
    return NULL;
  }
  d->last_clean = rb_now_mono_ms();
  return &d->base;
}
