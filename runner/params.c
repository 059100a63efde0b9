/* params.c: merging --var values with a runbook's declared params, and
 * checking each value against the param's declared type. */
#include "runner/params.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

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

/* The whole of text must match the POSIX extended regex. */
static int matches(const char *pattern, const char *text, char *err, size_t errlen)
{
  char anchored[1024];
  if (rb_fmt(anchored, sizeof anchored, "^(%s)$", pattern) != 0)
    return rb_err(err, errlen, "pattern is too long");
  regex_t re;
  int rc = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char why[128];
    regerror(rc, &re, why, sizeof why);
    return rb_err(err, errlen, "pattern '%s' is not a valid regex: %s", pattern, why);
  }
  rc = regexec(&re, text, 0, NULL, 0);
  regfree(&re);
  return rc == 0 ? 0 : rb_err(err, errlen, "must match %s, not '%s'", pattern, text);
}

static json_t *typed(const rb_param *p, const char *text)
{
  char *end = NULL;
  errno = 0;
  switch (p->type) {
  case RB_PARAM_NUMBER: {
    double d = strtod(text, &end);
    return *text && *end == '\0' && errno == 0 && isfinite(d) ? json_real(d) : NULL;
  }
  case RB_PARAM_INTEGER: {
    long long n = strtoll(text, &end, 10);
    return *text && *end == '\0' && errno == 0 ? json_integer(n) : NULL;
  }
  case RB_PARAM_BOOLEAN:
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
      return json_boolean(text[0] == 't');
    return NULL;
  case RB_PARAM_DURATION: {
    int64_t ms;
    char e[128];
    return rb_parse_duration(text, &ms, e, sizeof e) == 0 ? json_string(text) : NULL;
  }
  case RB_PARAM_ENUM:
    for (size_t i = 0; i < p->nchoices; i++)
      if (strcmp(p->choices[i], text) == 0)
        return json_string(text);
    return NULL;
  default:
    return json_string(text);
  }
}

/* What the type accepts, for the error message. */
static void expected(const rb_param *p, char *buf, size_t len)
{
  static const char *const what[] = {
      "a string", "a number", "an integer", "true or false", "a duration such as \"30s\"",
      ""};
  if (p->type != RB_PARAM_ENUM) {
    snprintf(buf, len, "%s", what[p->type]);
    return;
  }
  size_t used = (size_t)snprintf(buf, len, "one of");
  for (size_t i = 0; i < p->nchoices && used < len; i++)
    used +=
        (size_t)snprintf(buf + used, len - used, "%s %s", i ? "," : "", p->choices[i]);
}

int rb_param_check(const rb_param *p, const char *text, json_t **out, char *err,
                   size_t errlen)
{
  json_t *v = typed(p, text);
  if (v == NULL) {
    char want[512];
    expected(p, want, sizeof want);
    return rb_err(err, errlen, "must be %s, not '%s'", want, text);
  }
  if (p->pattern && matches(p->pattern, text, err, errlen) != 0) {
    json_decref(v);
    return -1;
  }
  if (out)
    *out = v;
  else
    json_decref(v);
  return 0;
}

/* A value as text: --var and labels give strings, a journal the typed
 * value a run had. NULL when absent or not a scalar. */
static const char *text_of(const json_t *obj, const char *k, char *buf, size_t len)
{
  const json_t *v = obj ? json_object_get(obj, k) : NULL;
  if (json_is_string(v))
    return json_string_value(v);
  if (json_is_integer(v))
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, len, "%.17g", json_real_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
  else
    return NULL;
  return buf;
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
    char b1[64], b2[64];
    const char *val = text_of(vars, p->name, b1, sizeof b1), *from = "--var ";
    if (val == NULL) {
      val = text_of(fallback, p->name, b2, sizeof b2);
      from = "scenario var ";
    }
    if (val == NULL) {
      val = p->def;
      from = "default ";
    }
    if (val == NULL && p->is_required) {
      const char *d = p->description;
      rb_err(err, errlen, "missing required parameter '%s'%s%s%s: pass --var %s=VALUE",
             p->name, d ? " (" : "", d ? d : "", d ? ")" : "", p->name);
      json_decref(out);
      return NULL;
    }
    json_t *tv = NULL;
    char why[600];
    if (val != NULL && rb_param_check(p, val, &tv, why, sizeof why) != 0) {
      rb_err(err, errlen, "%s%s=%s: parameter '%s' %s", from, p->name, val, p->name, why);
      json_decref(out);
      return NULL;
    }
    if (tv != NULL)
      json_object_set_new(out, p->name, tv);
  }
  return out;
}
