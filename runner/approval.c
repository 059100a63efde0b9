/* approval.c: file-based approval requests and decisions, so that a gate
 * can be answered from the terminal, another shell, or the alert listener. */
#include "runner/approval.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/util.h"

static int valid_id(const char *s)
{
  if (s == NULL || *s == '\0' || strlen(s) > 128)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
      return 0;
  return 1;
}

static int paths(const char *state_dir, const char *run, const char *step, char *dir,
                 char *req, char *dec, size_t len, char *err, size_t errlen)
{
  if (!valid_id(run) || !valid_id(step) || strstr(run, "..") || strstr(step, ".."))
    return rb_err(err, errlen, "invalid run or step id");
  if (rb_fmt(dir, len, "%s/approvals/%s", state_dir, run) ||
      rb_fmt(req, len, "%s/%s.request.json", dir, step) ||
      rb_fmt(dec, len, "%s/%s.decision.json", dir, step))
    return rb_err(err, errlen, "state dir path too long");
  return 0;
}

/* Writes v to path atomically (temp file, fsync, rename). */
static int write_atomic(const char *path, const json_t *v, int exclusive, char *err,
                        size_t errlen)
{
  char tmp[4200];
  if (rb_fmt(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()))
    return rb_err(err, errlen, "path too long");
  if (json_dump_file(v, tmp, JSON_INDENT(2)) != 0)
    return rb_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
  int fd = open(tmp, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (exclusive) {
    /* link() fails if a decision already exists: first answer wins. */
    if (link(tmp, path) != 0) {
      int e = errno;
      unlink(tmp);
      return rb_err(err, errlen, "%s", e == EEXIST ? "already decided" : strerror(e));
    }
    unlink(tmp);
    return 0;
  }
  if (rename(tmp, path) != 0) {
    unlink(tmp);
    return rb_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

static int read_decision(const char *dec, rb_approval_decision *out)
{
  json_t *d = json_load_file(dec, 0, NULL);
  if (d == NULL)
    return 0;
  out->approved = json_is_true(json_object_get(d, "approved"));
  const char *by = json_string_value(json_object_get(d, "by"));
  const char *comment = json_string_value(json_object_get(d, "comment"));
  const char *via = json_string_value(json_object_get(d, "via"));
  snprintf(out->by, sizeof out->by, "%s", by ? by : "unknown");
  snprintf(out->comment, sizeof out->comment, "%s", comment ? comment : "");
  snprintf(out->via, sizeof out->via, "%s", via ? via : "command");
  json_decref(d);
  return 1;
}

/* Reads one line from the terminal if one is ready; 1 = decided. */
static int terminal_answer(rb_approval_decision *out, const char *who)
{
  char line[256];
  ssize_t n = read(0, line, sizeof line - 1);
  if (n <= 0)
    return -1; /* EOF: stop asking the terminal */
  line[n] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  if (strcmp(line, "yes") == 0 || strcmp(line, "no") == 0) {
    out->approved = line[0] == 'y';
    snprintf(out->by, sizeof out->by, "%s", who);
    snprintf(out->via, sizeof out->via, "terminal");
    return 1;
  }
  fprintf(stderr, "    type 'yes' to approve or 'no' to deny: ");
  fflush(stderr);
  return 0;
}

int rb_approval_post(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, char *err, size_t errlen)
{
  char dir[4096], req[4096], dec[4096];
  if (paths(state_dir, run_id, step_id, dir, req, dec, sizeof dir, err, errlen))
    return -1;
  int rc = rb_mkdirs(dir);
  if (rc != 0)
    return rb_err(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
  json_t *r = json_deep_copy(request);
  json_object_set_new(r, "run", json_string(run_id));
  json_object_set_new(r, "step", json_string(step_id));
  char ts[32];
  rb_format_ts(rb_now_wall_ms() + timeout_ms, ts, sizeof ts);
  json_object_set_new(r, "expires", json_string(ts));
  rc = write_atomic(req, r, 0, err, errlen);
  json_decref(r);
  return rc != 0 ? -1 : 0;
}

/* The gate was stopped: a denial on record, unless an answer won the race. */
static void stopped(const char *dec, rb_approval_decision *out)
{
  json_t *d = json_pack("{s:b, s:s, s:s, s:s}", "approved", 0, "by", "operator",
                        "comment", "the run was cancelled", "via", "cancel");
  char e2[256];
  (void)write_atomic(dec, d, 1, e2, sizeof e2);
  json_decref(d);
  out->approved = 0;
  out->cancelled = 1;
  snprintf(out->by, sizeof out->by, "operator");
  snprintf(out->via, sizeof out->via, "cancel");
}

int rb_approval_wait(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, int interactive,
                     rb_approval_decision *out, char *err, size_t errlen)
{
  return rb_approval_wait_stop(state_dir, run_id, step_id, request, timeout_ms,
                               interactive, NULL, NULL, out, err, errlen);
}

int rb_approval_wait_stop(const char *state_dir, const char *run_id, const char *step_id,
                          const json_t *request, int64_t timeout_ms, int interactive,
                          int (*stop)(void *), void *stop_arg, rb_approval_decision *out,
                          char *err, size_t errlen)
{
  char dir[4096], req[4096], dec[4096];
  memset(out, 0, sizeof *out);
  if (paths(state_dir, run_id, step_id, dir, req, dec, sizeof dir, err, errlen))
    return -1;
  struct stat st;
  if (stat(req, &st) != 0 &&
      rb_approval_post(state_dir, run_id, step_id, request, timeout_ms, err, errlen) != 0)
    return -1;
  const char *who = getenv("USER");
  if (who == NULL || *who == '\0') {
    struct passwd *pw = getpwuid(getuid());
    who = pw && pw->pw_name ? pw->pw_name : "operator";
  }
  int64_t deadline = rb_now_mono_ms() + timeout_ms;
  int decided = 0;
  while (!decided) {
    if (read_decision(dec, out)) {
      decided = 1;
      break;
    }
    if (stop != NULL && stop(stop_arg)) {
      stopped(dec, out);
      return 0;
    }
    int64_t left = deadline - rb_now_mono_ms();
    if (left <= 0)
      break;
    struct pollfd p = {0, POLLIN, 0};
    int wait = left > 250 ? 250 : (int)left;
    if (interactive && poll(&p, 1, wait) > 0) {
      int t = terminal_answer(out, who);
      if (t < 0)
        interactive = 0;
      else if (t > 0) {
        /* Record it as a decision too, so a second approver sees it. */
        json_t *d = json_pack("{s:b, s:s, s:s, s:s}", "approved", out->approved, "by",
                              out->by, "comment", "", "via", "terminal");
        char e2[256];
        if (write_atomic(dec, d, 1, e2, sizeof e2) != 0)
          read_decision(dec, out); /* someone else answered first */
        json_decref(d);
        decided = 1;
      }
    } else if (!interactive) {
      usleep((useconds_t)wait * 1000);
    }
  }
  if (!decided) {
    out->approved = 0;
    out->timed_out = 1;
    snprintf(out->by, sizeof out->by, "nobody");
    snprintf(out->via, sizeof out->via, "timeout");
    json_t *d = json_pack("{s:b, s:s, s:s, s:s}", "approved", 0, "by", "nobody",
                          "comment", "no answer before the deadline", "via", "timeout");
    char e2[256];
    if (write_atomic(dec, d, 1, e2, sizeof e2) != 0 && read_decision(dec, out))
      out->timed_out = 0; /* an answer landed at the last moment */
    json_decref(d);
  }
  return 0;
}

int rb_approval_decide(const char *state_dir, const char *run_id, const char *step_id,
                       int approve, const char *by, const char *comment, const char *via,
                       char *err, size_t errlen)
{
  char dir[4096], req[4096], dec[4096];
  if (paths(state_dir, run_id, step_id, dir, req, dec, sizeof dir, err, errlen))
    return -1;
  if (access(req, F_OK) != 0)
    return rb_err(err, errlen, "no approval request for step '%s' of run %s", step_id,
                  run_id);
  json_t *d = json_pack("{s:b, s:s, s:s, s:s}", "approved", approve, "by", by, "comment",
                        comment ? comment : "", "via", via ? via : "command");
  int rc = write_atomic(dec, d, 1, err, errlen);
  json_decref(d);
  if (rc != 0) {
    rb_approval_decision prev;
    memset(&prev, 0, sizeof prev);
    if (read_decision(dec, &prev))
      return rb_err(err, errlen, "step '%s' of run %s was already %s by %s", step_id,
                    run_id, prev.approved ? "approved" : "denied", prev.by);
    return -1;
  }
  return 0;
}

json_t *rb_approval_pending(const char *state_dir, char *err, size_t errlen)
{
  char base[4096];
  if (rb_fmt(base, sizeof base, "%s/approvals", state_dir)) {
    rb_err(err, errlen, "path too long");
    return NULL;
  }
  json_t *out = json_array();
  DIR *d = opendir(base);
  if (d == NULL)
    return out;
  struct dirent *run;
  while ((run = readdir(d)) != NULL) {
    if (run->d_name[0] == '.')
      continue;
    char rdir[4400];
    if (rb_fmt(rdir, sizeof rdir, "%s/%s", base, run->d_name))
      continue;
    DIR *rd = opendir(rdir);
    if (rd == NULL)
      continue;
    struct dirent *f;
    while ((f = readdir(rd)) != NULL) {
      const char *suffix = ".request.json";
      size_t n = strlen(f->d_name), sl = strlen(suffix);
      if (n <= sl || strcmp(f->d_name + n - sl, suffix) != 0)
        continue;
      char req[4700], dec[4700];
      if (rb_fmt(req, sizeof req, "%s/%s", rdir, f->d_name) ||
          rb_fmt(dec, sizeof dec, "%s/%.*s.decision.json", rdir, (int)(n - sl),
                 f->d_name))
        continue;
      if (access(dec, F_OK) == 0)
        continue;
      json_t *r = json_load_file(req, 0, NULL);
      if (r)
        json_array_append_new(out, r);
    }
    closedir(rd);
  }
  closedir(d);
  return out;
}
