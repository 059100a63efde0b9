/* params.c: merging --var values with a runbook's declared params. */
#include "runner/params.h"

#include <stdlib.h>
#include <string.h>

#include "runner/util.h"

int rb_params_parse_var(const char *arg, char **key, char **value, char *err,
                        size_t errlen)
{
  const char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg)
    return rb_err(err, errlen, "--var '%s': expected name=value", arg);
  for (const char *p = arg; p < eq; p++) {
    if (!(*p == '_' || *p == '-' || (*p >= 'a' && *p <= 'z') ||
          (*p >= 'A' && *p <= 'Z') || (p > arg && *p >= '0' && *p <= '9')))
      return rb_err(err, errlen, "--var '%s': '%.*s' is not a valid name", arg,
                    (int)(eq - arg), arg);
  }
  *key = strndup(arg, (size_t)(eq - arg));
  *value = strdup(eq + 1);
  if (*key == NULL || *value == NULL) {
    free(*key);
    free(*value);
    return rb_err(err, errlen, "out of memory");
  }
  return 0;
}

static const char *str_of(const json_t *obj, const char *k)
{
  const json_t *v = obj ? json_object_get(obj, k) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *rb_params_resolve(const rb_model *m, const json_t *vars, const json_t *fallback,
                          char *err, size_t errlen)
{
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)vars, k, v)
  {
    if (rb_model_find_param(m, k) == NULL) {
      char known[512] = "";
      size_t used = 0;
      for (size_t i = 0; i < m->nparams && used + 2 < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                         m->params[i].name);
        if (n > 0)
          used += (size_t)n;
      }
      rb_err(err, errlen, "unknown --var '%s': runbook '%s' takes %s", k, m->name,
             m->nparams ? known : "no parameters");
      return NULL;
    }
  }
  json_t *out = json_object();
  for (size_t i = 0; i < m->nparams; i++) {
    const rb_param *p = &m->params[i];
    const char *val = str_of(vars, p->name);
    if (val == NULL)
      val = str_of(fallback, p->name);
    if (val == NULL)
      val = p->def;
    if (val == NULL && p->is_required) {
      const char *d = p->description;
      rb_err(err, errlen, "missing required parameter '%s'%s%s%s: pass --var %s=VALUE",
             p->name, d ? " (" : "", d ? d : "", d ? ")" : "", p->name);
      json_decref(out);
      return NULL;
    }
    if (val != NULL)
      json_object_set_new(out, p->name, json_string(val));
  }
  return out;
}
