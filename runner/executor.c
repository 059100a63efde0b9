/* executor.c: walks a runbook's step graph in the sandbox, records every
 * step, decision and operation on the timeline before moving on, and applies
 * the mode: exec runs everything behind approval gates, dry-run runs reads
 * and records writes, drill answers from the scenario. */
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/approval.h"
#include "runner/loader.h"
#include "runner/params.h"
#include "runner/redact.h"
#include "runner/run.h"
#include "runner/scenario.h"
#include "runner/util.h"
#include "sandbox/sandbox.h"

#define RB_MAX_TRANSITIONS 100000
#define RB_RESULT_MAX (64 * 1024)

typedef struct {
  const rb_run_opts *o;
  json_t *scenario; /* drill only */
  sb_state *sb;
  rb_model *m;
  rb_timeline *tl;
  rb_host host;
  const rb_step *cur;
  json_t *path;     /* step ids in the order walked */
  json_t *collect;  /* approval preview: would_run details land here */
  json_t *last_ctx; /* ctx as JSON after the previous step */
  int64_t run_start_us;
  int64_t step_timeout_ms;
  int64_t run_deadline_ms;
  int64_t approval_timeout_ms;
  int journal_broken;
  FILE *log;
  FILE *out; /* progress lines */
} rb_exec;

static volatile sig_atomic_t g_interrupted;
static sb_state *g_sb; /* for the signal handler only */

static void on_signal(int sig)
{
  (void)sig;
  g_interrupted = 1;
  if (g_sb)
    sb_interrupt(g_sb);
}

static const char *mode_name(rb_mode m)
{
  return m == RB_MODE_EXEC ? "exec" : m == RB_MODE_DRY_RUN ? "dry-run" : "drill";
}

/* -- terminal ------------------------------------------------------------- */

static const char *col(const rb_exec *ex, const char *code)
{
  return ex->o->color ? code : "";
}

#define C_RESET "\033[0m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_CYAN "\033[36m"

