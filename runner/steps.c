/* steps.c: one function per step kind (check, wait, action, approval,
 * notify/escalate), and the one that runs a step and records it. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <unistd.h>

#include "runner/exec.h"
#include "runner/loader.h"
#include "runner/readings.h"
#include "runner/base/util.h"

int rb_step_fail(rb_step_out *o, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->error, sizeof o->error, fmt, ap);
  va_end(ap);
  return -1;
}

static int scenario_missing(rb_exec *ex, const rb_step *s, rb_step_out *o)
{
  o->invalid = 1;
  o->fatal = 1;
  return rb_step_fail(
      o,
      "scenario '%s' does not answer step '%s' (a %s): add \"%s\": true or false "
      "to its \"steps\"",
      ex->o->scenario_name ? ex->o->scenario_name : "?", s->id,
      rb_step_kind_name(s->kind), s->id);
}

/* A simulated failure from the scenario: {"fail": "message"}. */
static int scenario_fail(const json_t *ans, rb_step_out *o)
{
  const json_t *f = json_object_get(ans, "fail");
  if (f == NULL)
    return 0;
  rb_step_fail(o, "%s (simulated by the scenario)",
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

/* drill: what the answered step would have stored in ctx ("ctx": {...}). */
static void drill_ctx(rb_exec *ex, const json_t *ans)
{
  lua_State *L = sb_lua(ex->sb);
  const char *k;
  json_t *v;
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.ctx");
  json_object_foreach(json_object_get(ans, "ctx"), k, v)
  {
    rb_json_to_lua(L, v);
    lua_setfield(L, -2, k);
  }
  lua_pop(L, 1);
}

/* drill: the scenario's value for a check or wait (new reference, may be
 * NULL when the answer has none). Returns -1 when the scenario does not
 * answer the step or simulates its failure. */
static int drill_value(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t **value)
{
  json_t *ans = rb_step_answer(ex, s);
  if (ans == NULL)
    return scenario_missing(ex, s, o);
  if (scenario_fail(ans, o)) {
    json_decref(ans);
    return -1;
  }
  *value = json_incref(json_object_get(ans, "value"));
  drill_ctx(ex, ans);
  json_decref(ans);
  return 0;
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

/* check: a read whose value picks the branch. */
static int run_check(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  lua_State *L = sb_lua(ex->sb);
  json_t *value = NULL;
  char key[256];
  ex->sim_poll = 0;
  if (ex->o->mode == RB_MODE_DRILL && !rb_drill_runs_code(ex, s)) {
    if (drill_value(ex, s, o, &value) != 0)
      return -1;
    if (value == NULL || json_key(value, key, sizeof key) != 0) {
      json_decref(value);
      o->invalid = o->fatal = 1;
      return rb_step_fail(
          o, "scenario answer for step '%s' must be true, false, a string or an integer",
          s->id);
    }
  } else {
    char err[1024];
    if (rb_step_call(ex, s, "run", err, sizeof err, &o->fatal) != 0)
      return rb_step_fail(o, "%s", err);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return rb_step_fail(
          o, "check returned nil: return true/false or the name of a branch");
    }
    if (rb_step_value_key(L, key, sizeof key) != 0) {
      const char *tn = luaL_typename(L, -1);
      lua_pop(L, 1);
      return rb_step_fail(
          o, "check returned a %s: return true/false, a string or an integer", tn);
    }
    value = rb_step_result(ex, err, sizeof err);
    if (value == NULL)
      value = json_string(key);
  }
  const char *target = rb_step_branch(s, key);
  json_object_set_new(detail, "question", json_string(s->title));
  json_object_set_new(detail, "value", value);
  if (target == NULL) {
    char br[256];
    list_branches(s, br, sizeof br);
    return rb_step_fail(
        o, "check returned %s, which has no branch (branches: %s; add default)", key, br);
  }
  json_object_set_new(detail, "branch", json_string(target));
  o->next = target;
  return 0;
}

static void sleep_until(rb_exec *ex, int64_t until_ms)
{
  while (!rb_exec_interrupted() && !ex->journal_broken) {
    int64_t left = until_ms - rb_now_mono_ms();
    if (left <= 0)
      break;
    usleep((useconds_t)(left > 200 ? 200 : left) * 1000);
  }
}

/* One call of the wait's condition, its answer shown on the poll line and
 * its reading (a second return value) added to detail.readings.
 * Returns 0 with *met set, or -1 with last_err (and *fatal). */
static int poll_once(rb_exec *ex, const rb_step *s, const char *cond, int n,
                     int64_t start, int64_t deadline, char *last_err, size_t len,
                     int *met, int *fatal, json_t *detail)
{
  lua_State *L = sb_lua(ex->sb);
  char shown[300];
  ex->polling = 1;
  int rc = rb_step_call_n(ex, s, cond, 2, last_err, len, fatal);
  ex->polling = 0;
  json_t *reading = NULL;
  if (rc == 0) {
    *met = lua_toboolean(L, -2);
    reading = rb_reading_take(L, -1);
    lua_pop(L, 2);
    last_err[0] = '\0';
    char r[220] = "";
    if (reading != NULL)
      rb_reading_format(reading, r, sizeof r);
    if (*met)
      snprintf(shown, sizeof shown, "true%s%s%s", r[0] ? " (" : "", r, r[0] ? ")" : "");
    else
      snprintf(shown, sizeof shown, "not yet (%s)", r[0] ? r : "false");
  }
  rb_readings_add(detail, reading, n);
  /* The step's own timeout reads better than the few ms short the deadline is. */
  int64_t span = deadline - start;
  if (s->timeout_ms > 0 && s->timeout_ms < span + 1000)
    span = s->timeout_ms;
  /* A drill's clock is simulated: poll n comes `every` after poll n-1. */
  int64_t waited = ex->o->mode == RB_MODE_DRILL
                       ? ex->sim_poll * (s->every_ms > 0 ? s->every_ms : 10000)
                       : rb_now_mono_ms() - start;
  rb_console_poll(ex, n, waited, span, rc == 0 ? shown : last_err);
  return rc;
}

/* Polls the wait's condition until it holds, the step's deadline comes, or
 * the run is interrupted. Returns met (0/1), or -1 on a fatal failure. */
static int poll_condition(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  lua_State *L = sb_lua(ex->sb);
  int met = 0, polls = 0;
  char last_err[1024] = "";
  int64_t deadline = ex->host.step_deadline_ms;
  int64_t every = s->every_ms > 0 ? s->every_ms : 10000;
  int64_t start = rb_now_mono_ms();
  int sim = ex->o->mode == RB_MODE_DRILL;
  int64_t sim_t = 0,
          sim_timeout = s->timeout_ms > 0 ? s->timeout_ms : ex->step_timeout_ms;
  ex->sim_poll = 0;
  rb_loader_push_step(ex->sb, s->id);
  lua_pushliteral(L, "until_");
  const char *cond = lua_rawget(L, -2) == LUA_TFUNCTION ? "until_" : "condition";
  lua_pop(L, 2);
  for (;;) {
    polls++;
    int fatal = 0;
    if (poll_once(ex, s, cond, polls, start, deadline, last_err, sizeof last_err, &met,
                  &fatal, detail) != 0) {
      if (fatal) {
        o->fatal = 1;
        return rb_step_fail(o, "%s", last_err);
      }
      if (strstr(last_err, RB_HOST_NO_FIELD))
        return rb_step_fail(o, "%s", last_err); /* a typo does not go away by polling */
      if (strstr(last_err, "exceeded its timeout"))
        break;
      json_t *n = json_pack("{s:s, s:i}", "error", last_err, "poll", polls);
      rb_event_emit(ex, s, "note", -1, n);
    }
    if (met || rb_exec_interrupted() || ex->journal_broken)
      break;
    if (sim) { /* a drill's clock: the next poll at once, its answers one on */
      if (sim_t + every >= sim_timeout)
        break;
      sim_t += every;
      ex->sim_poll++;
      continue;
    }
    int64_t next = rb_now_mono_ms() + every;
    if (next >= deadline)
      break;
    ex->sim_poll++; /* a recording dry-run keeps its answers poll by poll */
    /* The condition must not count the sleep against its own deadline. */
    sleep_until(ex, next);
  }
  rb_console_poll_end(ex);
  json_object_set_new(detail, "polls", json_integer(polls));
  json_object_set_new(detail, "waited_ms",
                      json_integer(sim ? sim_t : rb_now_mono_ms() - start));
  if (sim) {
    ex->sim_ms += sim_t;
    json_object_set_new(detail, "simulated", json_true());
  }
  if (!met && last_err[0])
    json_object_set_new(detail, "last_error", json_string(last_err));
  return met;
}

/* wait: poll a read-only condition until it holds or the step times out. */
static int run_wait(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  int met = 0;
  json_object_set_new(detail, "question", json_string(s->title));
  if (ex->o->mode == RB_MODE_DRILL && !rb_drill_runs_code(ex, s)) {
    json_t *ans = rb_step_answer(ex, s);
    if (ans == NULL)
      return scenario_missing(ex, s, o);
    if (scenario_fail(ans, o)) {
      json_decref(ans);
      return -1;
    }
    drill_ctx(ex, ans);
    met = rb_drill_wait(ex, s, ans, detail);
    json_decref(ans);
  } else {
    met = poll_condition(ex, s, o, detail);
    if (met < 0)
      return -1;
    if (rb_exec_interrupted()) {
      o->fatal = 1;
      return rb_step_fail(o, "interrupted by the operator");
    }
  }
  const char *target = rb_step_branch(s, met ? "true" : "false");
  json_object_set_new(detail, "value", json_boolean(met));
  if (!met)
    json_object_set_new(detail, "timed_out", json_true());
  if (target == NULL)
    return rb_step_fail(o, "wait ended %s and has no branch for it",
                        met ? "true" : "false");
  json_object_set_new(detail, "branch", json_string(target));
  o->next = target;
  return 0;
}

/* action: the only kind that changes the world; gated, recorded. */
static int run_action(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  if (s->approval) {
    int g = rb_step_gate(ex, s, s->title, o);
    if (g < 0)
      return -1;
    if (g == 0) {
      const char *denied = rb_step_branch(s, "denied");
      if (denied) {
        o->next = denied;
        json_object_set_new(detail, "approval", json_string("denied"));
        return 0;
      }
      o->outcome = RB_OUTCOME_ABORTED;
      return rb_step_fail(o, "approval denied");
    }
  }
  json_t *ans = ex->o->mode == RB_MODE_DRILL ? rb_step_answer(ex, s) : NULL;
  if (ans && scenario_fail(ans, o)) {
    json_decref(ans);
    return -1;
  }
  json_t *simulated = ans ? json_object_get(ans, "result") : NULL;
  if (simulated) {
    drill_ctx(ex, ans);
    rb_event_emit(ex, s, "would_run", -1,
                  json_pack("{s:s, s:O, s:s}", "title", s->title, "result", simulated,
                            "source", "scenario"));
    json_object_set(detail, "result", simulated);
  } else {
    char err[1024];
    if (rb_step_call(ex, s, "run", err, sizeof err, &o->fatal) != 0) {
      json_decref(ans);
      return rb_step_fail(o, "%s", err);
    }
    json_t *r = rb_step_result(ex, err, sizeof err);
    if (r == NULL) {
      json_decref(ans);
      return rb_step_fail(o, "the result is not JSON-serialisable: %s", err);
    }
    json_object_set_new(detail, "result", r);
  }
  json_decref(ans);
  if (ex->o->mode != RB_MODE_EXEC)
    json_object_set_new(detail, "simulated", json_true());
  o->next = s->next ? s->next : rb_step_branch(s, "default");
  return 0;
}

static void has_section(const char *section, void *arg)
{
  (void)section;
  *(int *)arg = 1;
}

/* Posts a notify step's update to the [notify.*] channels through the
 * notify module (a write: recorded as would_run in dry-run and drill). */
static int post_update(rb_exec *ex, const rb_step *s, json_t *detail, rb_step_out *o)
{
  int any = 0;
  rb_config_each_section(ex->o->config, "notify.", has_section, &any);
  if (!any)
    return 0;
  static const char chunk[] = "local u = ... return require('notify').post(u)";
  lua_State *L = sb_lua(ex->sb);
  if (luaL_loadbufferx(L, chunk, sizeof chunk - 1, "=notify step", "t") != LUA_OK) {
    lua_pop(L, 1);
    return rb_step_fail(o, "notify: cannot load the update helper");
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
    return rb_step_fail(o, "%s", killed ? killed : err);
  }
  json_t *r = rb_step_result(ex, err, sizeof err);
  if (r)
    json_object_set_new(detail, "posted", r);
  (void)s;
  return 0;
}

/* notify: a status update in one of the four phases; escalate: hand over. */
static int run_notify(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  char phase[64], message[2048], impact[1024], to[256];
  if (rb_step_text(ex, s, "phase", phase, sizeof phase, o) ||
      rb_step_text(ex, s, "message", message, sizeof message, o) ||
      rb_step_text(ex, s, "impact", impact, sizeof impact, o) ||
      rb_step_text(ex, s, "to", to, sizeof to, o))
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
    if (rb_step_call(ex, s, "run", err, sizeof err, &o->fatal) != 0)
      return rb_step_fail(o, "%s", err);
    json_t *r = rb_step_result(ex, err, sizeof err);
    if (r)
      json_object_set_new(detail, "result", r);
  } else if (s->kind == RB_STEP_NOTIFY && post_update(ex, s, detail, o) != 0) {
    return -1;
  }
  if (s->kind == RB_STEP_ESCALATE) {
    rb_console_say(ex, "      %sescalated%s to %s: %s", rb_console_col(ex, C_YELLOW),
                   rb_console_col(ex, C_RESET), to[0] ? to : "(unnamed)", message);
    if (!s->has_run) /* a run function hands over its own way, as notify's does */
      rb_escalation_page(ex, s, to, message, detail); /* step_page.c */
  } else
    rb_console_say(ex, "      %s[%s]%s %s", rb_console_col(ex, C_CYAN), phase,
                   rb_console_col(ex, C_RESET), message);
  o->next = s->next ? s->next : rb_step_branch(s, "default");
  if (o->next == NULL && s->kind == RB_STEP_ESCALATE)
    o->outcome = RB_OUTCOME_ESCALATED;
  return 0;
}

static int run_approval(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  char question[1024];
  if (rb_step_text(ex, s, "question", question, sizeof question, o))
    return -1;
  int g = rb_step_gate(ex, s, question[0] ? question : s->title, o);
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
    o->outcome = RB_OUTCOME_ABORTED;
    return rb_step_fail(o, "approval denied");
  }
  return 0;
}

