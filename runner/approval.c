/* approval.c: file-based approval requests, answers and decisions, so that
 * a gate can be answered from the terminal, another shell, or the listener. */
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

#include "runner/base/util.h"

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

const char *rb_approval_account(void)
{
  static char name[128];
  struct passwd *pw = getpwuid(getuid());
  if (pw && pw->pw_name && valid_id(pw->pw_name))
    snprintf(name, sizeof name, "%s", pw->pw_name);
  else
    snprintf(name, sizeof name, "uid-%u", (unsigned)getuid());
  return name;
}

/* The account owning a file, "" when unknown. */
static void owner_of(uid_t uid, char *out, size_t len)
{
  struct passwd *pw = getpwuid(uid);
  snprintf(out, len, "%s", pw && pw->pw_name ? pw->pw_name : "");
}

/* Reads the decision; a decision file written by anyone but this account
 * (or root) is not the waiter's and counts as a denial. 1 = decided. */
static int read_decision(const char *dec, rb_approval_decision *out)
{
  struct stat st;
  json_t *d = stat(dec, &st) == 0 ? json_load_file(dec, 0, NULL) : NULL;
  if (d == NULL)
    return 0;
  int mine = st.st_uid == getuid() || st.st_uid == 0;
  out->approved = mine && json_is_true(json_object_get(d, "approved"));
  const char *by = json_string_value(json_object_get(d, "by"));
  const char *comment = json_string_value(json_object_get(d, "comment"));
  const char *via = json_string_value(json_object_get(d, "via"));
  snprintf(out->by, sizeof out->by, "%s", by ? by : "unknown");
  snprintf(out->comment, sizeof out->comment, "%s",
           !mine     ? "the decision file was not written by the run's account"
           : comment ? comment
                     : "");
  snprintf(out->via, sizeof out->via, "%s", via ? via : "cli");
  json_decref(out->answers);
  out->answers = json_incref(json_object_get(d, "answers"));
  json_decref(d);
  return 1;
}

/* -- answering ------------------------------------------------------------ */

static json_t *answer_json(const rb_approval_answer *a)
{
  char ts[32];
  rb_format_ts(rb_now_wall_ms(), ts, sizeof ts);
  json_t *j = json_pack("{s:s, s:b, s:s, s:s, s:s}", "identity", a->identity, "approve",
                        a->approve, "comment", a->comment ? a->comment : "", "channel",
                        a->channel ? a->channel : "cli", "at", ts);
  if (a->label && *a->label)
    json_object_set_new(j, "label", json_string(a->label));
  return j;
}

/* A refusal is left as a file for the waiter to put on the timeline. */
static void leave_refusal(const char *dir, const char *step, const rb_approval_answer *a,
                          const char *why)
{
  json_t *j = answer_json(a);
  json_object_set_new(j, "reason", json_string(why));
  /* Two refusals within one millisecond must both be kept: the file is
   * created exclusively, so a taken name moves on to the next sequence. */
  static unsigned seq;
  int64_t now = rb_now_wall_ms();
  for (int tries = 0; tries < 64; tries++) {
    char path[4400], e[256];
    if (rb_fmt(path, sizeof path, "%s/%s.refused.%lld.%d.%u.json", dir, step,
               (long long)now, (int)getpid(), seq++))
      break;
    if (write_atomic(path, j, 1, e, sizeof e) == 0)
      break;
  }
  json_decref(j);
}

/* Reads the answer files of step in dir (unchecked: for display). */
static json_t *list_answers(const char *dir, const char *step)
{
  json_t *out = json_array();
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s.answer.", step);
  DIR *d = opendir(dir);
  struct dirent *f;
  while (d && (f = readdir(d)) != NULL) {
    char path[4400];
    if (strncmp(f->d_name, prefix, strlen(prefix)) != 0 ||
        rb_fmt(path, sizeof path, "%s/%s", dir, f->d_name))
      continue;
    json_t *a = strstr(f->d_name, ".tmp.") ? NULL : json_load_file(path, 0, NULL);
    if (json_is_object(a))
      json_array_append(out, a);
    json_decref(a);
  }
  if (d)
    closedir(d);
  return out;
}