static void say(rb_exec *ex, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(rb_exec *ex, const char *fmt, ...)
{
  if (ex->o->quiet || ex->o->json_stream)
    return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *clean = rb_redact_str(buf);
  fputs(clean ? clean : "[output withheld]", ex->out);
  fputc('\n', ex->out);
  fflush(ex->out);
  free(clean);
}

static void elapsed(int64_t start_us, char *buf, size_t len)
{
  rb_format_elapsed(rb_now_mono_us() - start_us, buf, len);
}

static void say_op(rb_exec *ex, const char *event, const json_t *d)
{
  if (ex->o->quiet || ex->o->json_stream)
    return;
  if (strcmp(event, "would_run") != 0 && strcmp(event, "failed") != 0)
    return;
  json_t *copy = json_pack("{s:s, s:s, s:O}", "event", event, "step",
                           ex->cur ? ex->cur->id : "", "detail", d);
  char *s = rb_timeline_describe(copy);
  json_decref(copy);
  const char *text = s ? s : event;
  /* describe() starts with "step: "; the step is already on screen. */
  const char *colon = strstr(text, ": ");
  say(ex, "      %s%s%s", col(ex, C_DIM), colon ? colon + 2 : text, col(ex, C_RESET));
  free(s);
}

/* -- timeline ------------------------------------------------------------- */

/* Appends one event; the run stops if the journal can not be written. */
static int emit(rb_exec *ex, const rb_step *s, const char *event, int64_t dur_ms,
                json_t *detail)
{
  char ts[32];
  rb_format_ts(rb_now_wall_ms(), ts, sizeof ts);
  json_t *ev = json_object();
  json_object_set_new(ev, "ts", json_string(ts));
  json_object_set_new(ev, "incident", json_string(ex->o->incident));
  json_object_set_new(ev, "run", json_string(ex->o->run_id));
  json_object_set_new(ev, "runbook", json_string(ex->m->name));
  json_object_set_new(ev, "step", s ? json_string(s->id) : json_null());
  json_object_set_new(ev, "kind", json_string(s ? rb_step_kind_name(s->kind) : "run"));
  json_object_set_new(ev, "event", json_string(event));
  json_object_set_new(ev, "mode", json_string(mode_name(ex->o->mode)));
  json_object_set_new(ev, "actor", json_string(ex->o->actor));
  if (dur_ms >= 0)
    json_object_set_new(ev, "duration_ms", json_integer(dur_ms));
  json_object_set_new(ev, "detail", detail ? detail : json_object());
  char err[512];
  int rc = rb_timeline_append(ex->tl, ev, err, sizeof err);
  if (rc != 0 && !ex->journal_broken) {
    ex->journal_broken = 1;
    fprintf(stderr, "runbook: cannot write the timeline, stopping the run: %s\n", err);
  }
  if (ex->o->json_stream) {
    rb_redact_json(ev);
    char *line = json_dumps(ev, JSON_COMPACT);
    if (line) {
      puts(line);
      fflush(stdout);
      free(line);
    }
  }
  json_decref(ev);
  return rc;
}

/* rb_host.emit: operations inside a step (commands, requests). */
static int host_emit(rb_host *h, const char *event, json_t *detail)
{
  rb_exec *ex = h->priv;
  if (detail == NULL)
    detail = json_object();
  if (ex->collect != NULL) {
    if (strcmp(event, "would_run") == 0)
      json_array_append(ex->collect, detail);
    json_decref(detail);
    return 0;
  }
  say_op(ex, event, detail);
  return emit(ex, ex->cur, event, -1, detail);
}

static void host_progress(rb_host *h, const char *line)
{
  rb_exec *ex = h->priv;
  say(ex, "      %s%s%s", col(ex, C_DIM), line, col(ex, C_RESET));
}

static void sandbox_print(void *arg, const char *text, int is_warning)
{
  rb_exec *ex = arg;
  const char *step = ex->cur ? ex->cur->id : "(load)";
  char *clean = rb_redact_str(text);
  if (ex->log) {
    char ts[32];
    rb_format_ts(rb_now_wall_ms(), ts, sizeof ts);
    fprintf(ex->log, "%s %s %s%s\n", ts, step, is_warning ? "warning: " : "",
            clean ? clean : "");
    fflush(ex->log);
  }
  if (!ex->o->json_stream && !ex->o->quiet)
    fprintf(ex->out, "      %s%s%s%s\n", col(ex, C_DIM), is_warning ? "warning: " : "",
            clean ? clean : "", col(ex, C_RESET));
  free(clean);
}

/* -- calling into the runbook --------------------------------------------- */

static void report_fd(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_fd(int fd, const char *fmt, ...)
{
  if (fd < 0)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof buf)
    (void)!write(fd, buf, (size_t)n);
}

static void report(rb_exec *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(rb_exec *ex, const char *fmt, ...)
{
  if (ex->o->report_fd < 0)
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
  (void)!write(ex->o->report_fd, buf, (size_t)n);
}

static void enter_step(rb_exec *ex, const rb_step *s, int64_t deadline_ms)
{
  ex->cur = s;
  ex->host.step_id = s->id;
  ex->host.step_kind = rb_step_kind_name(s->kind);
  ex->host.step_deadline_ms = deadline_ms;
  char why[256];
  char d[32];
  rb_format_elapsed((deadline_ms - rb_now_mono_ms()) * 1000, d, sizeof d);
  snprintf(why, sizeof why, "step '%s' exceeded its timeout (%s)", s->id, d);
  sb_set_deadline(ex->sb, deadline_ms, why);
  report(ex, "S %lld %s\n", (long long)deadline_ms, s->id);
}

static void leave_step(rb_exec *ex)
{
  sb_set_deadline(ex->sb, 0, NULL);
  ex->host.step_deadline_ms = 0;
  report(ex, "E\n");
}

/* Calls field (a function) of the current step with ctx; on success the
 * result is on the stack. Returns 0, or -1 with err. *fatal is set when the
 * failure must end the run whatever on_error says (a budget kill). */
static int call_step(rb_exec *ex, const rb_step *s, const char *field, char *err,
                     size_t errlen, int *fatal)
{
  lua_State *L = sb_lua(ex->sb);
  *fatal = 0;
  rb_loader_push_step(ex->sb, s->id);
  lua_pushstring(L, field);
  int ty = lua_rawget(L, -2);
  lua_remove(L, -2);
  if (ty != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return rb_err(err, errlen, "step has no %s function", field);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.ctx");
  char tb[2048];
  int st = sb_pcall(ex->sb, 1, 1, err, errlen, tb, sizeof tb);
  if (st == LUA_OK)
    return 0;
  const char *killed = sb_killed(ex->sb);
  if (killed) {
    snprintf(err, errlen, "%s", killed);
    *fatal = sb_kill_is_fatal(ex->sb);
    sb_reset_kill(ex->sb);
  }
  if (ex->log && tb[0])
    fprintf(ex->log, "traceback of step %s:\n%s\n", s->id, tb);
  return -1;
}

/* The branch key for the Lua value on the stack top. */
static int value_key(lua_State *L, char *key, size_t len)
{
  switch (lua_type(L, -1)) {
  case LUA_TBOOLEAN:
    snprintf(key, len, "%s", lua_toboolean(L, -1) ? "true" : "false");
    return 0;
  case LUA_TSTRING:
    snprintf(key, len, "%s", lua_tostring(L, -1));
    return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) {
      snprintf(key, len, "%lld", (long long)lua_tointeger(L, -1));
      return 0;
    }
    return -1;
  default:
    return -1;
  }
}

static int json_key(const json_t *v, char *key, size_t len)
{
  if (json_is_boolean(v))
    return snprintf(key, len, "%s", json_is_true(v) ? "true" : "false") > 0 ? 0 : -1;
  if (json_is_string(v))
    return snprintf(key, len, "%s", json_string_value(v)) >= 0 ? 0 : -1;
  if (json_is_integer(v))
    return snprintf(key, len, "%lld", (long long)json_integer_value(v)) > 0 ? 0 : -1;
  return -1;
}

/* Adds "ctx" to detail when the runbook's ctx changed during the step; the
 * journal then holds what a resumed run needs. */
static void journal_ctx(rb_exec *ex, json_t *detail)
{
  lua_State *L = sb_lua(ex->sb);
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.ctx");
  char err[256];
  json_t *ctx = rb_lua_to_json(L, -1, err, sizeof err);
  lua_pop(L, 1);
  if (ctx == NULL) {
    json_object_set_new(detail, "ctx_error", json_string(err));
    return;
  }
  if (ex->last_ctx == NULL || !json_equal(ctx, ex->last_ctx)) {
    json_object_set(detail, "ctx", ctx);
    json_decref(ex->last_ctx);
    ex->last_ctx = ctx;
    return;
  }
  json_decref(ctx);
}

/* Converts the step's return value (stack top, popped) for the timeline. */
static json_t *take_result(rb_exec *ex, char *err, size_t errlen)
{
  lua_State *L = sb_lua(ex->sb);
  json_t *r = rb_lua_to_json(L, -1, err, errlen);
  lua_pop(L, 1);
  if (r == NULL || !(json_is_object(r) || json_is_array(r)))
    return r; /* a scalar is small; its size needs no check */
  char *s = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
  size_t n = s ? strlen(s) : 0;
  free(s);
  if (n > RB_RESULT_MAX) {
    json_decref(r);
    r = json_pack("{s:b, s:I}", "truncated", 1, "bytes", (json_int_t)n);
  }
  return r;
}

/* -- steps ---------------------------------------------------------------- */

typedef enum { STEP_NEXT, STEP_END } step_flow;

typedef struct {
  const char *next; /* the step to go to */
  char outcome[32]; /* when the run ends here: resolved, escalated, aborted, failed */
  char error[1024]; /* failure message */
  int fatal;        /* failure ends the run regardless of on_error */
  int invalid;      /* the scenario can not answer: exit as invalid */
} step_out;

static json_t *answer_for(rb_exec *ex, const rb_step *s)
{
  return ex->scenario ? rb_scenario_answer(ex->scenario, s->id) : NULL;
}

static int64_t step_deadline(rb_exec *ex, const rb_step *s)
{
  int64_t t = s->timeout_ms > 0 ? s->timeout_ms : ex->step_timeout_ms;
  int64_t d = rb_now_mono_ms() + t;
  return ex->run_deadline_ms > 0 && ex->run_deadline_ms < d ? ex->run_deadline_ms : d;
}

static int fail(step_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(step_out *o, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->error, sizeof o->error, fmt, ap);
  va_end(ap);
  return -1;
}

static int scenario_missing(rb_exec *ex, const rb_step *s, step_out *o)
{
  o->invalid = 1;
  o->fatal = 1;
  return fail(o,
              "scenario '%s' does not answer step '%s' (a %s): add \"%s\": true or false "
              "to its \"steps\"",
              ex->o->scenario_name ? ex->o->scenario_name : "?", s->id,
              rb_step_kind_name(s->kind), s->id);
}

/* A simulated failure from the scenario: {"fail": "message"}. */
static int scenario_fail(const json_t *ans, step_out *o)
{
  const json_t *f = json_object_get(ans, "fail");
  if (f == NULL)
    return 0;
  fail(o, "%s (simulated by the scenario)",
       json_is_string(f) ? json_string_value(f) : "step failed");
  return 1;
}

static void list_branches(const rb_step *s, char *buf, size_t len)
{
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < s->nbranches && used + 4 < len; i++) {
    int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", s->branches[i].key);
    if (n > 0)
      used += (size_t)n;
  }
}

/* drill: the scenario's value for a check or wait (new reference, may be
 * NULL when the answer has none). Returns -1 when the scenario does not
 * answer the step or simulates its failure. */
static int drill_value(rb_exec *ex, const rb_step *s, step_out *o, json_t **value)
{
  json_t *ans = answer_for(ex, s);
  if (ans == NULL)
    return scenario_missing(ex, s, o);
  if (scenario_fail(ans, o)) {
    json_decref(ans);
    return -1;
  }
  *value = json_incref(json_object_get(ans, "value"));
  json_decref(ans);
  return 0;
}

/* check: a read whose value picks the branch. */
static int run_check(rb_exec *ex, const rb_step *s, step_out *o, json_t *detail)
{
  lua_State *L = sb_lua(ex->sb);
  json_t *value = NULL;
  char key[256];
  if (ex->o->mode == RB_MODE_DRILL) {
    if (drill_value(ex, s, o, &value) != 0)
      return -1;
    if (value == NULL || json_key(value, key, sizeof key) != 0) {
      json_decref(value);
      o->invalid = o->fatal = 1;
      return fail(
          o, "scenario answer for step '%s' must be true, false, a string or an integer",
          s->id);
    }
  } else {
    char err[1024];
    if (call_step(ex, s, "run", err, sizeof err, &o->fatal) != 0)
      return fail(o, "%s", err);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return fail(o, "check returned nil: return true/false or the name of a branch");
    }
    if (value_key(L, key, sizeof key) != 0) {
      const char *tn = luaL_typename(L, -1);
      lua_pop(L, 1);
      return fail(o, "check returned a %s: return true/false, a string or an integer",
                  tn);
    }
    value = take_result(ex, err, sizeof err);
    if (value == NULL)
      value = json_string(key);
  }
  const char *target = rb_step_branch(s, key);
  json_object_set_new(detail, "question", json_string(s->title));
  json_object_set_new(detail, "value", value);
  if (target == NULL) {
    char br[256];
    list_branches(s, br, sizeof br);
    return fail(o, "check returned %s, which has no branch (branches: %s; add default)",
                key, br);
  }
  json_object_set_new(detail, "branch", json_string(target));
  o->next = target;
  return 0;
}

