/* store_cli.c: `runbook store migrate|status|runs|pull`: the shared
 * store's schema, its runs, and an incident's timeline copied from it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/pg/pg.h"
#include "stdlib/serve/serve.h"
#include "stdlib/serve/store_pull.h"

static const char usage[] =
    "usage: runbook store migrate|status|runs|pull INCIDENT|sync INCIDENT|--all\n";

/* Every run in rb_runs, oldest first: where it runs and how it ended. */
static int list_runs(PGconn *c)
{
  PGresult *r =
      PQexec(c, "SELECT run, incident, state, replica, coalesce(taken_from, ''), "
                "to_char(to_timestamp(updated_ms / 1000.0) AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM rb_runs ORDER BY updated_ms");
  int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok)
    fprintf(stderr, "runbook: store: %s", PQerrorMessage(c));
  for (int i = 0; ok && i < PQntuples(r); i++) {
    const char *from = PQgetvalue(r, i, 4);
    printf("%s  %s  %s  replica %s%s%s  since %s\n", PQgetvalue(r, i, 0),
           PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
           *from ? ", taken over from " : "", from, PQgetvalue(r, i, 5));
  }
  PQclear(r);
  return ok ? RB_EXIT_OK : RB_EXIT_FAILED;
}

static int cmd_status(PGconn *c)
{
  char err[1024];
  int v = rb_pg_schema_version(c, err, sizeof err);
  if (v < 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  printf("schema version %d (this binary: %d)%s\n", v, RB_PG_SCHEMA_VERSION,
         v == RB_PG_SCHEMA_VERSION  ? ""
         : v < RB_PG_SCHEMA_VERSION ? ": run `runbook store migrate`"
                                    : ": newer than this binary");
  const char *proto = PQsslInUse(c) ? PQsslAttribute(c, "protocol") : NULL;
  printf("connection: %s%s\n", PQsslInUse(c) ? "TLS " : "no TLS", proto ? proto : "");
  return v == RB_PG_SCHEMA_VERSION ? RB_EXIT_OK : RB_EXIT_FAILED;
}

static int cmd_migrate(PGconn *c)
{
  char err[1024], by[320], host[256] = "";
  int from = 0, to = 0;
  gethostname(host, sizeof host - 1);
  snprintf(by, sizeof by, "runbook %s on %s", RB_VERSION, host);
  if (rb_pg_migrate(c, by, &from, &to, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  if (from == to)
    printf("schema version %d: up to date, nothing to do\n", to);
  else
    printf("schema migrated from version %d to %d\n", from, to);
  return RB_EXIT_OK;
}

int rb_cli_store(const rb_config *cfg, const char *state_dir, int argc, char **argv)
{
  char err[1024];
  const char *sub = argc >= 2 ? argv[1] : "";
  int sync = strcmp(sub, "sync") == 0;
  int pull = sync || strcmp(sub, "pull") == 0;
  if (argc != (pull ? 3 : 2) ||
      (!pull && strcmp(sub, "migrate") && strcmp(sub, "status") && strcmp(sub, "runs"))) {
    fputs(usage, stderr);
    return RB_EXIT_USAGE;
  }
  if (!rb_pg_configured(cfg)) {
    fprintf(stderr, "runbook: store: [store] url is not set: the state dir is the store "
                    "and has no schema to migrate\n");
    return RB_EXIT_INVALID;
  }
  PGconn *c = rb_pg_connect(cfg, err, sizeof err);
  if (c == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  int code = strcmp(sub, "status") == 0    ? cmd_status(c)
             : strcmp(sub, "migrate") == 0 ? cmd_migrate(c)
             : rb_pg_check_schema(c, err, sizeof err) != 0
                 ? (fprintf(stderr, "runbook: %s\n", err), RB_EXIT_FAILED)
             : sync ? rb_store_sync(c, state_dir, argv[2])
             : pull ? rb_store_pull(c, state_dir, argv[2])
                    : list_runs(c);
  PQfinish(c);
  return code;
}
