/* record.c: `runbook exec --dry-run --record FILE`: every read's answer kept
 * as a call-level drill scenario, with an expect of the path the run took. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/base/util.h"
#include "runner/config.h"
#include "runner/exec.h"

#define QUIET_KEY "rb.drill.quiet"

/* A copy of v with every string scrubbed of secrets (rb_host_redact). */
static json_t *redacted(const json_t *v)
{
  if (json_is_string(v)) {
    char *s = rb_host_redact(json_string_value(v));
    json_t *r = s ? json_string(s) : json_string("[REDACTED]");
    free(s);
    return r;
  }
  if (json_is_array(v)) {
    json_t *r = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) json_array_append_new(r, redacted(x));
    return r;
  }
  if (json_is_object(v)) {
    json_t *r = json_object();
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) json_object_set_new(r, k, redacted(x));
    return r;
  }
  return json_deep_copy(v);
}

/* A prom answer as one poll of "values": the number, the vector (a list of
 * series) or {"fail": "..."}. NULL for a form a scenario cannot hold. */
static json_t *prom_sample(const json_t *ans)
{
  const json_t *v = json_object_get(ans, "value"), *vec = json_object_get(ans, "vector");
  if (json_is_number(v) || json_is_string(v))
    return json_incref((json_t *)v);
  if (json_is_array(vec))
    return json_incref((json_t *)vec);
  if (json_is_string(json_object_get(ans, "fail")))
    return json_pack("{s:O}", "fail", json_object_get(ans, "fail"));
  return NULL;
}

/* prom: the query's answer at this poll of the running wait (a check, poll
 * 0). A poll already answered (the query asked twice) keeps its first. */
static void record_prom(rb_exec *ex, json_t *list, json_t *call, json_t *ans)
{
  json_t *q = json_object_get(call, "query"), *v = prom_sample(ans);
  if (v == NULL)
    return;
  size_t i, poll = (size_t)ex->sim_poll;
  json_t *e, *vals = NULL;
  json_array_foreach(list, i, e)
  {
    if (json_equal(json_object_get(e, "query"), q))
      vals = json_object_get(e, "values");
  }
  if (vals == NULL) {
    vals = json_array();
    json_array_append_new(list, json_pack("{s:O, s:o}", "query", q, "values", vals));
  }
  size_t n = json_array_size(vals);
  while (n > 0 && n < poll)
    n += json_array_append(vals, json_array_get(vals, n - 1)) == 0;
  if (n <= poll)
    json_array_append(vals, v);
  json_decref(v);
}

void rb_host_drill_record(lua_State *L, const char *module, const json_t *call,
                          const json_t *answer)
{
  rb_host *h = rb_host_get(L);
  rb_exec *ex = h ? h->priv : NULL;
  if (h == NULL || ex == NULL || &ex->host != h || ex->record == NULL || call == NULL ||
      answer == NULL)
    return;
  int quiet = lua_getfield(L, LUA_REGISTRYINDEX, QUIET_KEY) != LUA_TNIL;
  lua_pop(L, 1);
  if (quiet)
    return;
  if (strcmp(module, "inventory") == 0) { /* the scenario's own field, not a call */
    json_t *inv = json_object_get(ex->record, "inventory");
    if (inv == NULL)
      json_object_set_new(ex->record, "inventory", inv = json_object());
    const char *t = json_string_value(json_object_get(call, "target"));
    if (t != NULL && json_object_get(inv, t) == NULL)
      json_object_set(inv, t, json_object_get(answer, "hosts"));
    return;
  }
  json_t *list = json_object_get(ex->record, module);
  if (list == NULL) {
    list = json_array();
    json_object_set_new(ex->record, module, list);
  }
  json_t *c = redacted(call), *a = redacted(answer);
  json_object_del(c, "optional");
  if (strcmp(module, "deploy") == 0 && !json_object_get(a, "value") &&
      !json_object_get(a, "fail"))
    json_object_set_new(a, "value", json_null()); /* recent: no deploy in the window */
  if (strcmp(module, "prom") == 0) {
    record_prom(ex, list, c, a);
  } else {
    size_t i;
    json_t *e;
    int seen = 0;
    json_array_foreach(list, i, e)
    {
      int same = 1;
      const char *k;
      json_t *x;
      json_object_foreach(c, k, x) same &= json_equal(json_object_get(e, k), x);
      seen |= same;
    }
    if (!seen) { /* the first answer of a read asked again wins */
      json_object_update_missing(c, a);
      json_array_append(list, c);
    }
  }
  json_decref(c);
  json_decref(a);
}

void rb_record_step(rb_exec *ex)
{
  if (ex->record == NULL)
    return;
  lua_State *L = sb_lua(ex->sb);
  lua_pushnil(L); /* a recorded call that raised left its hold behind */
  lua_setfield(L, LUA_REGISTRYINDEX, QUIET_KEY);
}

/* A prom answer the same at every poll is a "value", a "vector" or a
 * "fail". */
static void collapse_prom(json_t *calls)
{
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(calls, "prom"), i, e)
  {
    json_t *vals = json_object_get(e, "values"), *first = json_array_get(vals, 0);
    int same = 1;
    for (size_t j = 1; j < json_array_size(vals); j++)
      same &= json_equal(json_array_get(vals, j), first);
    if (!same || first == NULL)
      continue;
    if (json_is_array(first))
      json_object_set(e, "vector", first);
    else if (json_is_object(first))
      json_object_set(e, "fail", json_object_get(first, "fail"));
    else
      json_object_set(e, "value", first);
    json_object_del(e, "values");
  }
}

int rb_record_write(rb_exec *ex, rb_outcome outcome)
{
  if (ex->record == NULL)
    return 0;
  collapse_prom(ex->record);
  /* A read before the run needed a secret saw it unregistered: scrub the
   * whole recording again with every configured secret known. */
  rb_config_register_secrets(ex->o->config);
  char when[64], desc[512];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(desc, sizeof desc, "Recorded from a dry-run of %s (incident %s) at %s",
           ex->m->name, ex->o->incident, when);
  json_t *vars = redacted(ex->o->vars ? ex->o->vars : json_object());
  json_t *inv = json_incref(json_object_get(ex->record, "inventory"));
  json_object_del(ex->record, "inventory");
  json_t *s = json_pack("{s:s, s:o, s:O, s:{s:s, s:O}}", "description", desc, "vars",
                        vars, "calls", ex->record, "expect", "outcome",
                        rb_outcome_name(outcome), "path", ex->path);
  if (s != NULL && inv != NULL)
    json_object_set(s, "inventory", inv);
  json_decref(inv);
  json_t *clean = redacted(s);
  json_decref(s);
  s = clean;
  char tmp[4200];
  int rc = -1;
  if (s != NULL && rb_fmt(tmp, sizeof tmp, "%s.tmp", ex->o->record_path) == 0 &&
      json_dump_file(s, tmp, JSON_INDENT(2)) == 0 && rename(tmp, ex->o->record_path) == 0)
    rc = 0;
  if (rc != 0)
    fprintf(stderr, "runbook: cannot write the recording %s\n", ex->o->record_path);
  json_decref(s);
  return rc;
}
