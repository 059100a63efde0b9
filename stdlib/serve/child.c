/* child.c: the alert listener's checks that a rule's run can start
 * (runbook inspected in a child, parameters mapped) and its children's env. */
#include "stdlib/serve/child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stdlib/serve/alerts.h"
#include "runner/base/buf.h"
#include "stdlib/rb_host.h"
#include "runner/base/util.h"

extern char **environ;

#define INSPECT_LIMIT_MS 20000 /* the runbook load budget is 10 s */

char **rb_serve_child_env(const char *const *drop, size_t ndrop)
{
  size_t n = 0;
  while (environ[n])
    n++;
  char **out = calloc(n + 1, sizeof *out);
  if (out == NULL)
    return NULL;
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    int keep = 1;
    for (size_t k = 0; k < ndrop; k++) {
      size_t len = drop[k] ? strlen(drop[k]) : 0;
      if (len && strncmp(environ[i], drop[k], len) == 0 && environ[i][len] == '=')
        keep = 0;
    }
    if (keep)
      out[w++] = environ[i];
  }
  return out;
}

/* Reads the child's stdout and stderr until both close or the deadline. */
static int collect(int ofd, int efd, rb_buf *out, rb_buf *errb)
{
  struct pollfd p[2] = {{ofd, POLLIN, 0}, {efd, POLLIN, 0}};
  int64_t deadline = rb_now_mono_ms() + INSPECT_LIMIT_MS;
  while (p[0].fd >= 0 || p[1].fd >= 0) {
    int64_t left = deadline - rb_now_mono_ms();
    if (left <= 0)
      return -1;
    if (poll(p, 2, (int)left) < 0 && errno != EINTR)
      return -1;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[4096];
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      if (n > 0)
        rb_buf_add(i == 0 ? out : errb, buf, (size_t)n);
      else if (n == 0 || errno != EINTR)
        p[i].fd = -1;
    }
  }
  return 0;
}

static pid_t spawn_inspect(const char *state_dir, const char *config_file,
                           char *const *envp, const char *name, int ofd, int efd)
{
  const char *av[14];
  int n = 0;
  av[n++] = "/proc/self/exe";
  av[n++] = "--state-dir";
  av[n++] = state_dir;
  if (config_file) {
    av[n++] = "--config";
    av[n++] = config_file;
  }
  av[n++] = "show";
  av[n++] = "--format";
  av[n++] = "json";
  av[n++] = name;
  av[n] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, ofd, 1);
  posix_spawn_file_actions_adddup2(&fa, efd, 2);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, (char *const *)av, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return rc == 0 ? pid : -1;
}

/* The first line of the child's stderr, without the "runbook: " prefix. */
static void first_problem(rb_buf *e, const char *name, char *err, size_t errlen)
{
  const char *t = e->len ? rb_buf_str(e) : "";
  if (strncmp(t, "runbook: ", 9) == 0)
    t += 9;
  size_t n = strcspn(t, "\n");
  if (n == 0)
    rb_err(err, errlen, "runbook '%s' could not be inspected", name);
  else
    rb_err(err, errlen, "%.*s", (int)(n > 400 ? 400 : n), t);
}

json_t *rb_serve_inspect(const char *state_dir, const char *config_file,
                         char *const *envp, const char *name, char *err, size_t errlen)
{
  int op[2], ep[2];
  if (pipe2(op, O_CLOEXEC) != 0) {
    rb_err(err, errlen, "pipe: %s", strerror(errno));
    return NULL;
  }
  if (pipe2(ep, O_CLOEXEC) != 0) {
    close(op[0]);
    close(op[1]);
    rb_err(err, errlen, "pipe: %s", strerror(errno));
    return NULL;
  }
  pid_t pid = spawn_inspect(state_dir, config_file, envp, name, op[1], ep[1]);
  close(op[1]);
  close(ep[1]);
  rb_buf out, eb;
  rb_buf_init(&out, 1 << 20);
  rb_buf_init(&eb, 1 << 16);
  json_t *info = NULL;
  int status = 0;
  if (pid < 0) {
    rb_err(err, errlen, "cannot start `runbook show`: %s", strerror(errno));
  } else {
    if (collect(op[0], ep[0], &out, &eb) != 0)
      kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && out.len)
      info = json_loadb(rb_buf_str(&out), out.len, 0, NULL);
    if (!json_is_object(info)) {
      json_decref(info);
      info = NULL;
      first_problem(&eb, name, err, errlen);
    }
  }
  close(op[0]);
  close(ep[0]);
  rb_buf_free(&out);
  rb_buf_free(&eb);
  return info;
}

