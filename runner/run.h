/* run.h: one run of a runbook: its options, identity, timeline and outcome,
 * and the documented exit codes of the runbook command. */
#ifndef RB_RUN_H
#define RB_RUN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "runner/config.h"
#include "runner/store.h"
#include "runner/timeline.h"
#include "stdlib/rb_host.h"

/* The exit codes (RB_EXIT_*) and rb_mode are part of the host interface. */

/* Attaches the host of a run to its Lua state (rb_host_get reads it). */
void rb_host_set(lua_State *L, rb_host *h);

typedef struct {
  const char *runbook_path; /* resolved file */
  rb_mode mode;
  const char *incident;
  const char *run_id;
  const char *actor;         /* "user:alice" or "alert:CheckoutHighErrorRate" */
  const char *state_dir;     /* timelines live in <state_dir>/incidents */
  const char *approve_cmd;   /* "runbook [--state-dir D]" for the approve hint, or NULL */
  json_t *vars;              /* object: name -> string, from --var */
  const char *scenario_path; /* drill: the scenario file, loaded by the executor */
  const char *scenario_name;
  const char *record_path; /* dry-run --record: the scenario file to write */
  const rb_config *config;
  int json_stream; /* --json: timeline events to stdout */
  int color;       /* ANSI colour on the terminal */
  int quiet;
  int do_fsync;
  int report_fd; /* pipe to the supervisor, -1 when unsupervised */
  /* resume: continue a journaled run instead of starting at `start` */
  const char *resume_at;      /* step to run first, or NULL */
  const json_t *resume_ctx;   /* ctx as last journaled */
  const json_t *resume_path;  /* steps walked before the crash */
  const char *resume_note;    /* why/how, for the run's started event */
  const char *started_by;     /* resume: the actor who first started it (not_self) */
  int resume_in_doubt;        /* resume_at is an action that may have half-run */
  const char *in_doubt;       /* "rerun", "skip" or NULL (refuse unless idempotent) */
  const json_t *in_doubt_ops; /* the writes it had started */
  int resumed;                /* a resume, also when resume_at is NULL (at start) */
  /* ownership: the store whose run lease the supervisor holds */
  rb_store *store;
  int force; /* --force: run even when another run holds the exec lock */
  /* plans (docs/plans.md) */
  const json_t *plan; /* exec --plan: the checked plan this exec follows */
  int plan_check;     /* the dry-run pass of exec --plan: its plan is compared */
} rb_run_opts;

/* Runs one runbook to its end in this process and returns an exit code.
 * Every step lands on the timeline; errors are printed to stderr. */
int rb_run_execute(const rb_run_opts *o);

/* Path of an incident's timeline: <state_dir>/incidents/<incident>.jsonl. */
int rb_incident_path(const char *state_dir, const char *incident, char *out, size_t len);

/* Loads and validates a runbook without running it. Prints problems to
 * stderr; returns RB_EXIT_OK or RB_EXIT_INVALID. With show=1 prints the
 * readable outline of the tree to out. */
int rb_run_check(const char *path, const rb_config *cfg, int show, FILE *out,
                 int report_fd);
/* Prints "name  title" for a runbook file, or an error line. */
int rb_run_describe(const char *path, const rb_config *cfg, char *name, size_t nlen,
                    char *title, size_t tlen, char *err, size_t errlen, int report_fd);

#endif
