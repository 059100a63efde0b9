/* store_pull.c: `runbook store pull INCIDENT`: the store's copy of an
 * incident's timeline into the local state dir, where `runbook timeline`,
 * `verify`, `report` and `postmortem` read it. Only ever extends. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "stdlib/pg/pg.h"
#include "stdlib/serve/serve.h"
#include "stdlib/serve/store_pull.h"

static int name_ok(const char *s)
{
  if (*s == '\0' || *s == '.' || strlen(s) > 200)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || strchr("-_.", *s)))
      return 0;
  return 1;
}

/* How many of the store's lines the local file holds already (it must be
 * a prefix of them); -1 when it differs, with the line in *at. *extra
 * counts the lines past the store's end when the store's are a prefix of
 * the local file's (a run of this machine appending now, or one whose last
 * append the store refused). */
static int local_prefix(const char *path, PGresult *r, int *at, int *extra)
{
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int i = 0;
  if (f == NULL)
    return 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    if (line[n - 1] == '\n')
      line[--n] = '\0';
    if (i >= PQntuples(r)) { /* never for an empty r: the callers refuse it */
      (*extra)++;
      continue;
    }
    if (strcmp(line, PQgetvalue(r, i, 0)) != 0) {
      *at = i + 1;
      i = -1;
      break;
    }
    i++;
  }
  free(line);
  fclose(f);
  return i;
}

static int append_from(const char *path, PGresult *r, int from)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600), ok = fd >= 0;
  for (int i = from; ok && i < PQntuples(r); i++) {
    const char *l = PQgetvalue(r, i, 0);
    ok = write(fd, l, strlen(l)) == (ssize_t)strlen(l) && write(fd, "\n", 1) == 1;
  }
  if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0))
    ok = 0;
  return ok ? 0 : -1;
}

/* quiet: the sync before timeline/verify/runs/...: no line on success, and
 * an incident the store does not have is no error (a run by hand). */
static int pull_one(PGconn *c, const char *state_dir, const char *incident, int quiet)
{
  char dir[4200], path[4500];
  int code = RB_EXIT_FAILED, at = 0, extra = 0;
  if (!name_ok(incident)) {
    fprintf(stderr, "runbook: store pull: '%s' is not an incident id\n", incident);
    return RB_EXIT_USAGE;
  }
  const char *v[1] = {incident};
  PGresult *r =
      PQexecParams(c, "SELECT line FROM rb_events WHERE incident = $1 ORDER BY seq", 1,
                   NULL, v, NULL, NULL, 0);
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK)
    fprintf(stderr, "runbook: store: %s", PQerrorMessage(c));
  else if (PQntuples(r) == 0 && quiet)
    code = RB_EXIT_OK;
  else if (PQntuples(r) == 0)
    fprintf(stderr, "runbook: store: no timeline of incident %s in the store\n",
            incident);
  else if (rb_fmt(dir, sizeof dir, "%s/incidents", state_dir) != 0 ||
           rb_mkdirs(dir) != 0 ||
           rb_fmt(path, sizeof path, "%s/%s.jsonl", dir, incident) != 0)
    fprintf(stderr, "runbook: store pull: cannot create %s\n", dir);
  else {
    int have = local_prefix(path, r, &at, &extra);
    if (have < 0)
      fprintf(stderr,
              "runbook: store%s: %s differs from the store's timeline at line %d; "
              "left as it is\n",
              quiet ? "" : " pull", path, at);
    else if (extra > 0) {
      fprintf(stderr,
              "runbook: store: warning: %s has %d line%s past the store's %d (a run of "
              "this machine appending, or an event the store did not take); left as "
              "it is\n",
              path, extra, extra == 1 ? "" : "s", PQntuples(r));
      code = RB_EXIT_OK;
    } else if (append_from(path, r, have) != 0)
      fprintf(stderr, "runbook: store pull: cannot write %s\n", path);
    else {
      if (!quiet)
        printf("%s: %d lines from the store, %d new\n", incident, PQntuples(r),
               PQntuples(r) - have);
      code = RB_EXIT_OK;
    }
  }
  PQclear(r);
  return code;
}

int rb_store_pull(PGconn *c, const char *state_dir, const char *incident)
{
  return pull_one(c, state_dir, incident, 0);
}

/* Every incident is tried even after one differs, so that all are named. */
static int sync_all(PGconn *c, const char *state_dir)
{
  PGresult *r = PQexec(c, "SELECT DISTINCT incident FROM rb_events ORDER BY 1");
  int code = RB_EXIT_OK;
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "runbook: store: %s", PQerrorMessage(c));
    code = RB_EXIT_FAILED;
  }
  for (int i = 0; code != RB_EXIT_FAILED && r && i < PQntuples(r); i++)
    if (pull_one(c, state_dir, PQgetvalue(r, i, 0), 1) != RB_EXIT_OK)
      code = RB_EXIT_INVALID;
  PQclear(r);
  return code == RB_EXIT_INVALID ? RB_EXIT_FAILED : code;
}

int rb_store_sync(PGconn *c, const char *state_dir, const char *incident)
{
  return strcmp(incident, "--all") == 0 ? sync_all(c, state_dir)
                                        : pull_one(c, state_dir, incident, 1);
}
