/* pg.c: connecting to the shared store as [store] says (no password in the
 * URL, TLS settings passed through) and migrating its schema. */
#include "stdlib/pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"

/* Each migration runs once, in order, inside the migrating transaction.
 * Never edit one that shipped: add the next. */
static const struct {
  int version;
  const char *name;
  const char *sql;
} migrations[] = {
    {1, "dedup keys and replicas",
     "CREATE TABLE rb_dedup ("
     "  key text PRIMARY KEY,"
     "  active boolean NOT NULL,"
     "  owner text NOT NULL,"
     "  claimed_ms bigint NOT NULL,"
     "  ended_ms bigint,"
     "  hits integer NOT NULL DEFAULT 0);"
     "CREATE INDEX rb_dedup_ended ON rb_dedup (ended_ms) WHERE NOT active;"
     "CREATE INDEX rb_dedup_owner ON rb_dedup (owner) WHERE active;"
     "CREATE TABLE rb_replicas ("
     "  name text PRIMARY KEY,"
     "  started_ms bigint NOT NULL,"
     "  seen_ms bigint NOT NULL);"},
    {2, "approval gates and answers across replicas",
     "CREATE TABLE rb_gates ("
     "  run text NOT NULL,"
     "  step text NOT NULL,"
     "  replica text NOT NULL,"
     "  seen_ms bigint NOT NULL,"
     "  PRIMARY KEY (run, step));"
     "CREATE TABLE rb_answers ("
     "  id bigserial PRIMARY KEY,"
     "  run text NOT NULL,"
     "  step text NOT NULL,"
     "  replica text NOT NULL,"
     "  via text NOT NULL,"
     "  by text NOT NULL,"
     "  approve boolean NOT NULL,"
     "  comment text NOT NULL,"
     "  channel text NOT NULL,"
     "  created_ms bigint NOT NULL,"
     "  done_ms bigint,"
     "  code integer,"
     "  result text);"
     "CREATE INDEX rb_answers_todo ON rb_answers (replica) WHERE done_ms IS NULL;"},
    {3, "run timelines and owners across replicas",
     "CREATE TABLE rb_events ("
     "  incident text NOT NULL,"
     "  seq bigint NOT NULL,"
     "  line text NOT NULL,"
     "  PRIMARY KEY (incident, seq));"
     "CREATE TABLE rb_runs ("
     "  run text PRIMARY KEY,"
     "  incident text NOT NULL,"
     "  replica text NOT NULL,"
     "  state text NOT NULL,"
     "  updated_ms bigint NOT NULL,"
     "  taken_from text);"
     "CREATE INDEX rb_runs_live ON rb_runs (replica) WHERE state = 'running';"},
    /* NULL: the answer carried no word (a confirm gate then refuses it) */
    {4, "the confirm word of an answer across replicas",
     "ALTER TABLE rb_answers ADD COLUMN confirm text;"},
    /* the Slack message posted for a gate (a click through another replica
     * is checked against it) and the Slack signatures used on any replica */
    {5, "Slack messages of gates and used Slack signatures across replicas",
     "ALTER TABLE rb_gates ADD COLUMN slack_channel text, ADD COLUMN slack_ts text;"
     "CREATE TABLE rb_slack_seen ("
     "  sig text PRIMARY KEY,"
     "  expires_ms bigint NOT NULL);"},
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

/* The advisory lock key of a migration: any constant the app owns. */
#define MIGRATE_LOCK "7360451926613"

int rb_pg_err(PGconn *c, const char *what, char *err, size_t errlen)
{
  char msg[512];
  snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
  for (char *p = msg; *p; p++)
    if (*p == '\n')
      *p = p[1] ? ' ' : '\0';
  return rb_err(err, errlen, "%s: %s", what, msg);
}

int rb_pg_configured(const rb_config *cfg)
{
  return rb_host_config_string(cfg, "store", "url") != NULL;
}

void rb_pg_replica_name(const rb_config *cfg, const char *state_dir, char *out,
                        size_t len)
{
  const char *n = rb_host_config_string(cfg, "store", "replica");
  char host[256] = "";
  if (n) {
    snprintf(out, len, "%s", n);
    return;
  }
  gethostname(host, sizeof host - 1);
  snprintf(out, len, "%s:%s", host, state_dir);
}

/* The URL must be a postgresql:// URI without a password in it: a password
 * in a config file (or in `ps`) is what password_env/_file exist to avoid. */
static int check_url(const char *url, char *err, size_t errlen)
{
  if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0)
    return rb_err(err, errlen, "[store] url must start with postgresql://");
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(url, &perr);
  if (opts == NULL) {
    /* libpq's message may quote the URL: say what, not the text */
    PQfreemem(perr);
    return rb_err(err, errlen, "[store] url does not parse as a PostgreSQL URI");
  }
  int bad = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (o->val && *o->val && strcmp(o->keyword, "password") == 0)
      bad = 1;
  PQconninfoFree(opts);
  if (bad)
    return rb_err(err, errlen,
                  "[store] url carries a password: remove it and set [store] "
                  "password_env or password_file");
  return 0;
}

