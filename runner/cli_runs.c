/* cli_runs.c: `runbook runs` and `runbook cancel` over the run store: the
 * state of each run comes from its journal and its lease. */
#include "runner/cli_runs.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner/approval.h"
#include "runner/journal.h"
#include "runner/run.h"
#include "runner/store.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

typedef struct {
  const char *incident;
  const char *state;
  int shown;
} runs_filter;

static int print_run(const rb_run_info *r, void *arg)
{
  runs_filter *f = arg;
  if ((f->incident && strcmp(f->incident, r->incident) != 0) ||
      (f->state && strcmp(f->state, r->state) != 0))
    return 0;
  char owner[400] = "-";
  if (r->live)
    snprintf(owner, sizeof owner, "pid %ld %s@%s", r->owner.pid, r->owner.user,
             r->owner.host);
  printf("%-22s %-11s %-20s %-20s %-7s step=%-16s since=%s owner=%s%s%s\n", r->run,
         r->state, r->incident, r->runbook, r->mode, r->step[0] ? r->step : "-",
         r->live ? r->owner.since : r->since, owner, r->outcome[0] ? " outcome=" : "",
         r->outcome);
  f->shown++;
  return 0;
}

int rb_cli_runs(const char *state_dir, const char *incident, int argc, char **argv)
{
  static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                       {NULL, 0, NULL, 0}};
  runs_filter f = {incident, NULL, 0};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c != 's')
      return RB_EXIT_USAGE;
    if (strcmp(optarg, "running") != 0 && strcmp(optarg, "waiting") != 0 &&
        strcmp(optarg, "interrupted") != 0 && strcmp(optarg, "done") != 0) {
      fprintf(stderr,
              "runbook: --state must be running, waiting, interrupted or done, not "
              "'%s'\n",
              optarg);
      return RB_EXIT_USAGE;
    }
    f.state = optarg;
  }
  if (optind != argc) {
    fprintf(stderr, "runbook: runs takes no arguments (see runbook runs --help)\n");
    return RB_EXIT_USAGE;
  }
  char err[1024];
  rb_store *st = rb_store_open_dir(state_dir, err, sizeof err);
  if (st == NULL || rb_store_list_runs(st, print_run, &f, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: runs: %s\n", err);
    rb_store_free(st);
    return RB_EXIT_FAILED;
  }
  if (f.shown == 0)
    printf("no runs%s in %s\n", f.incident || f.state ? " match" : "", state_dir);
  rb_store_free(st);
  return RB_EXIT_OK;
}

/* -- cancel ---------------------------------------------------------------- */

/* Denies the run's pending gates, so they leave `runbook approvals`. */
static void close_gates(const char *state_dir, const char *run, const char *by)
{
  char err[512];
  json_t *p = rb_approval_pending(state_dir, err, sizeof err);
  size_t i;
  json_t *r;
  json_array_foreach(p, i, r)
  {
    const char *rrun = json_string_value(json_object_get(r, "run"));
    const char *step = json_string_value(json_object_get(r, "step"));
    if (rrun && step && strcmp(rrun, run) == 0)
      (void)rb_approval_decide(state_dir, run, step, 0, by, "the run was cancelled",
                               "cancel", err, sizeof err);
  }
  json_decref(p);
}

/* An interrupted run: no executor will read the request, so the run's end
 * is written here, under the run's lease. */
