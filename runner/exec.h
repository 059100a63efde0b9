/* exec.h: the executor's internals, shared by its files (console, events,
 * steps, resume, open, show); not for the stdlib. The public API is run.h. */
#ifndef RB_EXEC_H
#define RB_EXEC_H

#include <jansson.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>

#include "runner/model.h"
#include "runner/run.h"
#include "runner/timeline.h"
#include "sandbox/sandbox.h"

/* One run in progress. */
typedef struct {
  const rb_run_opts *o;
  json_t *scenario; /* drill only */
  sb_state *sb;
  rb_model *m;
  rb_timeline *tl;
  rb_host host;
  const rb_step *cur;
  json_t *path;          /* step ids in the order walked */
  json_t *collect;       /* approval preview: would_run details land here */
  json_t *last_ctx;      /* ctx as JSON after the previous step */
  json_t *would_fail;    /* dry-run: "target: reason" of each failed preflight */
  int preflights;        /* dry-run: would_run events that carried a preflight */
  json_t *pages;         /* escalation targets paged, to resolve at a resolved end */
  json_t *page_failures; /* "page dba-team FAILED: why", for the run's end */
  int64_t run_start_us;
  int64_t sim_ms;        /* drill: simulated time the waits have spent */
  int64_t sim_poll;      /* drill: the poll of the running wait (0-based), 0 in a check */
  char unanswered[1024]; /* drill: a call no answer covered; ends the drill invalid */
  json_t *record;        /* dry-run --record: module -> the reads' answers */
  int64_t step_timeout_ms;
  int64_t run_deadline_ms;
  int64_t approval_timeout_ms;
  int journal_broken;
  rb_lease *exec_lease; /* the (runbook, incident) lock, NULL when forced */
  FILE *log;
  FILE *out;     /* progress lines */
  int polling;   /* in a wait's condition: its reads' failures go to the poll line */
  int poll_line; /* an updating poll line is on the terminal, not ended */
  struct rb_plan_state *plan; /* plan.c: recorded (dry-run) or followed (exec --plan) */
  int64_t status_plain_ms;    /* when the last plain status line was printed */
} rb_exec;

/* What one step did. */
typedef struct {
  const char *next;   /* the step to go to */
  rb_outcome outcome; /* when the run ends here; NONE otherwise */
  char error[1024];   /* failure message */
  int fatal;          /* failure ends the run regardless of on_error */
  int invalid;        /* the scenario can not answer: exit as invalid */
} rb_step_out;

/* executor.c: 1 once SIGINT or SIGTERM arrived. */
int rb_exec_interrupted(void);

/* -- console.c ------------------------------------------------------------ */
#define C_RESET "\033[0m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_CYAN "\033[36m"

/* code when the run prints in colour, "" otherwise. */
const char *rb_console_col(const rb_exec *ex, const char *code);
/* A wait's poll n, elapsed of timeout and what it read: one line rewritten in
 * place on a terminal, a plain line per poll otherwise. */
void rb_console_poll(rb_exec *ex, int n, int64_t waited_ms, int64_t timeout_ms,
                     const char *last);
