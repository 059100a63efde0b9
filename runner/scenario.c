/* scenario.c: loading drill scenarios and looking up their answers. */
#include "runner/scenario.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/util.h"

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

static const char *const answer_fields[] = {"value", "result", "fail",    "approved",
                                            "by",    "note",   "comment", NULL};

static int known_field(const char *k)
{
  for (const char *const *f = answer_fields; *f; f++)
    if (strcmp(*f, k) == 0)
      return 1;
  return 0;
}

json_t *rb_scenario_load(const char *path, const rb_model *m, char *err, size_t errlen)
{
  json_error_t je;
  json_t *s = json_load_file(path, 0, &je);
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
  json_t *steps = json_object_get(s, "steps");
  if (!json_is_object(steps)) {
    rb_err(err, errlen,
           "scenario %s: field \"steps\" must be an object (step id -> answer)", path);
    goto bad;
  }
  const char *k;
  json_t *v;
  json_object_foreach(steps, k, v)
  {
    if (m && rb_model_find(m, k) == NULL) {
      rb_err(err, errlen, "scenario %s: steps.%s: runbook '%s' has no step '%s'", path, k,
             m->name ? m->name : "?", k);
      goto bad;
    }
    if (json_is_object(v)) {
      const char *f;
      json_t *x;
      json_object_foreach(v, f, x)
      {
        if (!known_field(f)) {
          rb_err(err, errlen,
                 "scenario %s: steps.%s.%s: unknown field (use value, result, fail, "
                 "approved, by, note)",
                 path, k, f);
          goto bad;
        }
      }
    }
  }
  json_t *vars = json_object_get(s, "vars");
  if (vars && !json_is_object(vars)) {
    rb_err(err, errlen, "scenario %s: field \"vars\" must be an object", path);
    goto bad;
  }
  json_object_foreach(vars, k, v)
  {
    if (!json_is_string(v)) {
      rb_err(err, errlen, "scenario %s: vars.%s must be a string", path, k);
      goto bad;
    }
  }
  json_t *expect = json_object_get(s, "expect");
  if (expect && !json_is_object(expect)) {
    rb_err(err, errlen, "scenario %s: field \"expect\" must be an object", path);
    goto bad;
  }
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
