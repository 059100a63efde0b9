/* step_page.c: an escalate step's page to its [escalation.NAME] target, and
 * the resolve sent to every target paged once the run ends resolved. The
 * requests are built by stdlib/paging.lua and sent by the http module. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/escalation.h"
#include "runner/exec.h"
#include "runner/base/util.h"

/* Pushes paging.send's argument table for target to, event ev. */
static void push_args(lua_State *L, rb_exec *ex, const char *section, const json_t *page,
                      const char *ev)
{
  lua_createtable(L, 0, 14);
  const char *str[][2] = {
      {"target", json_string_value(json_object_get(page, "target"))},
      {"section", section},
      {"event", ev},
      {"dedup_key", json_string_value(json_object_get(page, "dedup_key"))},
      {"summary", json_string_value(json_object_get(page, "summary"))},
      {"reason", json_string_value(json_object_get(page, "reason"))},
      {"step", json_string_value(json_object_get(page, "step"))},
      {"ref", json_string_value(json_object_get(page, "ref"))},
      {"severity", ex->m->severity},
      {"runbook", ex->m->name},
      {"run", ex->o->run_id},
      {"incident", ex->o->incident},
  };
  for (size_t i = 0; i < sizeof str / sizeof str[0]; i++) {
    lua_pushstring(L, str[i][1]); /* NULL (no ref, no severity) pushes nil */
    lua_setfield(L, -2, str[i][0]);
  }
  lua_pushboolean(L, rb_config_get(ex->o->config, section, "token_env") != NULL ||
                         rb_config_get(ex->o->config, section, "token_file") != NULL);
  lua_setfield(L, -2, "has_token");
}

/* Calls paging.send; its result lands in res (a new object). Returns 0, or
 * -1 with err when the module raised (a mistake, not a failed page). */
static int call_send(rb_exec *ex, const char *section, const json_t *page, const char *ev,
                     json_t **res, char *err, size_t errlen)
{
  static const char chunk[] = "local a = ... return require('paging').send(a)";
  lua_State *L = sb_lua(ex->sb);
  *res = NULL;
  if (luaL_loadbufferx(L, chunk, sizeof chunk - 1, "=escalate step", "t") != LUA_OK) {
    lua_pop(L, 1);
    return rb_err(err, errlen, "cannot load the paging helper");
  }
  push_args(L, ex, section, page, ev);
  if (sb_pcall(ex->sb, 1, 1, err, errlen, NULL, 0) != LUA_OK) {
    const char *killed = sb_killed(ex->sb);
    if (killed) {
      snprintf(err, errlen, "%s", killed);
      sb_reset_kill(ex->sb);
    }
    return -1;
  }
  *res = rb_step_result(ex, err, errlen);
  return *res != NULL && json_is_object(*res) ? 0 : -1;
}

/* Records a page that did not reach anybody, loudly. */
static void page_failed(rb_exec *ex, json_t *page, const char *what, const char *why)
{
  const char *to = json_string_value(json_object_get(page, "target"));
  json_object_set_new(page, "ok", json_false());
  json_object_set_new(page, "error", json_string(why));
  char line[1400];
  snprintf(line, sizeof line, "%s %s FAILED: %s; %s", what, to, why,
           strcmp(what, "page") == 0 ? "nobody was paged" : "the page stays open");
  if (ex->page_failures == NULL)
    ex->page_failures = json_array();
  json_array_append_new(ex->page_failures, json_string(line));
  rb_console_say(ex, "      %s%s%s%s", rb_console_col(ex, C_BOLD),
                 rb_console_col(ex, C_RED), line, rb_console_col(ex, C_RESET));
}

/* No [escalation.TO]: exec pages nobody (a failed page); dry-run and drill
 * record the intent naming the target, and a dry-run with paging set up
 * counts it as a write that would fail (exit 7). */
static void not_configured(rb_exec *ex, json_t *page, const char *section)
{
  char why[400];
  snprintf(why, sizeof why, "no [%s] in %s", section,
           rb_config_file(ex->o->config) ? rb_config_file(ex->o->config) : "the config");
  if (ex->o->mode == RB_MODE_EXEC) {
    page_failed(ex, page, "page", why);
    return;
  }
  json_t *d =
      json_pack("{s:s, s:s, s:O, s:O, s:b, s:s}", "op", "page", "event", "trigger",
                "target", json_object_get(page, "target"), "dedup_key",
                json_object_get(page, "dedup_key"), "configured", 0, "message", why);
  if (ex->o->mode == RB_MODE_DRY_RUN && rb_escalation_configured(ex->o->config)) {
    char t[300];
    snprintf(t, sizeof t, "escalation %s",
             json_string_value(json_object_get(page, "target")));
    json_object_set_new(
        d, "preflight",
        json_pack("{s:b, s:s, s:s}", "ok", 0, "target", t, "reason", why));
  }
  rb_event_host_emit(&ex->host, "would_run", d);
  json_object_set_new(page, "ok", json_true());
  json_object_set_new(page, "simulated", json_true());
  json_object_set_new(page, "configured", json_false());
  json_object_set_new(page, "message", json_string(why));
}