static int already_decided(const char *dec, const char *run, const char *step, char *msg,
                           size_t len)
{
  rb_approval_decision prev;
  memset(&prev, 0, sizeof prev);
  if (!read_decision(dec, &prev))
    return 0;
  json_decref(prev.answers);
  rb_err(msg, len, "step '%s' of run %s was already %s by %s", step, run,
         prev.approved ? "approved" : "denied", prev.by);
  return 1;
}

int rb_approval_answer_gate(const char *state_dir, const char *run_id,
                            const char *step_id, const rb_approval_answer *a, char *msg,
                            size_t msglen)
{
  char dir[4096], req[4096], dec[4096], ans[4400], why[512];
  if (paths(state_dir, run_id, step_id, dir, req, dec, sizeof dir, msg, msglen))
    return RB_APPROVAL_NOT_FOUND;
  if (!valid_id(a->identity) || strstr(a->identity, ".."))
    return rb_err(msg, msglen, "'%s' can not answer: not a usable name", a->identity),
           RB_APPROVAL_REFUSED;
  json_t *r = json_load_file(req, 0, NULL);
  if (r == NULL)
    return rb_err(msg, msglen, "no approval request for step '%s' of run %s", step_id,
                  run_id),
           RB_APPROVAL_NOT_FOUND;
  int rc = RB_APPROVAL_OK;
  json_t *pol = json_object_get(r, "policy"), *j = NULL, *all = NULL;
  if (already_decided(dec, run_id, step_id, msg, msglen)) {
    rc = RB_APPROVAL_CONFLICT;
  } else if (rb_approval_policy_check(pol, a->identity, a->label && *a->label, why,
                                      sizeof why) != 0 ||
             rb_approval_confirm_check(pol, a, why, sizeof why) != 0) {
    leave_refusal(dir, step_id, a, why);
    rb_err(msg, msglen, "%s", why);
    rc = RB_APPROVAL_REFUSED;
  } else if (rb_fmt(ans, sizeof ans, "%s/%s.answer.%s.json", dir, step_id, a->identity)) {
    rc = rb_err(msg, msglen, "path too long");
  } else {
    j = answer_json(a);
    if (a->approve && json_object_get(pol, "confirm"))
      json_object_set_new(j, "confirmed", json_true()); /* the waiter checks it */
    if (write_atomic(ans, j, 1, why, sizeof why) != 0) {
      int dup = strcmp(why, "already decided") == 0;
      rb_err(msg, msglen, "%s", dup ? "" : why);
      if (dup)
        rb_err(msg, msglen, "%s already answered step '%s' of run %s (one answer each)",
               a->identity, step_id, run_id);
      rc = dup ? RB_APPROVAL_CONFLICT : RB_APPROVAL_ERROR;
    } else {
      all = list_answers(dir, step_id);
      rb_approval_policy_needs(pol, all, msg, msglen);
    }
  }
  json_decref(all);
  json_decref(j);
  json_decref(r);
  return rc;
}

int rb_approval_decide(const char *state_dir, const char *run_id, const char *step_id,
                       int approve, const char *by, const char *comment, const char *via,
                       char *err, size_t errlen)
{
  rb_approval_answer a = {by, NULL, approve, comment, via, NULL};
  return rb_approval_answer_gate(state_dir, run_id, step_id, &a, err, errlen) == 0 ? 0
                                                                                   : -1;
}

int rb_approval_refuse(const char *state_dir, const char *run_id, const char *step_id,
                       const rb_approval_answer *a, const char *why, char *msg,
                       size_t msglen)
{
  char dir[4096], req[4096], dec[4096];
  struct stat st;
  if (paths(state_dir, run_id, step_id, dir, req, dec, sizeof dir, msg, msglen))
    return RB_APPROVAL_NOT_FOUND;
  if (stat(req, &st) != 0)
    return rb_err(msg, msglen, "no approval request for step '%s' of run %s", step_id,
                  run_id),
           RB_APPROVAL_NOT_FOUND;
  if (already_decided(dec, run_id, step_id, msg, msglen))
    return RB_APPROVAL_CONFLICT;
  leave_refusal(dir, step_id, a, why);
  rb_err(msg, msglen, "%s", why);
  return RB_APPROVAL_OK;
}

