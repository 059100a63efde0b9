/* scenario.c: loading drill scenarios and looking up their answers. */
#include "runner/scenario.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "runner/drill_match.h"

int rb_scenario_find(const char *runbook_path, const char *runbook_name, const char *name,
                     char *out, size_t len)
{
  if (strchr(name, '/') != NULL || access(name, R_OK) == 0)
    return rb_fmt(out, len, "%s", name);
  char dir[4096];
  if (rb_fmt(dir, sizeof dir, "%s", runbook_path) != 0)
    return -1;
  const char *ext = strstr(name, ".json") ? "" : ".json";
  return rb_fmt(out, len, "%s/scenarios/%s/%s%s", dirname(dir), runbook_name, name, ext);
}

/* Names each object of a scenario accepts; anything else is a typo that
 * would make the drill test something other than what its author meant. */
static const char *const top_fields[] = {"description", "vars",   "steps", "calls",
                                         "inventory",   "expect", NULL};
static const char *const answer_fields[] = {"value",    "values", "result", "fail",
                                            "approved", "by",     "note",   "ctx",
                                            "comment",  NULL};
static const char *const expect_fields[] = {"outcome", "path", NULL};
static const char *const outcomes[] = {"resolved", "escalated", "aborted", "failed",
                                       NULL};

static int listed(const char *k, const char *const *names)
{
  for (; *names; names++)
    if (strcmp(*names, k) == 0)
      return 1;
  return 0;
}

/* " (did you mean 'x'?)" or "" into buf. */
static const char *hint(const char *word, const char *const *cands, char *buf, size_t len)
{
  const char *near = rb_suggest(word, cands);
  if (near == NULL)
    return "";
  snprintf(buf, len, " (did you mean '%s'?)", near);
  return buf;
}

static int only_fields(const char *path, const json_t *obj, const char *where,
                       const char *const *known, char *err, size_t errlen)
{
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v)
  {
    if (!listed(k, known)) {
      char h[160];
      return rb_err(err, errlen, "scenario %s: unknown field '%s' in %s%s", path, k,
                    where, hint(k, known, h, sizeof h));
    }
  }
  return 0;
}

/* The step ids of m as a NULL-terminated list for suggestions (malloc'd). */
static const char **step_ids(const rb_model *m)
{
  const char **ids = calloc(m->nsteps + 1, sizeof *ids);
  for (size_t i = 0; ids && i < m->nsteps; i++)
    ids[i] = m->steps[i].id;
  return ids;
}

static int known_step(const char *path, const rb_model *m, const char *id,
                      const char *where, char *err, size_t errlen)
{
  if (m == NULL || rb_model_find(m, id) != NULL)
    return 0;
  const char **ids = step_ids(m);
  char h[300];
  rb_err(err, errlen, "scenario %s: %s: runbook '%s' has no step '%s'%s", path, where,
         m->name ? m->name : "?", id, hint(id, ids, h, sizeof h));
  free(ids);
  return -1;
}

/* "values": a wait's condition poll by poll on the simulated clock. */
static int check_values(const char *path, const char *id, const rb_step *st,
                        const json_t *v, char *err, size_t errlen)
{
  const json_t *vals = json_object_get(v, "values");
  if (vals == NULL)
    return 0;
  if (st && st->kind != RB_STEP_WAIT)
    return rb_err(err, errlen,
                  "scenario %s: steps.%s.values: '%s' is a %s; only a wait polls "
                  "(answer it with \"value\")",
                  path, id, id, rb_step_kind_name(st->kind));
  if (json_object_get(v, "value"))
    return rb_err(err, errlen,
                  "scenario %s: steps.%s: give \"value\" or \"values\", not both", path,
                  id);
  if (!json_is_array(vals) || json_array_size(vals) == 0)
    return rb_err(err, errlen,
                  "scenario %s: steps.%s.values must be a non-empty list of true/false, "
                  "one per poll",
                  path, id);
  size_t i;
  json_t *b;
  json_array_foreach(vals, i, b)
  {
    if (!json_is_boolean(b))
      return rb_err(err, errlen,
                    "scenario %s: steps.%s.values[%zu] must be true or false", path, id,
                    i);
  }
  return 0;
}

static int check_answer(const char *path, const char *id, const rb_step *st,
                        const json_t *v, char *err, size_t errlen)
{
  if (!json_is_object(v))
    return 0;
  char where[300];
  snprintf(where, sizeof where, "steps.%s", id);
  if (only_fields(path, v, where, answer_fields, err, errlen) != 0)
    return -1;
  const json_t *ctx = json_object_get(v, "ctx");
  if (ctx && !json_is_object(ctx))
    return rb_err(err, errlen,
                  "scenario %s: steps.%s.ctx must be an object (name -> value the step "
                  "stores in ctx)",
                  path, id);
  const json_t *a = json_object_get(v, "approved");
  if (a && !json_is_boolean(a))
    return rb_err(err, errlen, "scenario %s: steps.%s.approved must be true or false",
                  path, id);
  return check_values(path, id, st, v, err, errlen);
}

