/* supervise.c: the parent side of a run: a watchdog over the child that
 * executes the runbook, and the timeline record when it has to step in. */
#include "runner/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/run.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

#define WATCH_CMDS 8 /* commands in flight at once (cmd runs one at a time) */

typedef struct {
  pid_t pgid;
  char summary[400];
} watch_cmd;

typedef struct {
  char runbook[256];
  char step[256];
  int64_t deadline;
  char buf[1024];
  size_t len;
  watch_cmd cmds[WATCH_CMDS];
} watch_state;

static void parse_command(watch_state *ws, const char *line, int started)
{
  char *end = NULL;
  long pgid = strtol(line + 2, &end, 10);
  if (pgid <= 1 || end == line + 2)
    return; /* never a group we could kill by mistake: 0, 1, garbage */
  for (int i = 0; i < WATCH_CMDS; i++) {
    watch_cmd *c = &ws->cmds[i];
    if (!started && c->pgid == (pid_t)pgid) {
      c->pgid = 0;
      return;
    }
    if (started && c->pgid == 0) {
      c->pgid = (pid_t)pgid;
      snprintf(c->summary, sizeof c->summary, "%s", *end == ' ' ? end + 1 : "?");
      return;
    }
  }
}

static void parse_line(watch_state *ws, const char *line)
{
  if (line[0] == 'R' && line[1] == ' ') {
    snprintf(ws->runbook, sizeof ws->runbook, "%s", line + 2);
  } else if (line[0] == 'S' && line[1] == ' ') {
    char *end = NULL;
    long long d = strtoll(line + 2, &end, 10);
    ws->deadline = d;
    snprintf(ws->step, sizeof ws->step, "%s", end && *end == ' ' ? end + 1 : "?");
  } else if (line[0] == 'E') {
    ws->deadline = 0;
  } else if ((line[0] == 'C' || line[0] == 'c') && line[1] == ' ') {
    parse_command(ws, line, line[0] == 'C');
  }
}

static void drain(watch_state *ws, int fd, int *open)
{
  ssize_t n = read(fd, ws->buf + ws->len, sizeof ws->buf - 1 - ws->len);
  if (n <= 0) {
    if (n == 0 || errno != EINTR)
      *open = 0;
    return;
  }
  ws->len += (size_t)n;
  ws->buf[ws->len] = '\0';
  char *start = ws->buf, *nl;
  while ((nl = strchr(start, '\n')) != NULL) {
    *nl = '\0';
    parse_line(ws, start);
    start = nl + 1;
  }
  ws->len = strlen(start);
  memmove(ws->buf, start, ws->len + 1);
  if (ws->len == sizeof ws->buf - 1)
    ws->len = 0; /* a line longer than the buffer is garbage */
}

/* -- the child's side ------------------------------------------------------ */

static void send_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(int fd, const char *fmt, ...)
{
  if (fd < 0)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n <= 0)
    return;
  /* Exactly one line per report, even for a long step id (cut, not
   * dropped) or one holding "\nE": either would leave the watchdog without
   * the step's deadline. */
  if ((size_t)n >= sizeof buf) {
    n = (int)sizeof buf - 1;
    buf[n - 1] = '\n';
  }
  for (int i = 0; i < n - 1; i++)
    if ((unsigned char)buf[i] < 0x20)
      buf[i] = '?';
  (void)!write(fd, buf, (size_t)n);
}

void rb_supervise_loaded(int fd, const char *runbook)
{
  send_line(fd, "R %s\n", runbook);
}

void rb_supervise_step(int fd, int64_t deadline_ms, const char *step)
{
  send_line(fd, "S %lld %s\n", (long long)deadline_ms, step);
}

void rb_supervise_ended(int fd)
{
  send_line(fd, "E\n");
}

/* The report fd of the supervised child this process is, for the process
 * engine; -1 outside one (unit tests, an unsupervised run). */
static int command_fd = -1;

void rb_supervise_command_started(pid_t pgid, const char *summary)
{
  send_line(command_fd, "C %ld %s\n", (long)pgid, summary);
}

void rb_supervise_command_ended(pid_t pgid)
{
  send_line(command_fd, "c %ld\n", (long)pgid);
}

/* -- the parent's side ----------------------------------------------------- */

static volatile sig_atomic_t g_child; /* for the forwarding handler only */

/* SIGINT and SIGTERM go to the executor, which stops at a safe point (at
 * once when it waits at a gate). A terminal's Ctrl-C reaches it twice
 * (directly and forwarded); it stops once. */
static void forward(int sig)
{
  if (g_child > 0)
    kill((pid_t)g_child, sig);
}