json_t *rb_approval_status(const char *state_dir, const char *run_id, const char *step_id,
                           char *err, size_t errlen)
{
  char dir[4096], req[4096], dec[4096], needs[768];
  if (paths(state_dir, run_id, step_id, dir, req, dec, sizeof dir, err, errlen))
    return NULL;
  json_t *r = json_load_file(req, 0, NULL);
  if (!json_is_object(r)) {
    json_decref(r);
    rb_err(err, errlen, "no approval request for step '%s' of run %s", step_id, run_id);
    return NULL;
  }
  json_t *answers = list_answers(dir, step_id);
  rb_approval_policy_needs(json_object_get(r, "policy"), answers, needs, sizeof needs);
  json_object_set_new(r, "answered", answers);
  json_object_set_new(r, "needs", json_string(needs));
  rb_approval_decision d;
  memset(&d, 0, sizeof d);
  if (read_decision(dec, &d)) {
    json_t *dj = json_pack("{s:b, s:s, s:s, s:s}", "approved", d.approved, "by", d.by,
                           "via", d.via, "comment", d.comment);
    if (d.answers)
      json_object_set_new(dj, "answers", d.answers);
    json_object_set_new(r, "decision", dj);
  }
  return r;
}

/* -- waiting -------------------------------------------------------------- */

typedef struct {
  char dir[4096], req[4096], dec[4096];
  const char *step;
  json_t *request;   /* as published, updated with the answers */
  const json_t *pol; /* inside request */
  json_t *seen;      /* file name -> true: answers and refusals already read */
  json_t *answers;   /* accepted answers, in the order seen */
  rb_approval_note_fn note;
  void *arg;
} gate;

static void note(gate *g, const char *event, json_t *detail)
{
  if (g->note)
    g->note(g->arg, event, detail);
  else
    json_decref(detail);
}

/* The waiter's own check of an answer file: the policy, and that the file
 * is who it says: a terminal or CLI answer is owned by the account it
 * names; HTTP and Slack answers are written by the listener, which runs as
 * this account (or root). */
static int accept_answer(gate *g, const char *path, json_t *a, char *why, size_t len)
{
  struct stat st;
  const char *id = json_string_value(json_object_get(a, "identity"));
  const char *ch = json_string_value(json_object_get(a, "channel"));
  if (id == NULL || ch == NULL || !json_is_boolean(json_object_get(a, "approve")) ||
      stat(path, &st) != 0)
    return rb_err(why, len, "unreadable answer file %s", path);
  char owner[128];
  owner_of(st.st_uid, owner, sizeof owner);
  int local = strcmp(ch, "terminal") == 0 || strcmp(ch, "cli") == 0;
  if (local ? strcmp(owner, id) != 0 : st.st_uid != getuid() && st.st_uid != 0)
    return rb_err(why, len, "an answer as %s via %s was written by account '%s'", id, ch,
                  owner);
  const char *label = json_string_value(json_object_get(a, "label"));
  if (json_object_get(g->pol, "confirm") && json_is_true(json_object_get(a, "approve")) &&
      !json_is_true(json_object_get(a, "confirmed")))
    return rb_err(why, len, "an approval as %s via %s does not carry the confirm word",
                  id, ch);
  return rb_approval_policy_check(g->pol, id, label != NULL, why, len);
}

/* Reads the answer and refusal files not seen yet. Returns how many
 * answers were accepted. */
