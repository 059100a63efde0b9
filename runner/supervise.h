/* supervise.h: runs the executor in a child process watched by a parent,
 * so a runbook stuck inside one C call (a pathological pattern, a huge
 * string operation) is still stopped: the child reports each step's
 * deadline over a pipe, and the parent kills it when deadline + grace
 * passes, then records the kill on the timeline. The child also reports
 * each local command it starts, so the parent can kill the commands of an
 * executor that died: a command never outlives the run that decided it. */
#ifndef RB_SUPERVISE_H
#define RB_SUPERVISE_H

#include <stdint.h>
#include <sys/types.h>

typedef struct {
  const char *timeline_path; /* where to record a kill; NULL = nowhere */
  const char *incident;
  const char *run_id;
  const char *mode;
  const char *actor;
  int64_t grace_ms; /* after a deadline before SIGKILL */
} rb_watch;

/* Calls fn(arg, report_fd) in a child and returns its exit code, or the
 * failed-run code after a watchdog kill or a crash of the child. Messages
 * the child writes to report_fd, one per line:
 *   "R <runbook name>"          the runbook is loaded, events may be written
 *   "S <deadline_ms> <step id>" a step started; monotonic deadline
 *   "E"                         the step ended
 *   "C <pid> <command>"         a command started in process group pid
 *   "c <pid>"                   that command was reaped
 * When the child ends (any way) with commands still reported as running,
 * the parent kills their process groups with SIGKILL and records each kill
 * on the timeline as a note of the step. */
int rb_supervise(int (*fn)(void *arg, int report_fd), void *arg, const rb_watch *w);

/* The child's side of that protocol; each writes exactly one line to fd and
 * does nothing when fd < 0 (an unsupervised run). A name or step id is cut
 * to fit and its control characters become '?', so a strange id can never
 * cost the watchdog a deadline. */
void rb_supervise_loaded(int fd, const char *runbook);
void rb_supervise_step(int fd, int64_t deadline_ms, const char *step);
void rb_supervise_ended(int fd);
/* For the process engine (stdlib/cmd.c), which has no report fd of its own:
 * they write to the report fd of the supervised child they run in, and do
 * nothing outside one. summary is the command as the timeline may show it
 * (already redacted); it is cut to fit. */
void rb_supervise_command_started(pid_t pgid, const char *summary);
void rb_supervise_command_ended(pid_t pgid);

#endif
