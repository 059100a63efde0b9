/* events.c: building the timeline events of a run: the common envelope, the
 * operations a stdlib module reports, and the ctx a resumed run needs. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/base/redact.h"
#include "runner/base/util.h"

/* Appends one event; the run stops if the journal can not be written. */
int rb_event_emit(rb_exec *ex, const rb_step *s, const char *event, int64_t dur_ms,
                  json_t *detail)
{
  rb_plan_on_event(ex, s, event, detail);
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
  json_object_set_new(ev, "mode", json_string(rb_mode_name(ex->o->mode)));
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
int rb_event_host_emit(rb_host *h, const char *event, json_t *detail)
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
  if (rb_plan_on_op(ex, event, detail) != 0) { /* left its plan: not sent */
    json_decref(detail);
    return -1;
  }
  if (strcmp(event, "would_run") == 0)
    rb_event_preflight(ex, detail);
  rb_console_op(ex, event, detail);
  return rb_event_emit(ex, ex->cur, event, -1, detail);
}

/* Keeps each failed preflight of a dry-run once, for the plan summary and
 * exit code 7. */
void rb_event_preflight(rb_exec *ex, const json_t *detail)
{
  const json_t *pf = json_object_get(detail, "preflight");
  if (pf == NULL)
    return;
  ex->preflights++;
  if (json_is_true(json_object_get(pf, "ok")))
    return;
  const char *t = json_string_value(json_object_get(pf, "target"));
  const char *r = json_string_value(json_object_get(pf, "reason"));
  char line[1200];
  snprintf(line, sizeof line, "%s: %s", t ? t : "?", r ? r : "preflight failed");
  if (ex->would_fail == NULL)
    ex->would_fail = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(ex->would_fail, i, v)
  {
    if (strcmp(json_string_value(v), line) == 0)
      return;
  }
  json_array_append_new(ex->would_fail, json_string(line));
}

/* The first top-level key of the ctx table on the stack top whose value
 * cannot be journaled, with why, into err. */
static void ctx_bad_key(lua_State *L, char *err, size_t errlen)
{
  char why[256] = "";
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    json_t *v = rb_lua_to_json_tagged(L, -1, why, sizeof why);
    if (v == NULL) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      rb_err(err, errlen, "ctx.%s: %s", k, why);
      lua_pop(L, 2);
      return;
    }
    json_decref(v);
    lua_pop(L, 1);
  }
}

/* Adds "ctx" to detail when the runbook's ctx changed during the step; the
 * journal then holds what a resumed run needs. NaN and the infinities are
 * tagged ({"$float": "NaN"}, docs/timeline.md); a value that cannot be
 * journaled at all fails the step, naming its key, rather than leaving a
 * resume without it. Returns 0 or -1 with err. */
int rb_event_ctx(rb_exec *ex, json_t *detail, char *err, size_t errlen)
{
  lua_State *L = sb_lua(ex->sb);
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.ctx");
  json_t *ctx = rb_lua_to_json_tagged(L, -1, err, errlen);
  if (ctx == NULL) {
    if (lua_istable(L, -1))
      ctx_bad_key(L, err, errlen);
    lua_pop(L, 1);
    size_t n = strlen(err);
    snprintf(err + n, errlen - n, " (ctx must be journaled for a resume)");
    return -1;
  }
  lua_pop(L, 1);
  if (ex->last_ctx == NULL || !json_equal(ctx, ex->last_ctx)) {
    json_object_set(detail, "ctx", ctx);
    json_decref(ex->last_ctx);
    ex->last_ctx = ctx;
    return 0;
  }
  json_decref(ctx);
  return 0;
}