static int scan(gate *g)
{
  char ap[300], rp[300];
  snprintf(ap, sizeof ap, "%s.answer.", g->step);
  snprintf(rp, sizeof rp, "%s.refused.", g->step);
  DIR *d = opendir(g->dir);
  struct dirent *f;
  int added = 0;
  while (d && (f = readdir(d)) != NULL) {
    int is_ans = strncmp(f->d_name, ap, strlen(ap)) == 0;
    char path[4400], why[512];
    if ((!is_ans && strncmp(f->d_name, rp, strlen(rp)) != 0) ||
        strstr(f->d_name, ".tmp.") || json_object_get(g->seen, f->d_name) ||
        rb_fmt(path, sizeof path, "%s/%s", g->dir, f->d_name))
      continue;
    json_t *a = json_load_file(path, 0, NULL);
    if (!json_is_object(a)) {
      json_decref(a);
      continue; /* half-written by a non-atomic writer: look again later */
    }
    json_object_set_new(g->seen, f->d_name, json_true());
    if (!is_ans) {
      note(g, "approval_refused", a);
      continue;
    }
    if (accept_answer(g, path, a, why, sizeof why) != 0) {
      json_object_set_new(a, "reason", json_string(why));
      note(g, "approval_refused", a);
      continue;
    }
    json_array_append(g->answers, a);
    added++;
    char needs[768];
    rb_approval_policy_needs(g->pol, g->answers, needs, sizeof needs);
    json_object_set_new(a, "needs", json_string(needs));
    note(g, "approval_answered", a);
  }
  if (d)
    closedir(d);
  return added;
}

/* 1 approved, 0 denied, -1 still open. One denial by an allowed approver
 * denies; otherwise min distinct identities (one file each) approve. */
static int verdict(const gate *g)
{
  size_t i;
  json_t *a;
  long yes = 0, min = (long)json_integer_value(json_object_get(g->pol, "min"));
  json_array_foreach(g->answers, i, a)
  {
    if (!json_is_true(json_object_get(a, "approve")))
      return 0;
    yes++;
  }
  return yes >= (min < 1 ? 1 : min) ? 1 : -1;
}

/* Writes the final decision (first one wins) and reads back what won. */
static void decide(gate *g, int approved, rb_approval_decision *out)
{
  char by[512] = "", e[256];
  size_t i, used = 0;
  json_t *a;
  const char *via = "cli", *comment = "";
  json_array_foreach(g->answers, i, a)
  {
    const char *label = json_string_value(json_object_get(a, "label"));
    int w = snprintf(by + used, sizeof by - used, "%s%s%s%s%s", used ? ", " : "",
                     json_string_value(json_object_get(a, "identity")),
                     label ? " (as " : "", label ? label : "", label ? ")" : "");
    if (w > 0 && (size_t)w < sizeof by - used)
      used += (size_t)w;
    via = json_string_value(json_object_get(a, "channel"));
    comment = json_string_value(json_object_get(a, "comment"));
  }
  json_t *d =
      json_pack("{s:b, s:s, s:s, s:s, s:O}", "approved", approved, "by", by, "comment",
                comment ? comment : "", "via", via ? via : "cli", "answers", g->answers);
  write_atomic(g->dec, d, 1, e, sizeof e);
  json_decref(d);
  read_decision(g->dec, out);
}

/* Republishes the request with who has answered and what is still needed. */
static void publish_progress(gate *g)
{
  char needs[768], e[256];
  rb_approval_policy_needs(g->pol, g->answers, needs, sizeof needs);
  json_object_set(g->request, "answered", g->answers);
  json_object_set_new(g->request, "needs", json_string(needs));
  write_atomic(g->req, g->request, 0, e, sizeof e);
}

/* Reads one line from the terminal if one is ready and answers with it as
 * this account. Returns -1 at EOF, else 0. */
static int terminal_answer(gate *g, const char *state_dir, const char *run_id)
{
  char line[256], msg[768];
  ssize_t n = read(0, line, sizeof line - 1);
  if (n <= 0)
    return -1; /* EOF: stop asking the terminal */
  line[n] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  const char *word = json_string_value(json_object_get(g->pol, "confirm"));
  if (word == NULL)
    word = "yes";
  if (strcmp(line, word) != 0 && strcmp(line, "no") != 0) {
    fprintf(stderr, "    type '%s' to approve or 'no' to deny: ", word);
    fflush(stderr);
    return 0;
  }
  rb_approval_answer a = {
      rb_approval_account(), NULL, strcmp(line, word) == 0, "", "terminal", line};
  int rc = rb_approval_answer_gate(state_dir, run_id, g->step, &a, msg, sizeof msg);
  fprintf(stderr, "    %s%s\n", rc == 0 ? "recorded: " : "", msg);
  return 0;
}

