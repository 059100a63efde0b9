/* step_call.c: calling into the runbook from a step: entering and leaving
 * it (deadlines), calling its functions, and converting what they return. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/loader.h"
#include "runner/scenario.h"
#include "runner/supervise.h"
#include "runner/base/util.h"

#define RB_RESULT_MAX (64 * 1024)

void rb_step_enter(rb_exec *ex, const rb_step *s, int64_t deadline_ms)
{
  ex->cur = s;
  ex->host.step_id = s->id;
  ex->host.step_kind = s->kind;
  ex->host.step_deadline_ms = deadline_ms;
  rb_record_step(ex);
  char why[256];
  char d[32];
  rb_format_elapsed((deadline_ms - rb_now_mono_ms()) * 1000, d, sizeof d);
  snprintf(why, sizeof why, "step '%s' exceeded its timeout (%s)", s->id, d);
  sb_set_deadline(ex->sb, deadline_ms, why);
  rb_supervise_step(ex->o->report_fd, deadline_ms, s->id);
}

void rb_step_leave(rb_exec *ex)
{
  sb_set_deadline(ex->sb, 0, NULL);
  ex->host.step_deadline_ms = 0;
  rb_supervise_ended(ex->o->report_fd);
}

int64_t rb_step_deadline(rb_exec *ex, const rb_step *s)
{
  int64_t t = s->timeout_ms > 0 ? s->timeout_ms : ex->step_timeout_ms;
  int64_t d = rb_now_mono_ms() + t;
  return ex->run_deadline_ms > 0 && ex->run_deadline_ms < d ? ex->run_deadline_ms : d;
}

/* Calls field (a function) of the current step with ctx; on success its
 * first nres results are on the stack. Returns 0, or -1 with err. *fatal is
 * set when the failure must end the run whatever on_error says (a budget
 * kill). */
int rb_step_call_n(rb_exec *ex, const rb_step *s, const char *field, int nres, char *err,
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
  int st = sb_pcall(ex->sb, 1, nres, err, errlen, tb, sizeof tb);
  if (st == LUA_OK)
    return 0;
  const char *killed = sb_killed(ex->sb);
  if (killed) {
    snprintf(err, errlen, "%s", killed);
    *fatal = sb_kill_is_fatal(ex->sb);
    sb_reset_kill(ex->sb);
  }
  if (ex->unanswered[0]) /* the scenario is wrong: polling or on_error cannot help */
    *fatal = 1;
  if (ex->log && tb[0])
    fprintf(ex->log, "traceback of step %s:\n%s\n", s->id, tb);
  return -1;
}

int rb_step_call(rb_exec *ex, const rb_step *s, const char *field, char *err,
                 size_t errlen, int *fatal)
{
  return rb_step_call_n(ex, s, field, 1, err, errlen, fatal);
}

/* The branch key for the Lua value on the stack top. */
int rb_step_value_key(lua_State *L, char *key, size_t len)
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

/* Converts the step's return value (stack top, popped) for the timeline. */
json_t *rb_step_result(rb_exec *ex, char *err, size_t errlen)
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

/* A string field of the step, or the string a function field returns. */
int rb_step_text(rb_exec *ex, const rb_step *s, const char *field, char *buf, size_t len,
                 rb_step_out *o)
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
  if (rb_step_call(ex, s, field, err, sizeof err, &o->fatal) != 0)
    return rb_step_fail(o, "%s: %s", field, err);
  if (lua_type(L, -1) == LUA_TSTRING)
    snprintf(buf, len, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return 0;
}

json_t *rb_step_answer(rb_exec *ex, const rb_step *s)
{
  return ex->scenario ? rb_scenario_answer(ex->scenario, s->id) : NULL;
}