static int check_sslmode(const char *m, char *err, size_t errlen)
{
  static const char *const ok[] = {"disable", "allow",     "prefer",
                                   "require", "verify-ca", "verify-full"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(m, ok[i]) == 0)
      return 0;
  return rb_err(err, errlen,
                "[store] sslmode: '%s' is none of disable, allow, prefer, require, "
                "verify-ca, verify-full",
                m);
}

/* The server's NOTICEs ("relation exists, skipping") are not the user's
 * business; errors come back through results. */
static void quiet(void *arg, const char *msg)
{
  (void)arg, (void)msg;
}

PGconn *rb_pg_connect(const rb_config *cfg, char *err, size_t errlen)
{
  const char *url = rb_host_config_string(cfg, "store", "url");
  const char *mode = rb_host_config_string(cfg, "store", "sslmode");
  const char *root = rb_host_config_string(cfg, "store", "sslrootcert");
  int64_t tmo;
  int absent = 0;
  PGconn *c = NULL;
  char *pw = NULL, secs[32], ms[32];
  if (url == NULL) {
    rb_err(err, errlen, "[store] url is not set");
    return NULL;
  }
  if (check_url(url, err, errlen) != 0 || (mode && check_sslmode(mode, err, errlen)) ||
      rb_host_config_duration(cfg, "store", "connect_timeout", &tmo, err, errlen) != 0)
    return NULL;
  pw = rb_host_config_secret(cfg, "store", "password", &absent, err, errlen);
  if (pw == NULL && !absent)
    return NULL;
  /* libpq counts whole seconds (at least 2); tcp_user_timeout bounds a
   * query on a connection whose peer vanished without a reset */
  snprintf(secs, sizeof secs, "%lld", (long long)(tmo < 2000 ? 2 : (tmo + 999) / 1000));
  snprintf(ms, sizeof ms, "%lld", (long long)(tmo < 2000 ? 2000 : tmo));
  const char *keys[12], *vals[12];
  int n = 0;
  keys[n] = "dbname", vals[n++] = url; /* expanded: the URI's fields */
  keys[n] = "connect_timeout", vals[n++] = secs;
  keys[n] = "tcp_user_timeout", vals[n++] = ms;
  keys[n] = "keepalives_idle", vals[n++] = "10";
  keys[n] = "application_name", vals[n++] = "runbook";
  if (pw)
    keys[n] = "password", vals[n++] = pw;
  if (mode)
    keys[n] = "sslmode", vals[n++] = mode;
  if (root)
    keys[n] = "sslrootcert", vals[n++] = root;
  keys[n] = vals[n] = NULL;
  c = PQconnectdbParams(keys, vals, 1);
  if (pw) {
    explicit_bzero(pw, strlen(pw));
    free(pw);
  }
  if (c == NULL || PQstatus(c) != CONNECTION_OK) {
    rb_pg_err(c, "[store] cannot connect", err, errlen);
    PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, quiet, NULL);
  return c;
}

