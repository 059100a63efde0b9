/* mirror_pg.h: the listener's half of the timeline mirror (runner/
 * timeline_mirror.h): every event of its runs committed to the shared store
 * before the run may go on, run owners in rb_runs, and the take-over of
 * the runs of a replica that died. */
#ifndef RB_SERVE_MIRROR_PG_H
#define RB_SERVE_MIRROR_PG_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "stdlib/rb_host.h"

typedef struct rb_mirror rb_mirror;

/* Starts `runbook resume RUN` for a run this replica took over; 0 or -1. */
typedef int (*rb_mirror_resume_fn)(void *arg, const char *run);

/* A run this replica took over ended failed (an action in doubt, most
 * often), its failed event ev committed: a human must decide. Called on the
 * mirror thread. */
typedef void (*rb_mirror_stuck_fn)(void *arg, const char *incident, const json_t *ev);

/* Starts the mirror thread (its own connection). NULL with err. */
rb_mirror *rb_mirror_start(const rb_config *cfg, const char *state_dir,
                           rb_mirror_resume_fn resume, rb_mirror_stuck_fn stuck,
                           void *arg, char *err, size_t errlen);
void rb_mirror_stop(rb_mirror *m); /* NULL-safe */

/* A socket pair for a child about to start: returns the child's end (to be
 * its fd 3), the listener's end in *mine; -1 on failure. */
int rb_mirror_pair(int *mine);
/* The child started: the mirror serves its end. run is the run it resumes,
 * or NULL (learnt from its events). */
void rb_mirror_attach(rb_mirror *m, int mine, pid_t pid, const char *run);

/* env with RB_TIMELINE_MIRROR_FD=3 added: a new array (the strings are
 * shared), the old one freed. NULL on failure (env then kept). */
char **rb_mirror_env(char **env);

#endif