static int end_interrupted(const char *state_dir, rb_store *st, const char *run,
                           const char *incident, const rb_journal *j, const char *why)
{
  char key[200], err[1024], tl_path[4400], who[768];
  rb_owner me, holder;
  rb_lease *lease = NULL;
  rb_owner_self(&me, run, "cancel");
  if (rb_store_run_key(run, key, sizeof key) != 0 ||
      rb_incident_path(state_dir, incident, tl_path, sizeof tl_path) != 0)
    return RB_EXIT_USAGE;
  int rc = rb_store_acquire(st, key, &me, &lease, &holder, err, sizeof err);
  if (rc == 1) {
    rb_owner_describe(&holder, who, sizeof who);
    fprintf(stderr, "runbook: run %s was taken by %s meanwhile; cancel again\n", run,
            who);
    return RB_EXIT_BUSY;
  }
  if (rc < 0) {
    fprintf(stderr, "runbook: cancel: %s\n", err);
    return RB_EXIT_FAILED;
  }
  rb_timeline *tl = rb_timeline_open(tl_path, 1, NULL, err, sizeof err);
  char actor[160];
  snprintf(actor, sizeof actor, "user:%s", me.user);
  json_t *ev =
      json_pack("{s:s, s:s, s:s, s:n, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:b}}", "incident",
                incident, "run", run, "runbook", j->runbook, "step", "kind", "run",
                "event", "finished", "mode", j->mode, "actor", actor, "detail", "outcome",
                "aborted", "error", why, "cancelled", 1);
  rc = tl ? rb_timeline_append(tl, ev, err, sizeof err) : -1;
  json_decref(ev);
  rb_timeline_free(tl);
  rb_store_release(st, lease);
  if (rc != 0) {
    fprintf(stderr, "runbook: cancel: %s\n", err);
    return RB_EXIT_FAILED;
  }
  printf("run %s was interrupted; it is now ended: %s\n", run, why);
  return RB_EXIT_OK;
}

/* A live run: ask, then wait a little to say whether it has stopped. */
static int cancel_live(rb_store *st, const char *run, const rb_owner *me,
                       const char *reason)
{
  char err[1024], key[200];
  int rc = rb_store_cancel(st, run, me->user, reason, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "runbook: cancel: %s\n", err);
    return RB_EXIT_FAILED;
  }
  rb_store_run_key(run, key, sizeof key);
  rb_owner holder;
  for (int i = 0; i < 30; i++) {
    if (rb_store_holder(st, key, &holder, err, sizeof err) != 1) {
      printf("run %s cancelled by %s: it stopped\n", run, me->user);
      return RB_EXIT_OK;
    }
    usleep(100000);
  }
  printf("run %s: cancel %s by %s; it stops after its running step\n", run,
         rc == 1 ? "was already asked" : "asked", me->user);
  return RB_EXIT_OK;
}

int rb_cli_cancel(const char *state_dir, int argc, char **argv)
{
  static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
  const char *reason = "";
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c != 'r')
      return RB_EXIT_USAGE;
    reason = optarg;
  }
  if (optind != argc - 1) {
    fprintf(stderr, "runbook: cancel needs one run id (see runbook runs)\n");
    return RB_EXIT_USAGE;
  }
  const char *run = argv[optind];
  char err[1024], incident[256], tl_path[4400], key[200], why[1024];
  rb_store *st = rb_store_open_dir(state_dir, err, sizeof err);
  rb_journal j;
  memset(&j, 0, sizeof j);
  int code = RB_EXIT_USAGE;
  if (st == NULL ||
      rb_store_find_run(st, run, incident, sizeof incident, err, sizeof err) != 0 ||
      rb_incident_path(state_dir, incident, tl_path, sizeof tl_path) != 0 ||
      rb_journal_load(tl_path, run, &j, err, sizeof err) != 0 ||
      rb_store_run_key(run, key, sizeof key) != 0) {
    fprintf(stderr, "runbook: cancel: %s\n", err);
    goto out;
  }
  code = RB_EXIT_FAILED;
  if (j.ended) {
    fprintf(stderr, "runbook: run %s already ended (%s): nothing to cancel\n", run,
            j.outcome);
    goto out;
  }
  rb_owner me, holder;
  rb_owner_self(&me, run, "cancel");
  snprintf(why, sizeof why, "cancelled by the operator (%s%s%s)", me.user,
           reason[0] ? ": " : "", reason);
  int live = rb_store_holder(st, key, &holder, err, sizeof err);
  if (live == 1)
    code = cancel_live(st, run, &me, reason);
  else if (live == 0)
    code = end_interrupted(state_dir, st, run, incident, &j, why);
  else
    fprintf(stderr, "runbook: cancel: %s\n", err);
  if (code == RB_EXIT_OK)
    close_gates(state_dir, run, me.user);
out:
  rb_journal_clear(&j);
  rb_store_free(st);
  return code;
}