/* Runs sql (no result rows wanted); 0 or -1 with err. */
static int exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
  PGresult *r = PQexec(c, sql);
  int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK ||
                 PQresultStatus(r) == PGRES_TUPLES_OK);
  PQclear(r);
  return ok ? 0 : rb_pg_err(c, "[store]", err, errlen);
}

/* The highest applied version; 0 when the table is empty or missing. */
static int version_of(PGconn *c, char *err, size_t errlen)
{
  PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM rb_schema_migrations");
  int v = -1;
  if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    v = atoi(PQgetvalue(r, 0, 0));
  else if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
           strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P01") == 0)
    v = 0; /* undefined_table: never migrated */
  else
    rb_pg_err(c, "[store] reading the schema version", err, errlen);
  PQclear(r);
  return v;
}

int rb_pg_schema_version(PGconn *c, char *err, size_t errlen)
{
  return version_of(c, err, errlen);
}

int rb_pg_check_schema(PGconn *c, char *err, size_t errlen)
{
  int v = version_of(c, err, errlen);
  if (v < 0)
    return -1;
  if (v > RB_PG_SCHEMA_VERSION)
    return rb_err(err, errlen,
                  "[store] the database schema is version %d, newer than this "
                  "binary's %d: upgrade runbook on this machine",
                  v, RB_PG_SCHEMA_VERSION);
  if (v < RB_PG_SCHEMA_VERSION)
    return rb_err(err, errlen,
                  "[store] the database schema is version %d, this binary needs %d: "
                  "run `runbook store migrate`",
                  v, RB_PG_SCHEMA_VERSION);
  return 0;
}

/* Applies the migrations above from; the transaction is open. */
static int apply(PGconn *c, int from, const char *by, char *err, size_t errlen)
{
  for (size_t i = 0; i < NMIGRATIONS; i++) {
    if (migrations[i].version <= from)
      continue;
    char v[16];
    snprintf(v, sizeof v, "%d", migrations[i].version);
    const char *params[3] = {v, migrations[i].name, by};
    if (exec(c, migrations[i].sql, err, errlen) != 0)
      return -1;
    PGresult *r = PQexecParams(c,
                               "INSERT INTO rb_schema_migrations (version, name, "
                               "applied_by) VALUES ($1::int, $2, $3)",
                               3, NULL, params, NULL, NULL, 0);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
      return rb_pg_err(c, "[store] recording a migration", err, errlen);
  }
  return 0;
}

int rb_pg_migrate(PGconn *c, const char *by, int *from, int *to, char *err, size_t errlen)
{
  if (exec(c, "BEGIN", err, errlen) != 0)
    return -1;
  if (exec(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", err, errlen) != 0 ||
      exec(c,
           "CREATE TABLE IF NOT EXISTS rb_schema_migrations ("
           "  version integer PRIMARY KEY,"
           "  name text NOT NULL,"
           "  applied_at timestamptz NOT NULL DEFAULT now(),"
           "  applied_by text NOT NULL)",
           err, errlen) != 0)
    goto fail;
  *from = version_of(c, err, errlen);
  if (*from < 0)
    goto fail;
  if (*from > RB_PG_SCHEMA_VERSION) {
    rb_err(err, errlen,
           "[store] the database schema is version %d, newer than this binary's %d: "
           "refusing to touch it",
           *from, RB_PG_SCHEMA_VERSION);
    goto fail;
  }
  if (apply(c, *from, by, err, errlen) != 0 || exec(c, "COMMIT", err, errlen) != 0)
    goto fail;
  *to = RB_PG_SCHEMA_VERSION;
  return 0;
fail:
  PQclear(PQexec(c, "ROLLBACK"));
  return -1;
}