static void sleep_until(rb_exec *ex, int64_t until_ms)
{
  while (!g_interrupted && !ex->journal_broken) {
    int64_t left = until_ms - rb_now_mono_ms();
    if (left <= 0)
      break;
    usleep((useconds_t)(left > 200 ? 200 : left) * 1000);
  }
}

/* wait: poll a read-only condition until it holds or the step times out. */
static int run_wait(rb_exec *ex, const rb_step *s, step_out *o, json_t *detail)
{
  lua_State *L = sb_lua(ex->sb);
  int met = 0, polls = 0;
  char last_err[1024] = "";
  json_object_set_new(detail, "question", json_string(s->title));
  if (ex->o->mode == RB_MODE_DRILL) {
    json_t *value = NULL;
    if (drill_value(ex, s, o, &value) != 0)
      return -1;
    met = json_is_true(value);
    json_decref(value);
  } else {
    int64_t deadline = ex->host.step_deadline_ms;
    int64_t every = s->every_ms > 0 ? s->every_ms : 10000;
    int64_t start = rb_now_mono_ms();
    rb_loader_push_step(ex->sb, s->id);
    lua_pushliteral(L, "until_");
    const char *cond = lua_rawget(L, -2) == LUA_TFUNCTION ? "until_" : "condition";
    lua_pop(L, 2);
    for (;;) {
      polls++;
      int fatal = 0;
      if (call_step(ex, s, cond, last_err, sizeof last_err, &fatal) == 0) {
        met = lua_toboolean(L, -1);
        lua_pop(L, 1);
        last_err[0] = '\0';
      } else if (fatal || strstr(last_err, "exceeded its timeout")) {
        if (fatal) {
          o->fatal = 1;
          return fail(o, "%s", last_err);
        }
        break;
      } else {
        json_t *n = json_pack("{s:s, s:i}", "error", last_err, "poll", polls);
        emit(ex, s, "note", -1, n);
      }
      if (met || g_interrupted || ex->journal_broken)
        break;
      int64_t next = rb_now_mono_ms() + every;
      if (next >= deadline)
        break;
      /* The condition must not count the sleep against its own deadline. */
      sleep_until(ex, next);
    }
    json_object_set_new(detail, "polls", json_integer(polls));
    json_object_set_new(detail, "waited_ms", json_integer(rb_now_mono_ms() - start));
    if (!met && last_err[0])
      json_object_set_new(detail, "last_error", json_string(last_err));
    if (g_interrupted) {
      o->fatal = 1;
      return fail(o, "interrupted by the operator");
    }
  }
  const char *target = rb_step_branch(s, met ? "true" : "false");
  json_object_set_new(detail, "value", json_boolean(met));
  if (!met)
    json_object_set_new(detail, "timed_out", json_true());
  if (target == NULL)
    return fail(o, "wait ended %s and has no branch for it", met ? "true" : "false");
  json_object_set_new(detail, "branch", json_string(target));
  o->next = target;
  return 0;
}

/* Runs an action's function with writes recorded instead of sent, to show
 * an approver exactly what they approve. Returns the would_run list. */
static json_t *preview_action(rb_exec *ex, const rb_step *s)
{
  json_t *ops = json_array();
  ex->collect = ops;
  rb_mode saved = ex->host.mode;
  ex->host.mode = RB_MODE_DRY_RUN;
  char err[512];
  int fatal = 0;
  if (call_step(ex, s, "run", err, sizeof err, &fatal) == 0)
    lua_pop(sb_lua(ex->sb), 1);
  else
    json_array_append_new(ops, json_pack("{s:s}", "preview_error", err));
  ex->host.mode = saved;
  ex->collect = NULL;
  return ops;
}

/* An approval gate. Returns 1 approved, 0 denied, -1 error (in o). */
static int gate(rb_exec *ex, const rb_step *s, const char *question, step_out *o)
{
  if (ex->o->mode == RB_MODE_DRY_RUN) {
    emit(ex, s, "skipped", -1,
         json_pack("{s:s, s:s}", "approval", question, "reason",
                   "dry-run: no approval asked; the actions below are only recorded"));
    say(ex, "      %sapproval not asked in dry-run: %s%s", col(ex, C_DIM), question,
        col(ex, C_RESET));
    return 1;
  }
  json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "question", question, "title", s->title,
                          "runbook", ex->m->name, "incident", ex->o->incident);
  if (s->kind == RB_STEP_ACTION && ex->o->mode == RB_MODE_EXEC)
    json_object_set_new(req, "would_run", preview_action(ex, s));
  int64_t timeout = ex->approval_timeout_ms;
  char tmo[32];
  rb_format_elapsed(timeout * 1000, tmo, sizeof tmo);
  json_object_set_new(req, "timeout", json_string(tmo));
  emit(ex, s, "approval_requested", -1, json_deep_copy(req));
  rb_approval_decision d;
  memset(&d, 0, sizeof d);
  int64_t t0 = rb_now_mono_ms();
  if (ex->o->mode == RB_MODE_DRILL) {
    json_t *ans = answer_for(ex, s);
    const json_t *a = ans ? json_object_get(ans, "approved") : NULL;
    d.approved = a == NULL || json_is_true(a);
    const char *by = ans ? json_string_value(json_object_get(ans, "by")) : NULL;
    snprintf(d.by, sizeof d.by, "%s", by ? by : "drill");
    snprintf(d.via, sizeof d.via, "%s", a ? "scenario" : "scenario default");
    json_decref(ans);
  } else {
    say(ex, "    %s%s? approval needed:%s %s", col(ex, C_BOLD), col(ex, C_YELLOW),
        col(ex, C_RESET), question);
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(req, "would_run"), i, op)
    {
      say_op(ex, "would_run", op);
    }
    int tty = isatty(0);
    char perr[512];
    if (rb_approval_post(ex->o->state_dir, ex->o->run_id, s->id, req, timeout, perr,
                         sizeof perr) != 0) {
      json_decref(req);
      return fail(o, "approval: %s", perr);
    }
    say(ex, "      approve with: %s approve %s %s   (deny: --deny; %s until denied)%s",
        ex->o->approve_cmd ? ex->o->approve_cmd : "runbook", ex->o->run_id, s->id, tmo,
        tty ? "\n      or type 'yes' / 'no' here: " : "");
    char err[512];
    leave_step(ex);
    int rc = rb_approval_wait(ex->o->state_dir, ex->o->run_id, s->id, req, timeout, tty,
                              &d, err, sizeof err);
    enter_step(ex, s, step_deadline(ex, s));
    if (rc != 0) {
      json_decref(req);
      return fail(o, "approval: %s", err);
    }
  }
  json_decref(req);
  json_t *detail = json_pack("{s:s, s:s, s:s, s:s}", "question", question, "by", d.by,
                             "via", d.via, "comment", d.comment);
  if (d.timed_out)
    json_object_set_new(detail, "timed_out", json_true());
  emit(ex, s, d.approved ? "approved" : "denied", rb_now_mono_ms() - t0, detail);
  say(ex, "    %s%s%s by %s (%s)", col(ex, d.approved ? C_GREEN : C_RED),
      d.approved ? "approved" : "denied", col(ex, C_RESET), d.by, d.via);
  return d.approved;
}