/* resolved, escalated, aborted: the run ends here; nothing runs. */
static int run_terminal(rb_exec *ex, const rb_step *s, rb_step_out *o)
{
  o->outcome = rb_step_kind_outcome(s->kind);
  if (o->outcome == RB_OUTCOME_RESOLVED)
    rb_escalation_resolve(ex, s); /* the pages this run sent are over */
  ex->cur = s;
  rb_event_emit(
      ex, s, "finished", 0,
      json_pack("{s:s, s:s}", "outcome", rb_outcome_name(o->outcome), "title", s->title));
  rb_console_terminal(ex, s);
  return 0;
}

static int run_kind(rb_exec *ex, const rb_step *s, rb_step_out *o, json_t *detail)
{
  switch (s->kind) {
  case RB_STEP_CHECK:
    return run_check(ex, s, o, detail);
  case RB_STEP_WAIT:
    return run_wait(ex, s, o, detail);
  case RB_STEP_ACTION:
    return run_action(ex, s, o, detail);
  case RB_STEP_APPROVAL:
    return run_approval(ex, s, o, detail);
  case RB_STEP_NOTIFY:
  case RB_STEP_ESCALATE:
    return run_notify(ex, s, o, detail);
  default:
    return rb_step_fail(o, "unknown step kind");
  }
}