/* Merges what paging.send said into page; remembers a page to resolve. */
static void page_sent(rb_exec *ex, json_t *page, json_t *res, const char *section)
{
  json_object_update(page, res);
  if (!json_is_true(json_object_get(res, "ok"))) {
    const char *e = json_string_value(json_object_get(res, "error"));
    page_failed(ex, page, "page", e ? e : "the target did not accept it");
    return;
  }
  const char *to = json_string_value(json_object_get(page, "target"));
  int sim = json_is_true(json_object_get(res, "simulated"));
  json_int_t st = json_integer_value(json_object_get(res, "status"));
  if (sim)
    rb_console_say(ex, "      would page %s (%s)", to,
                   json_string_value(json_object_get(res, "kind")));
  else
    rb_console_say(ex, "      %spaged%s %s (%s, HTTP %d)", rb_console_col(ex, C_YELLOW),
                   rb_console_col(ex, C_RESET), to,
                   json_string_value(json_object_get(res, "kind")), (int)st);
  if (ex->pages == NULL)
    ex->pages = json_array();
  size_t i;
  json_t *p;
  json_array_foreach(ex->pages, i, p)
  {
    if (strcmp(json_string_value(json_object_get(p, "target")), to) == 0)
      return; /* one resolve per target: the dedup key is the incident's */
  }
  json_t *keep = json_deep_copy(page);
  json_object_set_new(keep, "section", json_string(section));
  json_array_append_new(ex->pages, keep);
}

void rb_escalation_page(rb_exec *ex, const rb_step *s, const char *to,
                        const char *message, json_t *detail)
{
  char section[300], dedup[600];
  snprintf(section, sizeof section, "escalation.%s", to);
  snprintf(dedup, sizeof dedup, "runbook-%s", ex->o->incident);
  json_t *page = json_pack("{s:s, s:s, s:s, s:s, s:s}", "target", to, "event", "trigger",
                           "dedup_key", dedup, "summary", message, "step", s->id);
  json_object_set_new(page, "reason", json_string(s->title));
  char err[1024];
  json_t *res = NULL;
  if (to[0] == '\0')
    page_failed(ex, page, "page", "the step names no target (to =)");
  else if (rb_config_get(ex->o->config, section, "kind") == NULL)
    not_configured(ex, page, section);
  else if (call_send(ex, section, page, "trigger", &res, err, sizeof err) != 0)
    page_failed(ex, page, "page", err);
  else
    page_sent(ex, page, res, section);
  json_decref(res);
  json_object_del(page, "summary");
  json_object_del(page, "reason");
  json_object_del(page, "step");
  json_object_set_new(detail, "page", page);
}

/* One resolve; its outcome is a note on the resolved step. */
static void resolve_one(rb_exec *ex, const rb_step *s, const json_t *p)
{
  const char *section = json_string_value(json_object_get(p, "section"));
  const char *to = json_string_value(json_object_get(p, "target"));
  json_t *note = json_pack("{s:s, s:s, s:s, s:O}", "op", "page", "event", "resolve",
                           "target", to, "dedup_key", json_object_get(p, "dedup_key"));
  char err[1024];
  json_t *res = NULL;
  if (call_send(ex, section, p, "resolve", &res, err, sizeof err) != 0) {
    page_failed(ex, note, "resolve of the page to", err);
  } else {
    json_object_update(note, res);
    if (!json_is_true(json_object_get(res, "ok"))) {
      const char *e = json_string_value(json_object_get(res, "error"));
      page_failed(ex, note, "resolve of the page to", e ? e : "not accepted");
    } else if (json_is_true(json_object_get(res, "simulated"))) {
      rb_console_say(ex, "      would resolve the page to %s", to);
    } else {
      rb_console_say(ex, "      resolved the page to %s (HTTP %d)", to,
                     (int)json_integer_value(json_object_get(res, "status")));
    }
  }
  json_decref(res);
  rb_event_emit(ex, s, "note", -1, note);
}

void rb_escalation_resolve(rb_exec *ex, const rb_step *s)
{
  if (ex->pages == NULL || json_array_size(ex->pages) == 0)
    return;
  /* The resolved step is the context of the writes (a write's gate needs a
   * step) and carries them on the timeline. */
  rb_step_enter(ex, s, rb_step_deadline(ex, s));
  size_t i;
  json_t *p;
  json_array_foreach(ex->pages, i, p)
  {
    resolve_one(ex, s, p);
  }
  rb_step_leave(ex);
}

/* A journaled page of the run being resumed, kept again for its resolve. */
static int recover_one(json_t *ev, void *arg)
{
  rb_exec *ex = arg;
  const json_t *d = json_object_get(ev, "detail");
  const json_t *p = json_object_get(d, "page");
  const char *run = json_string_value(json_object_get(ev, "run"));
  const char *kind = json_string_value(json_object_get(ev, "kind"));
  const char *event = json_string_value(json_object_get(ev, "event"));
  if (p == NULL || run == NULL || kind == NULL || event == NULL ||
      strcmp(run, ex->o->run_id) != 0 || strcmp(kind, "escalate") != 0 ||
      strcmp(event, "finished") != 0 || !json_is_true(json_object_get(p, "ok")) ||
      json_is_false(json_object_get(p, "configured")))
    return 0;
  const char *to = json_string_value(json_object_get(p, "target"));
  if (to == NULL)
    return 0;
  if (ex->pages == NULL)
    ex->pages = json_array();
  size_t i;
  json_t *q;
  json_array_foreach(ex->pages, i, q)
  {
    if (strcmp(json_string_value(json_object_get(q, "target")), to) == 0)
      return 0;
  }
  char section[300];
  snprintf(section, sizeof section, "escalation.%s", to);
  json_t *keep = json_deep_copy(p);
  json_object_set_new(keep, "section", json_string(section));
  json_object_set_new(keep, "step",
                      json_string(json_string_value(json_object_get(ev, "step"))));
  json_array_append_new(ex->pages, keep);
  return 0;
}

void rb_escalation_recover(rb_exec *ex, const char *tlpath)
{
  char err[512];
  if (rb_timeline_read(tlpath, recover_one, ex, NULL, err, sizeof err) != 0 && ex->log)
    fprintf(ex->log, "resume: pages sent before the crash not read back: %s\n", err);
}