/* action: the only kind that changes the world; gated, recorded. */
static int run_action(rb_exec *ex, const rb_step *s, step_out *o, json_t *detail)
{
  if (s->approval) {
    int g = gate(ex, s, s->title, o);
    if (g < 0)
      return -1;
    if (g == 0) {
      const char *denied = rb_step_branch(s, "denied");
      if (denied) {
        o->next = denied;
        json_object_set_new(detail, "approval", json_string("denied"));
        return 0;
      }
      snprintf(o->outcome, sizeof o->outcome, "aborted");
      return fail(o, "approval denied");
    }
  }
  json_t *ans = ex->o->mode == RB_MODE_DRILL ? answer_for(ex, s) : NULL;
  if (ans && scenario_fail(ans, o)) {
    json_decref(ans);
    return -1;
  }
  json_t *simulated = ans ? json_object_get(ans, "result") : NULL;
  if (simulated) {
    emit(ex, s, "would_run", -1,
         json_pack("{s:s, s:O, s:s}", "title", s->title, "result", simulated, "source",
                   "scenario"));
    json_object_set(detail, "result", simulated);
  } else {
    char err[1024];
    if (call_step(ex, s, "run", err, sizeof err, &o->fatal) != 0) {
      json_decref(ans);
      return fail(o, "%s", err);
    }
    json_t *r = take_result(ex, err, sizeof err);
    if (r == NULL) {
      json_decref(ans);
      return fail(o, "the result is not JSON-serialisable: %s", err);
    }
    json_object_set_new(detail, "result", r);
  }
  json_decref(ans);
  if (ex->o->mode != RB_MODE_EXEC)
    json_object_set_new(detail, "simulated", json_true());
  o->next = s->next ? s->next : rb_step_branch(s, "default");
  return 0;
}