static void gate_timeout(gate *g, rb_approval_decision *out)
{
  char e[256];
  json_t *d =
      json_pack("{s:b, s:s, s:s, s:s, s:O}", "approved", 0, "by", "nobody", "comment",
                "no answer before the deadline", "via", "timeout", "answers", g->answers);
  if (write_atomic(g->dec, d, 1, e, sizeof e) == 0 || !read_decision(g->dec, out)) {
    out->approved = 0;
    out->timed_out = 1;
    snprintf(out->by, sizeof out->by, "nobody");
    snprintf(out->via, sizeof out->via, "timeout");
    snprintf(out->comment, sizeof out->comment, "no answer before the deadline");
  }
  json_decref(d);
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

/* One turn of the wait: 1 when decided. */
static int gate_turn(gate *g, rb_approval_decision *out)
{
  if (read_decision(g->dec, out))
    return 1;
  if (scan(g) == 0)
    return 0;
  int v = verdict(g);
  if (v >= 0) {
    decide(g, v, out);
    return 1;
  }
  publish_progress(g);
  return 0;
}

int rb_approval_wait(const char *state_dir, const char *run_id, const char *step_id,
                     const json_t *request, int64_t timeout_ms, int interactive,
                     rb_approval_note_fn notefn, void *arg, rb_approval_decision *out,
                     char *err, size_t errlen)
{
  return rb_approval_wait_stop(state_dir, run_id, step_id, request, timeout_ms,
                               interactive, notefn, arg, NULL, NULL, out, err, errlen);
}

int rb_approval_wait_stop(const char *state_dir, const char *run_id, const char *step_id,
                          const json_t *request, int64_t timeout_ms, int interactive,
                          rb_approval_note_fn notefn, void *arg, int (*stop)(void *),
                          void *stop_arg, rb_approval_decision *out, char *err,
                          size_t errlen)
{
  memset(out, 0, sizeof *out);
  gate *g = calloc(1, sizeof *g);
  if (g == NULL)
    return rb_err(err, errlen, "out of memory");
  int rc = -1;
  if (paths(state_dir, run_id, step_id, g->dir, g->req, g->dec, sizeof g->dir, err,
            errlen))
    goto out;
  struct stat st;
  if (stat(g->req, &st) != 0 &&
      rb_approval_post(state_dir, run_id, step_id, request, timeout_ms, err, errlen) != 0)
    goto out;
  g->step = step_id;
  g->request = json_load_file(g->req, 0, NULL);
  if (g->request == NULL)
    g->request = json_deep_copy(request);
  /* The policy is the run's own, not what the file on disk says now. */
  json_object_set(g->request, "policy", json_object_get(request, "policy"));
  g->pol = json_object_get(g->request, "policy");
  g->seen = json_object();
  g->answers = json_array();
  g->note = notefn;
  g->arg = arg;
  int64_t deadline = rb_now_mono_ms() + timeout_ms;
  int decided = 0;
  while (!(decided = gate_turn(g, out))) {
    if (stop != NULL && stop(stop_arg)) {
      stopped(g->dec, out);
      decided = 1;
      break;
    }
    int64_t left = deadline - rb_now_mono_ms();
    if (left <= 0)
      break;
    struct pollfd p = {0, POLLIN, 0};
    int wait = left > 250 ? 250 : (int)left;
    if (interactive && poll(&p, 1, wait) > 0) {
      if (terminal_answer(g, state_dir, run_id) < 0)
        interactive = 0;
    } else if (!interactive) {
      usleep((useconds_t)wait * 1000);
    }
  }
  if (!decided)
    gate_timeout(g, out);
  rc = 0;
out:
  json_decref(g->request);
  json_decref(g->seen);
  json_decref(g->answers);
  free(g);
  return rc;
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
      if (r == NULL)
        continue;
      char step[300], needs[768];
      snprintf(step, sizeof step, "%.*s", (int)(n - sl), f->d_name);
      json_t *answers = list_answers(rdir, step);
      rb_approval_policy_needs(json_object_get(r, "policy"), answers, needs,
                               sizeof needs);
      json_object_set_new(r, "answered", answers);
      json_object_set_new(r, "needs", json_string(needs));
      json_array_append_new(out, r);
    }
    closedir(rd);
  }
  closedir(d);
  return out;
}