static int check_expect(const char *path, const json_t *e, const rb_model *m, char *err,
                        size_t errlen)
{
  if (e == NULL)
    return 0;
  if (!json_is_object(e))
    return rb_err(err, errlen, "scenario %s: field \"expect\" must be an object", path);
  if (only_fields(path, e, "expect", expect_fields, err, errlen) != 0)
    return -1;
  const json_t *o = json_object_get(e, "outcome");
  if (o && (!json_is_string(o) || !listed(json_string_value(o), outcomes))) {
    char h[160];
    const char *w = json_is_string(o) ? json_string_value(o) : "?";
    return rb_err(err, errlen,
                  "scenario %s: expect.outcome '%s' is not an outcome (resolved, "
                  "escalated, aborted or failed)%s",
                  path, w, hint(w, outcomes, h, sizeof h));
  }
  const json_t *p = json_object_get(e, "path");
  if (p && !json_is_array(p))
    return rb_err(err, errlen, "scenario %s: expect.path must be a list of step ids",
                  path);
  size_t i;
  json_t *id;
  json_array_foreach(p, i, id)
  {
    char where[64];
    snprintf(where, sizeof where, "expect.path[%zu]", i);
    if (!json_is_string(id))
      return rb_err(err, errlen, "scenario %s: %s must be a step id", path, where);
    if (known_step(path, m, json_string_value(id), where, err, errlen) != 0)
      return -1;
  }
  return 0;
}

/* "calls": module -> the list of answers its reads get in a drill. */
static int check_calls(const char *path, const json_t *calls, char *err, size_t errlen)
{
  if (calls == NULL)
    return 0;
  if (!json_is_object(calls))
    return rb_err(err, errlen,
                  "scenario %s: field \"calls\" must be an object (module -> answers)",
                  path);
  if (only_fields(
          path, calls,
          "calls (call-level answers cover prom, cmd, http, ssh, flags and deploy)",
          rb_drill_modules(), err, errlen) != 0)
    return -1;
  const char *mod;
  json_t *list;
  json_object_foreach((json_t *)calls, mod, list)
  {
    if (!json_is_array(list))
      return rb_err(err, errlen, "scenario %s: calls.%s must be a list of answers", path,
                    mod);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
      char where[64];
      snprintf(where, sizeof where, "calls.%s[%zu]", mod, i);
      if (!json_is_object(a))
        return rb_err(err, errlen, "scenario %s: %s must be an object", path, where);
      if (rb_drill_entry_check(path, mod, where, a, err, errlen) != 0)
        return -1;
    }
  }
  return 0;
}

/* "inventory": the hosts a drill's ssh target (a group) stands for. */
static int check_inventory(const char *path, const json_t *inv, char *err, size_t errlen)
{
  if (inv && !json_is_object(inv))
    return rb_err(err, errlen,
                  "scenario %s: field \"inventory\" must be an object (group -> hosts)",
                  path);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)inv, k, v)
  {
    size_t i;
    json_t *h;
    if (!json_is_array(v) || json_array_size(v) == 0)
      return rb_err(err, errlen,
                    "scenario %s: inventory.%s must be a non-empty list of host names",
                    path, k);
    json_array_foreach(v, i, h)
    {
      if (!json_is_string(h) || json_string_length(h) == 0)
        return rb_err(err, errlen, "scenario %s: inventory.%s[%zu] must be a host name",
                      path, k, i);
    }
  }
  return 0;
}

static int check_vars(const char *path, const json_t *vars, char *err, size_t errlen)
{
  if (vars && !json_is_object(vars))
    return rb_err(err, errlen, "scenario %s: field \"vars\" must be an object", path);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)vars, k, v)
  {
    if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
      return rb_err(err, errlen,
                    "scenario %s: vars.%s must be a string, a number or a boolean", path,
                    k);
  }
  return 0;
}

json_t *rb_scenario_load(const char *path, const rb_model *m, char *err, size_t errlen)
{
  json_error_t je;
  json_t *s = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (s == NULL) {
    if (je.line <= 0)
      rb_err(err, errlen, "scenario %s: %s", path, je.text);
    else
      rb_err(err, errlen, "scenario %s:%d:%d: %s", path, je.line, je.column, je.text);
    return NULL;
  }
  if (!json_is_object(s)) {
    rb_err(err, errlen, "scenario %s: must be a JSON object with a \"steps\" object",
           path);
    goto bad;
  }
  if (only_fields(path, s, "the scenario", top_fields, err, errlen) != 0)
    goto bad;
  json_t *steps = json_object_get(s, "steps");
  /* A scenario answered at the call level only may leave steps out. */
  if (!json_is_object(steps) && (steps || !json_object_get(s, "calls"))) {
    rb_err(err, errlen,
           "scenario %s: field \"steps\" must be an object (step id -> answer)", path);
    goto bad;
  }
  const char *k;
  json_t *v;
  json_object_foreach(steps, k, v)
  {
    char where[300];
    snprintf(where, sizeof where, "steps.%s", k);
    if (known_step(path, m, k, where, err, errlen) != 0 ||
        check_answer(path, k, m ? rb_model_find(m, k) : NULL, v, err, errlen) != 0)
      goto bad;
  }
  if (check_vars(path, json_object_get(s, "vars"), err, errlen) != 0 ||
      check_calls(path, json_object_get(s, "calls"), err, errlen) != 0 ||
      check_inventory(path, json_object_get(s, "inventory"), err, errlen) != 0 ||
      check_expect(path, json_object_get(s, "expect"), m, err, errlen) != 0)
    goto bad;
  return s;
bad:
  json_decref(s);
  return NULL;
}

json_t *rb_scenario_answer(const json_t *scenario, const char *step_id)
{
  json_t *a = json_object_get(json_object_get(scenario, "steps"), step_id);
  if (a == NULL)
    return NULL;
  if (json_is_object(a))
    return json_incref(a);
  return json_pack("{s:O}", "value", a);
}