/* Records how a step ended (detail stolen); rc is what the kind returned. */
static int record_end(rb_exec *ex, const rb_step *s, int64_t t0, int rc, rb_step_out *o,
                      json_t *detail)
{
  int64_t dur = (rb_now_mono_us() - t0) / 1000;
  char cerr[512];
  if (rc == 0 && rb_event_ctx(ex, detail, cerr, sizeof cerr) < 0)
    rc = rb_step_fail(o, "%s", cerr);
  if (rc == 0) {
    int decision = s->kind == RB_STEP_CHECK || s->kind == RB_STEP_WAIT;
    if (!decision && o->next)
      json_object_set_new(detail, "next", json_string(o->next));
    rb_console_step_end(ex, s, t0, o, detail, 1);
    rb_event_emit(ex, s, decision ? "decision" : "finished", dur, detail);
    return 0;
  }
  json_object_set_new(detail, "error", json_string(o->error));
  if (s->on_error && !o->fatal && o->outcome == RB_OUTCOME_NONE)
    json_object_set_new(detail, "on_error", json_string(s->on_error));
  rb_console_step_end(ex, s, t0, o, detail, 0);
  /* A denial ends the run as aborted: the step finished, it did not fail. */
  rb_event_emit(ex, s, o->outcome == RB_OUTCOME_ABORTED ? "finished" : "failed", dur,
                detail);
  return -1;
}

int rb_step_run(rb_exec *ex, const rb_step *s, rb_step_out *o)
{
  memset(o, 0, sizeof *o);
  if (rb_step_kind_is_terminal(s->kind))
    return run_terminal(ex, s, o);
  int64_t t0 = rb_now_mono_us();
  rb_step_enter(ex, s, rb_step_deadline(ex, s));
  rb_event_emit(ex, s, "started", -1, json_pack("{s:s}", "title", s->title));
  rb_console_step_start(ex, s);
  json_t *detail = json_object();
  int rc = run_kind(ex, s, o, detail);
  rb_step_leave(ex);
  if (rb_exec_interrupted() && rc == 0) {
    o->fatal = 1;
    rc = rb_step_fail(o, "interrupted by the operator");
  }
  return record_end(ex, s, t0, rc, o, detail);
}
