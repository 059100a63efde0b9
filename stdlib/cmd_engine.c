/* cmd_engine.c: the process engine under the `cmd` module: fork, exec in
 * a process group with a parent-death signal, poll the pipes, kill the
 * group on timeout. No Lua here, so it is tested on its own. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "runner/base/redact.h"
#include "runner/base/util.h"
#include "stdlib/cmd_engine.h"
#include "stdlib/rb_host.h"

static void buf_add(rb_cmd_buf *b, const char *p, size_t n)
{
  if (rb_buf_add_upto(&b->b, p, n) != RB_BUF_OK)
    b->truncated = 1;
}

static void cmd_child(const rb_cmd_spec *s, char *const *envp, pid_t parent, int in_fd,
                      int out_fd, int err_fd, int status_fd)
{
  /* Its own group, so a timeout kills what it started too, and the
   * supervisor kills that group if the executor dies. The parent-death
   * signal is the backstop when the supervisor dies with it (kill -9 of the
   * whole run); the re-check closes the window where the executor died
   * before prctl. */
  setpgid(0, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
    int e = errno ? errno : ESRCH;
    (void)!write(status_fd, &e, sizeof e);
    _exit(127);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  if (s->cwd && chdir(s->cwd) != 0) {
    int e = errno;
    (void)!write(status_fd, &e, sizeof e);
    _exit(127);
  }
  execvpe(s->argv[0], (char *const *)s->argv, envp);
  int e = errno;
  (void)!write(status_fd, &e, sizeof e);
  _exit(127);
}

static void cmd_kill_group(pid_t pid, int *status)
{
  kill(-pid, SIGTERM);
  for (int i = 0; i < 20; i++) {
    if (waitpid(pid, status, WNOHANG) == pid)
      return;
    usleep(50 * 1000);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, status, 0);
}

/* The command as the supervisor may show it on the timeline: argv joined
 * by spaces, scrubbed of secrets, or NULL when out of memory. */
static char *cmd_summary(const rb_cmd_spec *s)
{
  rb_buf b;
  rb_buf_init(&b, 65536); /* redacted whole, then cut by the report line */
  for (int i = 0; i < s->argc; i++) {
    if ((i > 0 && rb_buf_add_upto(&b, " ", 1) != RB_BUF_OK) ||
        rb_buf_add_upto(&b, s->argv[i], strlen(s->argv[i])) != RB_BUF_OK)
      break;
  }
  char *out = rb_redact_str(rb_buf_str(&b));
  rb_buf_free(&b);
  return out;
}

int rb_cmd_execute(const rb_cmd_spec *s, rb_cmd_result *r)
{
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, st[2] = {-1, -1};
  int rc = -1;
  r->exit_code = -1;
  rb_buf_init(&r->out.b, s->output_limit);
  rb_buf_init(&r->err.b, s->output_limit);
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
      pipe2(st, O_CLOEXEC)) {
    snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
    goto out;
  }
  char *summary = cmd_summary(s);
  pid_t parent = getpid();
  int64_t start = rb_now_mono_ms();
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
    free(summary);
    goto out;
  }
  if (pid == 0)
    cmd_child(s, r->env.vars, parent, in[0], out[1], err[1], st[1]);
  setpgid(pid, pid);
  rb_host_command_started(pid, summary ? summary : s->argv[0]);
  free(summary);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(st[1]);
  in[0] = out[1] = err[1] = st[1] = -1;
  int child_errno = 0;
  if (read(st[0], &child_errno, sizeof child_errno) == (ssize_t)sizeof child_errno) {
    int status;
    waitpid(pid, &status, 0);
    rb_host_command_ended(pid);
    snprintf(r->error, sizeof r->error, "cannot run '%s': %s", s->argv[0],
             strerror(child_errno));
    goto out;
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  size_t in_off = 0;
  if (s->stdin_len == 0) {
    close(in[1]);
    in[1] = -1;
  }
  int status = 0;
  int64_t said = 0; /* when on_wait was last called */
  while (out[0] >= 0 || err[0] >= 0) {
    int64_t now = rb_now_mono_ms();
    if (s->on_wait && now - start >= CMD_WAIT_SAY_MS && now - said >= 1000) {
      said = now;
      s->on_wait(s->wait_arg, now - start, 0);
    }
    struct pollfd p[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    int64_t left = start + s->timeout_ms - rb_now_mono_ms();
    if (left <= 0) {
      r->timed_out = 1;
      break;
    }
    if (rb_stop_requested()) {
      r->interrupted = 1;
      break;
    }
    /* A stop request interrupts poll (EINTR); 200 ms bounds the wait when
     * the signal landed between the check above and poll. */
    if (poll(p, 3, left > 200 ? 200 : (int)left) < 0 && errno != EINTR)
      break;
    char chunk[16384];
    for (int i = 0; i < 2; i++) {
      int *fd = i == 0 ? &out[0] : &err[0];
      if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t n = read(*fd, chunk, sizeof chunk);
      if (n > 0)
        buf_add(i == 0 ? &r->out : &r->err, chunk, (size_t)n);
      else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
      }
    }
    if (in[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(in[1], s->stdin_data + in_off, s->stdin_len - in_off);
      if (n > 0)
        in_off += (size_t)n;
      if (n < 0 || in_off >= s->stdin_len) {
        close(in[1]);
        in[1] = -1;
      }
    }
  }
  if (r->timed_out || r->interrupted) {
    cmd_kill_group(pid, &status);
  } else {
    /* Output closed; the process may still be exiting, or may have left a
     * child holding nothing. Wait up to the deadline. */
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (rb_stop_requested()) {
        r->interrupted = 1;
        cmd_kill_group(pid, &status);
        break;
      }
      if (rb_now_mono_ms() - start > s->timeout_ms) {
        r->timed_out = 1;
        cmd_kill_group(pid, &status);
        break;
      }
      usleep(1000);
    }
  }
  rb_host_command_ended(pid);
  r->duration_ms = rb_now_mono_ms() - start;
  if (s->on_wait && said)
    s->on_wait(s->wait_arg, r->duration_ms, 1);
  if (WIFEXITED(status) && !r->timed_out && !r->interrupted)
    r->exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r->signal = WTERMSIG(status);
  rc = 0;
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
    if (err[i] >= 0)
      close(err[i]);
    if (st[i] >= 0)
      close(st[i]);
  }
  return rc;
}

void rb_cmd_result_clear(rb_cmd_result *r)
{
  if (r == NULL)
    return;
  rb_buf_free(&r->out.b);
  rb_buf_free(&r->err.b);
}