/* Ends the updating poll line, if one is on screen. */
void rb_console_poll_end(rb_exec *ex);
/* One redacted progress line, unless quiet or --json. */
void rb_console_say(rb_exec *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A would_run or failed operation of the current step, dimmed. */
void rb_console_op(rb_exec *ex, const char *event, const json_t *d);
void rb_console_progress(rb_host *h, const char *line);
/* The host's status line (rb_host.h): rewritten in place on a terminal. */
void rb_console_status(rb_host *h, const char *line, int heartbeat);
/* sb_limits.print: the runbook's print() and warnings, also into the log. */
void rb_console_sandbox_print(void *arg, const char *text, int is_warning);
void rb_console_step_start(rb_exec *ex, const rb_step *s);
void rb_console_step_end(rb_exec *ex, const rb_step *s, int64_t t0, const rb_step_out *o,
                         const json_t *detail, int ok);
void rb_console_terminal(rb_exec *ex, const rb_step *s);
void rb_console_banner(rb_exec *ex);
void rb_console_summary(rb_exec *ex, rb_outcome outcome, const char *error,
                        const char *tlpath);

/* -- events.c ------------------------------------------------------------- */
/* Appends one event (detail stolen; s NULL for the run itself); the run
 * stops (journal_broken) if the journal can not be written. */
int rb_event_emit(rb_exec *ex, const rb_step *s, const char *event, int64_t dur_ms,
                  json_t *detail);
/* rb_host.emit: operations inside a step (commands, requests). */
int rb_event_host_emit(rb_host *h, const char *event, json_t *detail);
/* Notes a would_run's preflight result (a dry-run's, outside a preview). */
void rb_event_preflight(rb_exec *ex, const json_t *detail);
/* Adds "ctx" to detail when the runbook's ctx changed during the step; -1
 * with err (naming the key) when ctx cannot be journaled. */
int rb_event_ctx(rb_exec *ex, json_t *detail, char *err, size_t errlen);

/* -- drill.c -------------------------------------------------------------- */
/* drill: polls s's scenario answer ans ("value", or "values" one per poll)
 * on the simulated clock, on exec's schedule, and records polls, waited_ms
 * and simulated in detail. Returns 1 when the condition was met. */
int rb_drill_wait(rb_exec *ex, const rb_step *s, const json_t *ans, json_t *detail);
/* drill: 1 when s runs its own code, its reads answered at the call level:
 * the scenario has "calls" and does not answer s itself. */
int rb_drill_runs_code(rb_exec *ex, const rb_step *s);

/* -- record.c ------------------------------------------------------------- */
/* Clears a hold a recorded call left behind when it raised (each step). */
void rb_record_step(rb_exec *ex);
/* dry-run --record: writes the recorded reads as a scenario whose expect is
 * outcome and the path walked. Returns 0, or -1 (printed). */
int rb_record_write(rb_exec *ex, rb_outcome outcome);

/* -- step_call.c ---------------------------------------------------------- */
int64_t rb_step_deadline(rb_exec *ex, const rb_step *s);
void rb_step_enter(rb_exec *ex, const rb_step *s, int64_t deadline_ms);
void rb_step_leave(rb_exec *ex);
/* Calls field (a function) of s with ctx; on success the result is on the
 * stack. Returns 0, or -1 with err; *fatal when nothing may catch it. */
int rb_step_call(rb_exec *ex, const rb_step *s, const char *field, char *err,
                 size_t errlen, int *fatal);
/* The same, leaving the first nres results (a wait's verdict and reading). */
int rb_step_call_n(rb_exec *ex, const rb_step *s, const char *field, int nres, char *err,
                   size_t errlen, int *fatal);
/* The branch key for the Lua value on the stack top; -1 if it has none. */
int rb_step_value_key(lua_State *L, char *key, size_t len);
/* The step's return value (stack top, popped) as JSON, cut when too big. */
json_t *rb_step_result(rb_exec *ex, char *err, size_t errlen);
/* A string field of the step, or the string a function field returns. */
int rb_step_text(rb_exec *ex, const rb_step *s, const char *field, char *buf, size_t len,
                 rb_step_out *o);
/* drill: the scenario's answer for s (new reference) or NULL. */
json_t *rb_step_answer(rb_exec *ex, const rb_step *s);

/* -- steps.c -------------------------------------------------------------- */
/* Formats o->error; returns -1. */
int rb_step_fail(rb_step_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Runs one step and records it; fills o. Returns 0 or -1 (failed). */
int rb_step_run(rb_exec *ex, const rb_step *s, rb_step_out *o);

/* -- step_page.c ---------------------------------------------------------- */
/* An escalate step's page to [escalation.TO] (exec: sent; dry-run, drill:
 * would_run), recorded as detail.page. A page that fails is said loudly and
 * kept in page_failures; it does not fail the step. */
void rb_escalation_page(rb_exec *ex, const rb_step *s, const char *to,
                        const char *message, json_t *detail);
/* A resumed run: the pages its journal says were sent, to resolve them too. */
void rb_escalation_recover(rb_exec *ex, const char *tlpath);
/* At a resolved end (step s): resolves every target this run paged. */
void rb_escalation_resolve(rb_exec *ex, const rb_step *s);

/* -- step_gate.c ---------------------------------------------------------- */
/* An approval gate. Returns 1 approved, 0 denied, -1 error (in o). */
int rb_step_gate(rb_exec *ex, const rb_step *s, const char *question, rb_step_out *o);

/* -- resume.c ------------------------------------------------------------- */
/* What to do with an action that started and never finished: the step to
 * continue at, or NULL with the reason (and *usage: the operator chooses). */
const rb_step *rb_resume_settle(rb_exec *ex, const rb_step *s, char *error, size_t elen,
                                int *usage);
/* The journaled writes of an in-doubt action, one readable line each. */
void rb_resume_intents(const json_t *ops, char *out, size_t len);
/* Copies what the journaled run's steps had stored into the table on top. */
void rb_resume_ctx(lua_State *L, const json_t *resume_ctx);

/* -- ownership.c ---------------------------------------------------------- */
/* exec: takes the lock on (runbook, core.exec_lock's key) into ex->exec_lease.
 * Returns RB_EXIT_OK, RB_EXIT_BUSY when a live run holds it (printed), or
 * RB_EXIT_INVALID for a bad core.exec_lock; with --force a held lock is
 * passed over and *forced (new reference) says whose, for the timeline. */
int rb_exec_lock(rb_exec *ex, const json_t *params, json_t **forced);
/* 1 with why when the run must stop at this safe point: SIGINT or SIGTERM
 * arrived, or `runbook cancel` asked. */
int rb_exec_stop_requested(rb_exec *ex, char *why, size_t len);

/* -- plan.c (docs/plans.md) ----------------------------------------------- */
/* Starts recording (dry-run) or following (exec with o->plan). -1 on OOM. */
int rb_plan_begin(rb_exec *ex);
void rb_plan_free(struct rb_plan_state *p);
/* rb_event_emit: a step's end joins the recorded path. */
void rb_plan_on_event(rb_exec *ex, const rb_step *s, const char *event, const json_t *d);
/* rb_event_host_emit: records a would_run; in a followed plan, -1 refuses a
 * started write that is not the plan's next one (it is then not sent). */
int rb_plan_on_op(rb_exec *ex, const char *event, const json_t *d);
/* walk: -1 (err) when s is not the plan's next step; it does not start. */
int rb_plan_step(rb_exec *ex, const rb_step *s, char *err, size_t len);
/* Why the run left its plan, or NULL. */
const char *rb_plan_diverged(const rb_exec *ex);
/* A gate's view of the followed plan (id, digest, writes remaining), or NULL. */
json_t *rb_plan_gate_info(rb_exec *ex);
/* The gate's lines about it on the terminal, and its id and digest on the
 * approval's record. */
void rb_plan_gate_say(rb_exec *ex, const json_t *req);
void rb_plan_gate_note(rb_exec *ex, json_t *detail);
json_t *rb_plan_recorded(const rb_exec *ex);
size_t rb_plan_unsent(const rb_exec *ex);
/* plan_file.c, before the run's last event: a dry-run saves its plan; fin
 * gets the plan's id and digest (also of the plan an exec followed). */
void rb_plan_finish(rb_exec *ex, int finished, rb_outcome outcome, json_t *fin);
/* After the summary: where the plan is; the exit code (6 when the run left
 * the plan it followed). */
int rb_plan_exit(rb_exec *ex, const json_t *info, int code);

/* -- open.c --------------------------------------------------------------- */
/* Creates the sandbox, loads the runbook under the load budget and
 * validates it. Returns RB_EXIT_OK with *sb_out and *m_out (the caller frees
 * both), or RB_EXIT_INVALID / RB_EXIT_FAILED with every problem, one per
 * line, in err. Prints nothing. */
int rb_runbook_open(const char *path, const rb_config *cfg, rb_host *host,
                    void (*print)(void *, const char *, int), void *print_arg, int rfd,
                    sb_state **sb_out, rb_model **m_out, char *err, size_t errlen);
/* rb_runbook_open, printing its problems to stderr. */
int rb_runbook_load(const char *path, const rb_config *cfg, rb_host *host,
                    void (*print)(void *, const char *, int), void *print_arg,
                    sb_state **sb_out, rb_model **m_out, int rfd);

#endif
