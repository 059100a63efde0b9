/* store_cli.c: `runbook store migrate` and `runbook store status`: the
 * shared store's schema, brought up to this binary's version or shown. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/pg/pg.h"
#include "stdlib/serve/serve.h"

static const char usage[] = "usage: runbook store migrate|status\n";

int rb_cli_store(const rb_config *cfg, int argc, char **argv)
{
  char err[1024], by[320], host[256] = "";
  int from = 0, to = 0, code = RB_EXIT_FAILED;
  if (argc != 2 || (strcmp(argv[1], "migrate") != 0 && strcmp(argv[1], "status") != 0)) {
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
  if (strcmp(argv[1], "status") == 0) {
    int v = rb_pg_schema_version(c, err, sizeof err);
    if (v >= 0) {
      printf("schema version %d (this binary: %d)%s\n", v, RB_PG_SCHEMA_VERSION,
             v == RB_PG_SCHEMA_VERSION  ? ""
             : v < RB_PG_SCHEMA_VERSION ? ": run `runbook store migrate`"
                                        : ": newer than this binary");
      code = v == RB_PG_SCHEMA_VERSION ? RB_EXIT_OK : RB_EXIT_FAILED;
      const char *proto = PQsslInUse(c) ? PQsslAttribute(c, "protocol") : NULL;
      printf("connection: %s%s\n", PQsslInUse(c) ? "TLS " : "no TLS", proto ? proto : "");
    } else
      fprintf(stderr, "runbook: %s\n", err);
    goto out;
  }
  gethostname(host, sizeof host - 1);
  snprintf(by, sizeof by, "runbook %s on %s", RB_VERSION, host);
  if (rb_pg_migrate(c, by, &from, &to, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    goto out;
  }
  if (from == to)
    printf("schema version %d: up to date, nothing to do\n", to);
  else
    printf("schema migrated from version %d to %d\n", from, to);
  code = RB_EXIT_OK;
out:
  PQfinish(c);
  return code;
}
