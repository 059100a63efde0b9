/* store_list.c: the state-dir store's list of runs: each run's identity,
 * last step and end read back from the journals, and whether a live
 * process holds its lease (running or waiting) or none does (interrupted). */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/store.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

typedef struct {
  rb_run_info info;
  int ended;
  int waiting;
} run_row;

typedef struct {
  run_row *rows;
  size_t n, cap;
} run_rows;

static const char *str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static run_row *row_for(run_rows *rr, const char *run, const char *incident)
{
  for (size_t i = rr->n; i > 0; i--)
    if (strcmp(rr->rows[i - 1].info.run, run) == 0)
      return &rr->rows[i - 1];
  if (rr->n == rr->cap) {
    size_t cap = rr->cap ? rr->cap * 2 : 32;
    run_row *p = realloc(rr->rows, cap * sizeof *p);
    if (p == NULL)
      return NULL;
    rr->rows = p;
    rr->cap = cap;
  }
  run_row *r = &rr->rows[rr->n++];
  memset(r, 0, sizeof *r);
  snprintf(r->info.run, sizeof r->info.run, "%s", run);
  snprintf(r->info.incident, sizeof r->info.incident, "%s", incident);
  return r;
}

static void on_run_event(run_row *r, const json_t *ev, const char *event)
{
  if (strcmp(event, "started") == 0) {
    snprintf(r->info.runbook, sizeof r->info.runbook, "%s", str(ev, "runbook"));
    snprintf(r->info.mode, sizeof r->info.mode, "%s", str(ev, "mode"));
    snprintf(r->info.since, sizeof r->info.since, "%s", str(ev, "ts"));
    r->ended = 0;
    r->waiting = 0;
    r->info.outcome[0] = '\0';
  } else if (strcmp(event, "finished") == 0) {
    r->ended = 1;
    snprintf(r->info.outcome, sizeof r->info.outcome, "%s",
             str(json_object_get(ev, "detail"), "outcome"));
  } else if (strcmp(event, "failed") == 0) {
    r->waiting = 0;
  }
}

static int on_event(json_t *ev, void *arg)
{
  run_rows *rr = arg;
  const char *run = str(ev, "run");
  if (run[0] == '\0')
    return 0;
  run_row *r = row_for(rr, run, str(ev, "incident"));
  if (r == NULL)
    return -1;
  const char *event = str(ev, "event");
  if (json_is_null(json_object_get(ev, "step")) || strcmp(str(ev, "kind"), "run") == 0) {
    on_run_event(r, ev, event);
    return 0;
  }
  if (json_object_get(json_object_get(ev, "detail"), "op") != NULL)
    return 0;
  if (strcmp(event, "started") == 0)
    snprintf(r->info.step, sizeof r->info.step, "%s", str(ev, "step"));
  if (strcmp(event, "approval_requested") == 0)
    r->waiting = 1;
  else if (strcmp(event, "approved") == 0 || strcmp(event, "denied") == 0 ||
           strcmp(event, "finished") == 0 || strcmp(event, "failed") == 0)
    r->waiting = 0;
  return 0;
}

static int read_journals(const char *dir, run_rows *rr, char *err, size_t errlen)
{
  char idir[4200];
  if (rb_fmt(idir, sizeof idir, "%s/incidents", dir))
    return rb_err(err, errlen, "state dir path too long");
  struct dirent **names = NULL;
  int n = scandir(idir, &names, NULL, alphasort);
  if (n < 0)
    return 0; /* no journals yet: no runs */
  int rc = 0;
  for (int i = 0; i < n; i++) {
    size_t len = strlen(names[i]->d_name);
    char path[4600];
    if (rc == 0 && len > 6 && strcmp(names[i]->d_name + len - 6, ".jsonl") == 0 &&
        rb_fmt(path, sizeof path, "%s/%s", idir, names[i]->d_name) == 0) {
      char e2[512];
      int skipped = 0;
      if (rb_timeline_read(path, on_event, rr, &skipped, e2, sizeof e2) != 0)
        fprintf(stderr, "runbook: warning: %s\n", e2);
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

/* Orders rows by the time they (last) started. */
static int by_since(const void *a, const void *b)
{
  return strcmp(((const run_row *)a)->info.since, ((const run_row *)b)->info.since);
}

static void settle_state(rb_store *s, run_row *r)
{
  char key[200], e2[256];
  rb_run_info *i = &r->info;
  i->live = rb_store_run_key(i->run, key, sizeof key) == 0 &&
            rb_store_holder(s, key, &i->owner, e2, sizeof e2) == 1;
  const char *st = r->ended     ? "done"
                   : !i->live   ? "interrupted"
                   : r->waiting ? "waiting"
                                : "running";
  snprintf(i->state, sizeof i->state, "%s", st);
}

int rb_store_dir_list(rb_store *s, const char *dir, rb_run_cb cb, void *arg, char *err,
                      size_t errlen)
{
  run_rows rr = {NULL, 0, 0};
  int rc = read_journals(dir, &rr, err, errlen);
  if (rc == 0 && rr.n > 1)
    qsort(rr.rows, rr.n, sizeof *rr.rows, by_since);
  for (size_t i = 0; rc == 0 && i < rr.n; i++) {
    settle_state(s, &rr.rows[i]);
    if (cb(&rr.rows[i].info, arg) != 0)
      break;
  }
  free(rr.rows);
  return rc;
}
