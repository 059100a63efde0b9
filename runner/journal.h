/* journal.h: reading a run back from its timeline to resume it after a
 * crash: where it stopped, what ctx held, and whether an action is "in
 * doubt" (started, never finished). Plain C, no Lua. */
#ifndef RB_JOURNAL_H
#define RB_JOURNAL_H

#include <jansson.h>

typedef struct {
  char file[4096];   /* the runbook file the run used */
  char runbook[256]; /* its name */
  char mode[16];     /* exec, dry-run, drill */
  char actor[160];
  json_t *params; /* object, from the run's started event */
  json_t *ctx;    /* the last ctx journaled, or NULL */
  json_t *path;   /* step ids walked so far */
  char next[256]; /* the step to continue at ("" = none known) */
  char last[256]; /* the last step that started */
  char last_kind[32];
  int in_doubt;         /* last step is an action that started and never ended */
  int failed;           /* last step failed (and no on_error was taken) */
  json_t *in_doubt_ops; /* the writes it had started, for the message */
  int ended;            /* the run recorded an outcome: nothing to resume */
  char outcome[32];
} rb_journal;

/* Reads the events of run `run_id` from the timeline at path. Returns 0, or
 * -1 with err (no such run, unreadable file). Free with rb_journal_clear. */
int rb_journal_load(const char *path, const char *run_id, rb_journal *j, char *err,
                    size_t errlen);
void rb_journal_clear(rb_journal *j);
/* Finds the incident whose timeline holds run_id under <state_dir>/incidents.
 * Returns 0 with the incident id in out, or -1 with err. */
int rb_journal_find_incident(const char *state_dir, const char *run_id, char *out,
                             size_t len, char *err, size_t errlen);

#endif