static const json_t *find_param(const json_t *info, const char *name)
{
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(info, "params"), i, p)
  {
    if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
      return p;
  }
  return NULL;
}

static int needs_value(const json_t *p)
{
  return json_is_true(json_object_get(p, "required")) &&
         json_object_get(p, "default") == NULL;
}

int rb_serve_check_rule(const json_t *info, const json_t *vars, char *err, size_t errlen)
{
  const char *rb = json_string_value(json_object_get(info, "runbook"));
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)vars, k, v)
  {
    if (find_param(info, k) != NULL)
      continue;
    const char *names[65];
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(json_object_get(info, "params"), i, p) if (n < 64) names[n++] =
        json_string_value(json_object_get(p, "name"));
    names[n] = NULL;
    const char *near = rb_alerts_suggest(k, names);
    return rb_err(err, errlen, "vars.%s: runbook '%s' has no parameter '%s'%s%s%s", k, rb,
                  k, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
  }
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(info, "params"), i, p)
  {
    const char *name = json_string_value(json_object_get(p, "name"));
    if (needs_value(p) && json_object_get(vars, name) == NULL)
      return rb_err(err, errlen,
                    "runbook '%s' requires parameter '%s': map it in vars from a "
                    "label, an annotation or a constant",
                    rb, name);
  }
  return 0;
}

int rb_serve_check_start(const json_t *info, const json_t *values, char *err,
                         size_t errlen, const char **reason)
{
  const char *file = json_string_value(json_object_get(info, "file"));
  const char *rb = json_string_value(json_object_get(info, "runbook"));
  *reason = "runbook_missing";
  if (file == NULL || access(file, R_OK) != 0)
    return rb_err(err, errlen, "runbook '%s' is gone (%s: %s)", rb ? rb : "?",
                  file ? file : "?", strerror(errno));
  *reason = "param_empty";
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)values, k, v)
  {
    if (json_string_length(v) == 0)
      return rb_err(err, errlen, "parameter '%s' of runbook '%s' came out empty", k, rb);
  }
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(info, "params"), i, p)
  {
    const char *name = json_string_value(json_object_get(p, "name"));
    if (needs_value(p) && json_object_get(values, name) == NULL)
      return rb_err(err, errlen,
                    "required parameter '%s' of runbook '%s' got no value (the label "
                    "or annotation its rule maps is absent)",
                    name, rb);
  }
  *reason = NULL;
  return 0;
}

int rb_serve_note(const char *state_dir, const char *incident, json_t *ev, char *err,
                  size_t errlen)
{
  char dir[4200], path[4400];
  snprintf(dir, sizeof dir, "%s/incidents", state_dir);
  if (rb_mkdirs(dir) != 0)
    return rb_err(err, errlen, "%s: %s", dir, strerror(errno));
  snprintf(path, sizeof path, "%s/%s.jsonl", dir, incident);
  int repaired = 0;
  rb_timeline *tl = rb_host_timeline_open(path, 1, &repaired, err, errlen);
  if (tl == NULL)
    return -1;
  int rc = rb_host_timeline_append(tl, ev, err, errlen);
  rb_host_timeline_close(tl);
  return rc;
}