static void record(const rb_watch *w, const watch_state *ws, const char *step,
                   const char *event, json_t *detail)
{
  if (w->timeline_path == NULL || ws->runbook[0] == '\0') {
    json_decref(detail);
    return;
  }
  char err[512];
  rb_timeline *tl = rb_timeline_open(w->timeline_path, 1, NULL, err, sizeof err);
  if (tl == NULL) {
    fprintf(stderr, "runbook: watchdog: cannot record on the timeline: %s\n", err);
    json_decref(detail);
    return;
  }
  json_t *ev =
      json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:o}", "incident", w->incident,
                "run", w->run_id, "runbook", ws->runbook, "step",
                step ? json_string(step) : json_null(), "kind", step ? "step" : "run",
                "event", event, "mode", w->mode, "actor", w->actor, "detail", detail);
  if (rb_timeline_append(tl, ev, err, sizeof err) != 0)
    fprintf(stderr, "runbook: watchdog: cannot record on the timeline: %s\n", err);
  json_decref(ev);
  rb_timeline_free(tl);
}

/* The executor is gone, so nobody is left to decide about its commands:
 * kill each group still reported as running, whatever killed the executor.
 * The command's direct process may already be dead from its parent-death
 * signal (stdlib/cmd.c); the group kill also gets what it started. */
static void kill_commands(const rb_watch *w, watch_state *ws)
{
  for (int i = 0; i < WATCH_CMDS; i++) {
    watch_cmd *c = &ws->cmds[i];
    if (c->pgid == 0)
      continue;
    kill(-c->pgid, SIGKILL);
    char msg[600];
    snprintf(msg, sizeof msg, "killed command pid %ld (%s) when the executor died",
             (long)c->pgid, c->summary);
    fprintf(stderr, "runbook: %s\n", msg);
    record(w, ws, ws->deadline ? ws->step : NULL, "note",
           json_pack("{s:s, s:I, s:s, s:b}", "message", msg, "pid", (json_int_t)c->pgid,
                     "command", c->summary, "killed", 1));
    c->pgid = 0;
  }
}

int rb_supervise(int (*fn)(void *arg, int report_fd), void *arg, const rb_watch *w)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    fprintf(stderr, "runbook: pipe: %s\n", strerror(errno));
    return RB_EXIT_FAILED;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "runbook: fork: %s\n", strerror(errno));
    close(p[0]);
    close(p[1]);
    return RB_EXIT_FAILED;
  }
  if (pid == 0) {
    close(p[0]);
    command_fd = p[1];
    /* No core files: a dump of the executor would hold secrets. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    int code = fn(arg, p[1]);
    fflush(stdout);
    fflush(stderr);
    exit(code); /* not _exit: LeakSanitizer checks the child too */
  }
  close(p[1]);
  struct sigaction fwd, old_int, old_term;
  memset(&fwd, 0, sizeof fwd);
  fwd.sa_handler = forward;
  fwd.sa_flags = SA_RESTART;
  g_child = pid;
  sigaction(SIGINT, &fwd, &old_int);
  sigaction(SIGTERM, &fwd, &old_term);
  watch_state ws;
  memset(&ws, 0, sizeof ws);
  int open = 1, killed = 0;
  int64_t grace = w->grace_ms > 0 ? w->grace_ms : 1000;
  while (open) {
    int timeout = -1;
    if (ws.deadline > 0) {
      int64_t left = ws.deadline + grace - rb_now_mono_ms();
      timeout = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
    }
    struct pollfd pfd = {p[0], POLLIN, 0};
    int r = poll(&pfd, 1, timeout);
    if (r > 0) {
      drain(&ws, p[0], &open);
    } else if (r == 0 && ws.deadline > 0 && rb_now_mono_ms() >= ws.deadline + grace) {
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  kill_commands(w, &ws);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  g_child = 0;
  if (killed) {
    char msg[512];
    snprintf(msg, sizeof msg,
             "step '%s' did not stop at its deadline (stuck inside one call); the "
             "watchdog killed the executor %lld ms after it",
             ws.step, (long long)grace);
    fprintf(stderr, "runbook: %s\n", msg);
    record(w, &ws, ws.step, "failed",
           json_pack("{s:s, s:b}", "error", msg, "watchdog", 1));
    record(w, &ws, NULL, "failed",
           json_pack("{s:s, s:s}", "outcome", "failed", "error", msg));
    return RB_EXIT_FAILED;
  }
  if (WIFSIGNALED(status)) {
    char msg[640];
    snprintf(msg, sizeof msg, "the executor died from signal %d (%s)%s%s",
             WTERMSIG(status), strsignal(WTERMSIG(status)),
             ws.deadline ? " during step " : "", ws.deadline ? ws.step : "");
    fprintf(stderr, "runbook: %s\n", msg);
    record(w, &ws, ws.deadline ? ws.step : NULL, "failed",
           json_pack("{s:s, s:s}", "outcome", "failed", "error", msg));
    return RB_EXIT_FAILED;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : RB_EXIT_FAILED;
}