/* A string field of the step, or the string a function field returns. */
static int text_field(rb_exec *ex, const rb_step *s, const char *field, char *buf,
                      size_t len, step_out *o)
{
  lua_State *L = sb_lua(ex->sb);
  buf[0] = '\0';
  rb_loader_push_step(ex->sb, s->id);
  lua_pushstring(L, field);
  int ty = lua_rawget(L, -2);
  if (ty == LUA_TSTRING) {
    snprintf(buf, len, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    return 0;
  }
  lua_pop(L, 2);
  if (ty != LUA_TFUNCTION)
    return 0;
  char err[1024];
  if (call_step(ex, s, field, err, sizeof err, &o->fatal) != 0)
    return fail(o, "%s: %s", field, err);
  if (lua_type(L, -1) == LUA_TSTRING)
    snprintf(buf, len, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return 0;
}

static int post_update(rb_exec *ex, const rb_step *s, json_t *detail, step_out *o);

/* notify: a status update in one of the four phases; escalate: hand over. */
static int run_notify(rb_exec *ex, const rb_step *s, step_out *o, json_t *detail)
{
  char phase[64], message[2048], impact[1024], to[256];
  if (text_field(ex, s, "phase", phase, sizeof phase, o) ||
      text_field(ex, s, "message", message, sizeof message, o) ||
      text_field(ex, s, "impact", impact, sizeof impact, o) ||
      text_field(ex, s, "to", to, sizeof to, o))
    return -1;
  if (s->kind == RB_STEP_NOTIFY && phase[0] == '\0')
    snprintf(phase, sizeof phase, "Investigating");
  if (message[0] == '\0')
    snprintf(message, sizeof message, "%s", s->title);
  if (phase[0])
    json_object_set_new(detail, "phase", json_string(phase));
  json_object_set_new(detail, "message", json_string(message));
  if (impact[0])
    json_object_set_new(detail, "impact", json_string(impact));
  if (to[0])
    json_object_set_new(detail, "to", json_string(to));
  if (s->has_run) {
    char err[1024];
    if (call_step(ex, s, "run", err, sizeof err, &o->fatal) != 0)
      return fail(o, "%s", err);
    json_t *r = take_result(ex, err, sizeof err);
    if (r)
      json_object_set_new(detail, "result", r);
  } else if (s->kind == RB_STEP_NOTIFY && post_update(ex, s, detail, o) != 0) {
    return -1;
  }
  if (s->kind == RB_STEP_ESCALATE)
    say(ex, "      %sescalated%s to %s: %s", col(ex, C_YELLOW), col(ex, C_RESET),
        to[0] ? to : "(unnamed)", message);
  else
    say(ex, "      %s[%s]%s %s", col(ex, C_CYAN), phase, col(ex, C_RESET), message);
  o->next = s->next ? s->next : rb_step_branch(s, "default");
  if (o->next == NULL && s->kind == RB_STEP_ESCALATE)
    snprintf(o->outcome, sizeof o->outcome, "escalated");
  return 0;
}

static void has_section(const char *section, void *arg)
{
  (void)section;
  *(int *)arg = 1;
}

/* Posts a notify step's update to the [notify.*] channels through the
 * notify module (a write: recorded as would_run in dry-run and drill). */
static int post_update(rb_exec *ex, const rb_step *s, json_t *detail, step_out *o)
{
  int any = 0;
  rb_config_each_section(ex->o->config, "notify.", has_section, &any);
  if (!any)
    return 0;
  static const char chunk[] = "local u = ... return require('notify').post(u)";
  lua_State *L = sb_lua(ex->sb);
  if (luaL_loadbufferx(L, chunk, sizeof chunk - 1, "=notify step", "t") != LUA_OK) {
    lua_pop(L, 1);
    return fail(o, "notify: cannot load the update helper");
  }
  lua_createtable(L, 0, 3);
  const char *keys[] = {"phase", "impact"};
  for (int i = 0; i < 2; i++) {
    const char *v = json_string_value(json_object_get(detail, keys[i]));
    if (v) {
      lua_pushstring(L, v);
      lua_setfield(L, -2, keys[i]);
    }
  }
  lua_pushstring(L, json_string_value(json_object_get(detail, "message")));
  lua_setfield(L, -2, "title");
  char err[1024];
  if (sb_pcall(ex->sb, 1, 1, err, sizeof err, NULL, 0) != LUA_OK) {
    const char *killed = sb_killed(ex->sb);
    if (killed) {
      o->fatal = sb_kill_is_fatal(ex->sb);
      sb_reset_kill(ex->sb);
    }
    return fail(o, "%s", killed ? killed : err);
  }
  json_t *r = take_result(ex, err, sizeof err);
  if (r)
    json_object_set_new(detail, "posted", r);
  (void)s;
  return 0;
}

static int run_approval(rb_exec *ex, const rb_step *s, step_out *o, json_t *detail)
{
  char question[1024];
  if (text_field(ex, s, "question", question, sizeof question, o))
    return -1;
  int g = gate(ex, s, question[0] ? question : s->title, o);
  if (g < 0)
    return -1;
  json_object_set_new(detail, "approved", json_boolean(g));
  if (g) {
    o->next = rb_step_branch(s, "approved");
    if (o->next == NULL)
      o->next = s->next;
    return 0;
  }
  o->next = rb_step_branch(s, "denied");
  if (o->next == NULL) {
    snprintf(o->outcome, sizeof o->outcome, "aborted");
    return fail(o, "approval denied");
  }
  return 0;
}

/* -- the walk --------------------------------------------------------------- */

static void say_step_start(rb_exec *ex, const rb_step *s)
{
  say(ex, "  %s>%s %-20s %s%s%s", col(ex, C_CYAN), col(ex, C_RESET), s->id,
      col(ex, C_BOLD), s->title ? s->title : "", col(ex, C_RESET));
}

static void say_step_end(rb_exec *ex, const rb_step *s, int64_t t0, const step_out *o,
                         const json_t *detail, int ok)
{
  char el[32], what[512];
  elapsed(t0, el, sizeof el);
  const json_t *v = json_object_get(detail, "value");
  if (!ok) {
    say(ex, "  %sx %-20s failed: %s%s (%s)", col(ex, C_RED), s->id, o->error,
        col(ex, C_RESET), el);
    return;
  }
  if (v && o->next) {
    char *vs = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(what, sizeof what, "%s -> %s", vs ? vs : "?", o->next);
    free(vs);
  } else if (o->next) {
    snprintf(what, sizeof what, "done -> %s", o->next);
  } else {
    snprintf(what, sizeof what, "%s", o->outcome[0] ? o->outcome : "done");
  }
  say(ex, "  %s+%s %-20s %s %s(%s)%s", col(ex, C_GREEN), col(ex, C_RESET), s->id, what,
      col(ex, C_DIM), el, col(ex, C_RESET));
}

/* Runs one step; fills o. Returns 0 or -1 (failed). */
static int run_step(rb_exec *ex, const rb_step *s, step_out *o)
{
  memset(o, 0, sizeof *o);
  if (rb_step_kind_is_terminal(s->kind)) {
    snprintf(o->outcome, sizeof o->outcome, "%s", rb_step_kind_name(s->kind));
    ex->cur = s;
    emit(ex, s, "finished", 0,
         json_pack("{s:s, s:s}", "outcome", o->outcome, "title", s->title));
    say(ex, "  %s=%s %-20s %s%s%s", col(ex, C_BOLD), col(ex, C_RESET), s->id,
        col(ex, C_BOLD), s->title, col(ex, C_RESET));
    return 0;
  }
  int64_t t0 = rb_now_mono_us();
  enter_step(ex, s, step_deadline(ex, s));
  json_t *started = json_pack("{s:s}", "title", s->title);
  emit(ex, s, "started", -1, started);
  say_step_start(ex, s);
  json_t *detail = json_object();
  int rc;
  switch (s->kind) {
  case RB_STEP_CHECK:
    rc = run_check(ex, s, o, detail);
    break;
  case RB_STEP_WAIT:
    rc = run_wait(ex, s, o, detail);
    break;
  case RB_STEP_ACTION:
    rc = run_action(ex, s, o, detail);
    break;
  case RB_STEP_APPROVAL:
    rc = run_approval(ex, s, o, detail);
    break;
  case RB_STEP_NOTIFY:
  case RB_STEP_ESCALATE:
    rc = run_notify(ex, s, o, detail);
    break;
  default:
    rc = fail(o, "unknown step kind");
  }
  leave_step(ex);
  if (g_interrupted && rc == 0) {
    o->fatal = 1;
    rc = fail(o, "interrupted by the operator");
  }
  int64_t dur = (rb_now_mono_us() - t0) / 1000;
  if (rc == 0) {
    journal_ctx(ex, detail);
    int decision = s->kind == RB_STEP_CHECK || s->kind == RB_STEP_WAIT;
    if (!decision && o->next)
      json_object_set_new(detail, "next", json_string(o->next));
    say_step_end(ex, s, t0, o, detail, 1);
    emit(ex, s, decision ? "decision" : "finished", dur, detail);
    return 0;
  }
  json_object_set_new(detail, "error", json_string(o->error));
  if (s->on_error && !o->fatal && !o->outcome[0])
    json_object_set_new(detail, "on_error", json_string(s->on_error));
  say_step_end(ex, s, t0, o, detail, 0);
  emit(ex, s, o->outcome[0] && strcmp(o->outcome, "aborted") == 0 ? "finished" : "failed",
       dur, detail);
  return -1;
}

/* Walks from start to an outcome. Runs inside lua_pcall (see walk_protected)
 * so an unexpected Lua error in host code cannot reach the panic handler. */
/* resume: decides what to do with an action that started and never
 * finished. Returns the step to continue at, or NULL with the reason in
 * error (and *usage set: the operator must choose). */
static const rb_step *settle_in_doubt(rb_exec *ex, const rb_step *s, char *error,
                                      size_t elen, int *usage)
{
  const char *policy = ex->o->in_doubt;
  if (policy == NULL && s->idempotent)
    policy = "rerun";
  if (policy == NULL) {
    char *ops = json_dumps(ex->o->in_doubt_ops, JSON_COMPACT);
    snprintf(
        error, elen,
        "step '%s' (an action) started and never finished, so it may or may not have "
        "acted%s%s. Check the systems it touches, then resume with --in-doubt rerun (run "
        "it again) or --in-doubt skip (treat it as done); mark it idempotent = true to "
        "rerun it without asking",
        s->id, ops && strcmp(ops, "[]") != 0 ? "; writes it had started: " : "",
        ops && strcmp(ops, "[]") != 0 ? ops : "");
    free(ops);
    *usage = 1;
    return NULL;
  }
  emit(ex, s, "note", -1,
       json_pack("{s:s, s:s, s:b}", "in_doubt", policy, "by", ex->o->actor, "idempotent",
                 s->idempotent));
  if (strcmp(policy, "rerun") == 0)
    return s;
  const char *next = s->next ? s->next : rb_step_branch(s, "default");
  const rb_step *n = next ? rb_model_find(ex->m, next) : NULL;
  if (n == NULL)
    snprintf(error, elen, "step '%s' has no next step to skip to", s->id);
  return n;
}

static int walk(rb_exec *ex, char *outcome, size_t olen, char *error, size_t elen,
                int *invalid, int *usage)
{
  const char *first = ex->o->resume_at ? ex->o->resume_at : ex->m->start;
  const rb_step *s = rb_model_find(ex->m, first);
  if (s == NULL) {
    snprintf(outcome, olen, "failed");
    snprintf(error, elen, "the runbook has no step '%s' to resume at (was it edited?)",
             first);
    *invalid = 1;
    return -1;
  }
  if (ex->o->resume_in_doubt && s->kind == RB_STEP_ACTION) {
    s = settle_in_doubt(ex, s, error, elen, usage);
    if (s == NULL) {
      snprintf(outcome, olen, "failed");
      return -1;
    }
  }
  for (int n = 0; s != NULL; n++) {
    if (n >= RB_MAX_TRANSITIONS) {
      snprintf(outcome, olen, "failed");
      snprintf(error, elen, "more than %d steps: the runbook loops", RB_MAX_TRANSITIONS);
      return -1;
    }
    if (ex->run_deadline_ms > 0 && rb_now_mono_ms() > ex->run_deadline_ms) {
      snprintf(outcome, olen, "failed");
      snprintf(error, elen, "the run exceeded its time budget (core.run_timeout)");
      return -1;
    }
    json_array_append_new(ex->path, json_string(s->id));
    step_out o;
    int rc = run_step(ex, s, &o);
    if (ex->journal_broken) {
      snprintf(outcome, olen, "failed");
      snprintf(error, elen, "the timeline could not be written");
      return -1;
    }
    if (rc != 0) {
      if (o.outcome[0]) { /* aborted by a denial */
        snprintf(outcome, olen, "%s", o.outcome);
        snprintf(error, elen, "step '%s': %s", s->id, o.error);
        return 0;
      }
      if (s->on_error && !o.fatal) {
        s = rb_model_find(ex->m, s->on_error);
        continue;
      }
      *invalid = o.invalid;
      snprintf(outcome, olen, "failed");
      snprintf(error, elen, "step '%s': %s", s->id, o.error);
      return -1;
    }
    if (o.outcome[0]) {
      snprintf(outcome, olen, "%s", o.outcome);
      return 0;
    }
    s = rb_model_find(ex->m, o.next);
    if (s == NULL) {
      snprintf(outcome, olen, "failed");
      snprintf(
          error, elen, "no step to go to after '%s'",
          json_string_value(json_array_get(ex->path, json_array_size(ex->path) - 1)));
      return -1;
    }
  }
  return 0;
}

typedef struct {
  rb_exec *ex;
  char outcome[32];
  char error[1200];
  int invalid;
  int usage;
  int rc;
} walk_args;

static int walk_protected(lua_State *L)
{
  walk_args *a = lua_touserdata(L, 1);
  a->rc = walk(a->ex, a->outcome, sizeof a->outcome, a->error, sizeof a->error,
               &a->invalid, &a->usage);
  return 0;
}

/* ctx: the params, the run's identity, and whatever steps store. */
static int make_ctx(lua_State *L)
{
  json_t *params = lua_touserdata(L, 1);
  const rb_run_opts *o = lua_touserdata(L, 2);
  lua_newtable(L);
  /* A resumed run gets back what its steps had stored. */
  const char *rk;
  json_t *rv;
  json_object_foreach((json_t *)o->resume_ctx, rk, rv)
  {
    /* A value the journal had to redact is not known any more: leave it
     * unset so the step that needs it can fetch it again. */
    if (json_is_string(rv) && strcmp(json_string_value(rv), RB_REDACTED) == 0)
      continue;
    rb_json_to_lua(L, rv);
    lua_setfield(L, -2, rk);
  }
  const char *k;
  json_t *v;
  json_object_foreach(params, k, v)
  {
    lua_pushstring(L, json_string_value(v));
    lua_setfield(L, -2, k);
  }
  lua_pushstring(L, o->incident);
  lua_setfield(L, -2, "incident");
  lua_pushstring(L, o->run_id);
  lua_setfield(L, -2, "run");
  lua_pushstring(L, mode_name(o->mode));
  lua_setfield(L, -2, "mode");
  lua_setfield(L, LUA_REGISTRYINDEX, "rb.ctx");
  return 0;
}

int rb_incident_path(const char *state_dir, const char *incident, char *out, size_t len)
{
  for (const char *p = incident; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
      return -1;
  if (incident[0] == '\0' || incident[0] == '.')
    return -1;
  return rb_fmt(out, len, "%s/incidents/%s.jsonl", state_dir, incident);
}

/* Reads the sandbox budgets from the config. */
static int limits_from_config(const rb_config *cfg, sb_limits *lim, char *err,
                              size_t errlen)
{
  long mem_mb = 64, instr = 1000000000L, out_kb = 1024;
  memset(lim, 0, sizeof *lim);
  if (rb_config_get_int(cfg, "sandbox", "memory_mb", 64, &mem_mb, err, errlen) ||
      rb_config_get_int(cfg, "sandbox", "instructions", 1000000000L, &instr, err,
                        errlen) ||
      rb_config_get_int(cfg, "sandbox", "output_kb", 1024, &out_kb, err, errlen))
    return -1;
  if (mem_mb < 4)
    return rb_err(err, errlen, "sandbox.memory_mb must be at least 4");
  if (instr < 0 || out_kb < 1)
    return rb_err(err, errlen, "sandbox.instructions must be >= 0 and output_kb >= 1");
  lim->memory_bytes = (size_t)mem_mb << 20;
  lim->instructions = instr;
  lim->print_bytes = (size_t)out_kb << 10;
  return 0;
}

/* Creates the sandbox and loads + validates the runbook. Prints problems.
 * Returns RB_EXIT_OK or RB_EXIT_INVALID. */
#define RB_LOAD_BUDGET_MS 10000

/* Creates the sandbox, loads the runbook under the load budget and
 * validates it. Returns RB_EXIT_OK with *sb_out and *m_out (the caller frees
 * both), or RB_EXIT_INVALID / RB_EXIT_FAILED with every problem, one per
 * line, in err. Prints nothing. */
static int open_runbook(const char *path, const rb_config *cfg, rb_host *host,
                        void (*print)(void *, const char *, int), void *print_arg,
                        int rfd, sb_state **sb_out, rb_model **m_out, char *err,
                        size_t errlen)
{
  sb_limits lim;
  if (limits_from_config(cfg, &lim, err, errlen) != 0)
    return RB_EXIT_INVALID;
  lim.print = print;
  lim.print_arg = print_arg;
  sb_state *sb = sb_new(&lim, err, errlen);
  if (sb == NULL)
    return RB_EXIT_FAILED;
  rb_host_set(sb_lua(sb), host);
  rb_loader_install_dsl(sb);
  rb_model *m = NULL;
  int64_t deadline = rb_now_mono_ms() + RB_LOAD_BUDGET_MS;
  sb_set_deadline(sb, deadline, "loading the runbook took longer than 10 s");
  report_fd(rfd, "S %lld (load)\n", (long long)deadline);
  int rc = rb_loader_load(sb, path, &m, err, errlen);
  report_fd(rfd, "E\n");
  sb_set_deadline(sb, 0, NULL);
  if (rc == 0 && rb_model_validate(m, err, errlen) != 0) {
    size_t n = strlen(err);
    if (n && err[n - 1] == '\n')
      err[n - 1] = '\0';
    rc = -1;
  }
  if (rc != 0) {
    rb_model_free(m);
    sb_free(sb);
    return RB_EXIT_INVALID;
  }
  *sb_out = sb;
  *m_out = m;
  return RB_EXIT_OK;
}

/* open_runbook, printing its problems to stderr. */
static int load_runbook(const char *path, const rb_config *cfg, rb_host *host,
                        void (*print)(void *, const char *, int), void *print_arg,
                        sb_state **sb_out, rb_model **m_out, int rfd)
{
  char err[8192];
  int code = open_runbook(path, cfg, host, print, print_arg, rfd, sb_out, m_out, err,
                          sizeof err);
  if (code != RB_EXIT_OK)
    fprintf(stderr, "%s%s\n", code == RB_EXIT_FAILED ? "runbook: " : "", err);
  return code;
}

static int exit_for(const char *outcome)
{
  if (strcmp(outcome, "resolved") == 0)
    return RB_EXIT_OK;
  if (strcmp(outcome, "escalated") == 0)
    return RB_EXIT_ESCALATED;
  if (strcmp(outcome, "aborted") == 0)
    return RB_EXIT_ABORTED;
  return RB_EXIT_FAILED;
}

/* drill: compares the walk with the scenario's "expect". Returns 1 on a
 * match (or nothing expected). */
static int check_expect(rb_exec *ex, const char *outcome)
{
  const json_t *e = json_object_get(ex->scenario, "expect");
  if (e == NULL)
    return 1;
  const char *want = json_string_value(json_object_get(e, "outcome"));
  const json_t *path = json_object_get(e, "path");
  int ok = 1;
  if (want && strcmp(want, outcome) != 0) {
    fprintf(stderr, "drill: expected outcome '%s', got '%s'\n", want, outcome);
    ok = 0;
  }
  if (path && !json_equal(path, ex->path)) {
    char *w = json_dumps(path, JSON_COMPACT), *g = json_dumps(ex->path, JSON_COMPACT);
    fprintf(stderr, "drill: expected path %s\n       got path      %s\n", w ? w : "?",
            g ? g : "?");
    free(w);
    free(g);
    ok = 0;
  }
  emit(ex, NULL, "note", -1,
       json_pack("{s:s, s:b, s:s}", "drill_expectation", ok ? "met" : "not met", "ok", ok,
                 "message",
                 ok ? "the drill followed the scenario's expected path"
                    : "the drill left the scenario's expected path"));
  return ok;
}

static FILE *open_log(const rb_run_opts *o)
{
  char dir[4096], path[4200];
  if (rb_fmt(dir, sizeof dir, "%s/logs", o->state_dir) || rb_mkdirs(dir) != 0 ||
      rb_fmt(path, sizeof path, "%s/%s.log", dir, o->run_id))
    return NULL;
  return fopen(path, "ae");
}

int rb_run_execute(const rb_run_opts *o)
{
  rb_exec ex;
  memset(&ex, 0, sizeof ex);
  ex.o = o;
  ex.out = stdout;
  ex.host.mode = o->mode;
  ex.host.config = o->config;
  ex.host.incident = o->incident;
  ex.host.run_id = o->run_id;
  ex.host.emit = host_emit;
  ex.host.progress = host_progress;
  ex.host.priv = &ex;
  int code = load_runbook(o->runbook_path, o->config, &ex.host, sandbox_print, &ex,
                          &ex.sb, &ex.m, o->report_fd);
  if (code != RB_EXIT_OK)
    return code;
  report(&ex, "R %s\n", ex.m->name);
  char err[2048];
  json_t *params = NULL;
  json_t *fallback = NULL;
  if (o->scenario_path) {
    ex.scenario = rb_scenario_load(o->scenario_path, ex.m, err, sizeof err);
    if (ex.scenario == NULL) {
      fprintf(stderr, "runbook: %s\n", err);
      code = RB_EXIT_INVALID;
      goto out;
    }
    fallback = json_object_get(ex.scenario, "vars");
  }
  char tlpath[4300], dir[4200];
  int repaired = 0;
  code = RB_EXIT_FAILED;
  if (rb_config_get_duration(o->config, "core", "step_timeout", 300000,
                             &ex.step_timeout_ms, err, sizeof err) ||
      rb_config_get_duration(o->config, "approvals", "timeout", 900000,
                             &ex.approval_timeout_ms, err, sizeof err)) {
    fprintf(stderr, "runbook: %s\n", err);
    code = RB_EXIT_INVALID;
    goto out;
  }
  int64_t run_timeout = 3600000;
  if (rb_config_get_duration(o->config, "core", "run_timeout", 3600000, &run_timeout, err,
                             sizeof err)) {
    fprintf(stderr, "runbook: %s\n", err);
    code = RB_EXIT_INVALID;
    goto out;
  }
  params = rb_params_resolve(ex.m, o->vars, fallback, err, sizeof err);
  if (params == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    code = RB_EXIT_USAGE;
    goto out;
  }
  if (rb_incident_path(o->state_dir, o->incident, tlpath, sizeof tlpath) != 0) {
    fprintf(stderr, "runbook: invalid incident id '%s' (use letters, digits, - _ .)\n",
            o->incident);
    code = RB_EXIT_USAGE;
    goto out;
  }
  if (rb_fmt(dir, sizeof dir, "%s/incidents", o->state_dir) || rb_mkdirs(dir) != 0) {
    fprintf(stderr, "runbook: cannot create state dir %s: %s\n", dir, strerror(errno));
    goto out;
  }
  /* A drill acts on nothing, so its timeline is made durable once, at the
   * end; exec and dry-run fsync every event before moving on. */
  ex.tl = rb_timeline_open(tlpath, o->do_fsync && o->mode != RB_MODE_DRILL, &repaired,
                           err, sizeof err);
  if (ex.tl == NULL) {
    fprintf(stderr, "runbook: timeline: %s\n", err);
    goto out;
  }
  if (repaired)
    fprintf(stderr,
            "runbook: warning: %s ended in a torn line (a crash); it was cut off\n",
            tlpath);
  ex.log = open_log(o);
  ex.path = o->resume_path ? json_deep_copy(o->resume_path) : json_array();
  lua_State *L = sb_lua(ex.sb);
  lua_pushcfunction(L, make_ctx);
  lua_pushlightuserdata(L, params);
  lua_pushlightuserdata(L, (void *)o);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "runbook: cannot build ctx: out of memory\n");
    lua_pop(L, 1);
    goto out;
  }
  ex.run_start_us = rb_now_mono_us();
  ex.run_deadline_ms = rb_now_mono_ms() + run_timeout;
  json_t *started = json_pack("{s:s, s:s, s:O}", "file", o->runbook_path, "title",
                              ex.m->title, "params", params);
  if (o->scenario_name)
    json_object_set_new(started, "scenario", json_string(o->scenario_name));
  if (o->resume_at) {
    json_object_set_new(started, "resumed_at", json_string(o->resume_at));
    if (o->resume_note)
      json_object_set_new(started, "resume", json_string(o->resume_note));
  }
  emit(&ex, NULL, "started", -1, started);
  say(&ex, "%s%s%s of %s%s%s: %s", col(&ex, C_BOLD), mode_name(o->mode),
      col(&ex, C_RESET), col(&ex, C_BOLD), ex.m->name, col(&ex, C_RESET), ex.m->title);
  say(&ex, "  incident %s, run %s%s%s", o->incident, o->run_id,
      o->scenario_name ? ", scenario " : "", o->scenario_name ? o->scenario_name : "");

  g_sb = ex.sb;
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  walk_args wa;
  memset(&wa, 0, sizeof wa);
  wa.ex = &ex;
  lua_pushcfunction(L, walk_protected);
  lua_pushlightuserdata(L, &wa);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    char tmp[64];
    snprintf(wa.outcome, sizeof wa.outcome, "failed");
    snprintf(wa.error, sizeof wa.error, "internal error: %s",
             sb_safe_tostring(L, -1, tmp, sizeof tmp));
    lua_pop(L, 1);
    wa.rc = -1;
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  g_sb = NULL;

  int64_t total_ms = (rb_now_mono_us() - ex.run_start_us) / 1000;
  json_t *fin = json_pack("{s:s, s:O}", "outcome", wa.outcome, "path", ex.path);
  if (wa.error[0])
    json_object_set_new(fin, "error", json_string(wa.error));
  ex.cur = NULL;
  emit(&ex, NULL, wa.rc == 0 ? "finished" : "failed", total_ms, fin);
  code = wa.usage ? RB_EXIT_USAGE : wa.invalid ? RB_EXIT_INVALID : exit_for(wa.outcome);
  if (o->mode == RB_MODE_DRILL && code != RB_EXIT_INVALID &&
      !check_expect(&ex, wa.outcome))
    code = RB_EXIT_MISMATCH;

  char el[32];
  rb_format_elapsed(rb_now_mono_us() - ex.run_start_us, el, sizeof el);
  const char *oc = wa.outcome;
  const char *c = strcmp(oc, "resolved") == 0    ? C_GREEN
                  : strcmp(oc, "escalated") == 0 ? C_YELLOW
                                                 : C_RED;
  char pathbuf[1024] = "";
  size_t used = 0;
  size_t i;
  json_t *id;
  json_array_foreach(ex.path, i, id)
  {
    int n = snprintf(pathbuf + used, sizeof pathbuf - used, "%s%s", i ? " -> " : "",
                     json_string_value(id));
    if (n < 0 || (size_t)n >= sizeof pathbuf - used)
      break;
    used += (size_t)n;
  }
  say(&ex, "%s%s%s%s in %s via %s", col(&ex, C_BOLD), col(&ex, c), oc, col(&ex, C_RESET),
      el, pathbuf);
  if (wa.error[0])
    fprintf(stderr, "runbook: %s: %s\n", o->runbook_path, wa.error);
  say(&ex, "timeline: %s", tlpath);
out:
  json_decref(ex.scenario);
  json_decref(params);
  json_decref(ex.path);
  json_decref(ex.last_ctx);
  if (ex.log)
    fclose(ex.log);
  rb_timeline_free(ex.tl);
  rb_model_free(ex.m);
  sb_free(ex.sb);
  return code;
}

/* -- check, show, list ---------------------------------------------------- */

static void quiet_print(void *arg, const char *text, int is_warning)
{
  (void)arg;
  fprintf(stderr, "%s%s\n", is_warning ? "warning: " : "", text);
}

static int null_emit(rb_host *h, const char *event, json_t *detail)
{
  (void)h;
  (void)event;
  json_decref(detail);
  return 0;
}

static void outline(const rb_model *m, const rb_step *s, const char *label, int depth,
                    unsigned char *seen, FILE *out)
{
  char indent[256];
  int n = depth * 3 < (int)sizeof indent - 1 ? depth * 3 : (int)sizeof indent - 1;
  memset(indent, ' ', (size_t)n);
  indent[n] = '\0';
  size_t idx = (size_t)(s - m->steps);
  const char *extra = s->approval ? ", approval" : "";
  if (seen[idx]) {
    fprintf(out, "%s%s%s (see above)\n", indent, label, s->id);
    return;
  }
  seen[idx] = 1;
  fprintf(out, "%s%s%s [%s%s] %s\n", indent, label, s->id, rb_step_kind_name(s->kind),
          extra, s->title ? s->title : "");
  if (s->next) {
    const rb_step *n2 = rb_model_find(m, s->next);
    if (n2)
      outline(m, n2, "-> ", depth + 1, seen, out);
  }
  for (size_t i = 0; i < s->nbranches; i++) {
    const rb_step *b = rb_model_find(m, s->branches[i].target);
    char lab[160];
    snprintf(lab, sizeof lab, "%s -> ", s->branches[i].key);
    if (b)
      outline(m, b, lab, depth + 1, seen, out);
  }
  if (s->on_error) {
    const rb_step *e = rb_model_find(m, s->on_error);
    if (e)
      outline(m, e, "on error -> ", depth + 1, seen, out);
  }
}

int rb_run_check(const char *path, const rb_config *cfg, int show, FILE *out,
                 int report_fd)
{
  rb_host host;
  memset(&host, 0, sizeof host);
  host.config = cfg;
  host.emit = null_emit;
  host.mode = RB_MODE_DRY_RUN;
  sb_state *sb = NULL;
  rb_model *m = NULL;
  int code = load_runbook(path, cfg, &host, quiet_print, NULL, &sb, &m, report_fd);
  if (code != RB_EXIT_OK)
    return code;
  if (!show) {
    fprintf(out, "%s: ok (%s, %zu steps)\n", path, m->name, m->nsteps);
  } else {
    fprintf(out, "%s: %s\n", m->name, m->title);
    if (m->description)
      fprintf(out, "  %s\n", m->description);
    for (size_t i = 0; i < m->nparams; i++)
      fprintf(out, "  param %s%s%s%s%s\n", m->params[i].name,
              m->params[i].def ? " = " : "", m->params[i].def ? m->params[i].def : "",
              m->params[i].is_required ? " (required)" : "",
              m->params[i].description ? "" : "");
    fputc('\n', out);
    unsigned char *seen = calloc(m->nsteps ? m->nsteps : 1, 1);
    const rb_step *s = rb_model_find(m, m->start);
    if (seen && s)
      outline(m, s, "", 0, seen, out);
    free(seen);
  }
  rb_model_free(m);
  sb_free(sb);
  return RB_EXIT_OK;
}

int rb_run_describe(const char *path, const rb_config *cfg, char *name, size_t nlen,
                    char *title, size_t tlen, char *err, size_t errlen, int rfd)
{
  rb_host host;
  memset(&host, 0, sizeof host);
  host.config = cfg;
  host.emit = null_emit;
  sb_state *sb = NULL;
  rb_model *m = NULL;
  char e[4096];
  if (open_runbook(path, cfg, &host, quiet_print, NULL, rfd, &sb, &m, e, sizeof e) !=
      RB_EXIT_OK) {
    e[strcspn(e, "\n")] = '\0'; /* the first problem is enough for a list */
    return rb_err(err, errlen, "%s", e);
  }
  snprintf(name, nlen, "%s", m->name ? m->name : "?");
  snprintf(title, tlen, "%s", m->title ? m->title : "");
  rb_model_free(m);
  sb_free(sb);
  return 0;
}
