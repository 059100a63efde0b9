/* drill_match.c: what each module's call-level answers may say, checked at
 * load, and how a call is matched against them (exact or glob patterns). */
#include "runner/drill_match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

typedef int (*entry_check)(const char *path, const char *where, const json_t *e,
                           char *err, size_t errlen);

typedef struct {
  const char *name;
  const char *const *matchers; /* the call's fields an entry is matched on */
  const char *const *defaults; /* a matcher's value when the entry leaves it out */
  const char *const *fields;   /* every field an entry may have */
  entry_check check;
} module_desc;

/* -- patterns --------------------------------------------------------------- */

int rb_pattern_check(const json_t *p, char *why, size_t len)
{
  if (json_is_string(p))
    return 0;
  const json_t *g = json_object_get(p, "glob");
  if (!json_is_object(p) || json_object_size(p) != 1 || !json_is_string(g))
    return rb_err(why, len, "must be a string (matched exactly) or {\"glob\": \"...\"}");
  for (const char *s = json_string_value(g); *s; s++) {
    if (*s != '\\')
      continue;
    if (s[1] != '*' && s[1] != '\\')
      return rb_err(why, len,
                    "glob \"%s\": a backslash escapes only * or \\ (at offset %zu)",
                    json_string_value(g), (size_t)(s - json_string_value(g)));
    s++;
  }
  return 0;
}

/* * matches any run of characters, \* and \\ themselves; linear backtracking
 * to the last star, so no pattern is exponential. */
static int glob_match(const char *p, const char *s)
{
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*p == '*') {
      star = ++p;
      resume = s;
      continue;
    }
    char c = *p;
    const char *np = p + 1;
    if (c == '\\' && p[1]) {
      c = p[1];
      np = p + 2;
    }
    if (c != '\0' && c == *s) {
      p = np;
      s++;
      continue;
    }
    if (star == NULL)
      return 0;
    p = star;
    s = ++resume;
  }
  while (*p == '*')
    p++;
  return *p == '\0';
}

int rb_pattern_match(const json_t *p, const char *s)
{
  if (s == NULL)
    return 0;
  if (json_is_string(p))
    return strcmp(json_string_value(p), s) == 0;
  const char *g = json_string_value(json_object_get(p, "glob"));
  return g != NULL && glob_match(g, s);
}

/* -- field checks ------------------------------------------------------------ */

static int pattern_field(const char *path, const char *where, const json_t *e,
                         const char *field, const char *what, char *err, size_t errlen)
{
  const json_t *p = json_object_get(e, field);
  char why[300];
  if (p == NULL)
    return what ? rb_err(err, errlen, "scenario %s: %s.%s must be %s", path, where, field,
                         what)
                : 0;
  if (rb_pattern_check(p, why, sizeof why) != 0)
    return rb_err(err, errlen, "scenario %s: %s.%s %s", path, where, field, why);
  return 0;
}

static int typed(const char *path, const char *where, const json_t *e, const char *field,
                 int type, const char *what, char *err, size_t errlen)
{
  const json_t *v = json_object_get(e, field);
  if (v == NULL || json_typeof(v) == (json_type)type ||
      (type == JSON_TRUE && json_is_boolean(v)))
    return 0;
  return rb_err(err, errlen, "scenario %s: %s.%s must be %s", path, where, field, what);
}

/* exit, stdout, stderr and fail: a command's answer (cmd, ssh). */
static int check_output(const char *path, const char *where, const json_t *e, char *err,
                        size_t errlen)
{
  if (typed(path, where, e, "exit", JSON_INTEGER, "an integer", err, errlen) ||
      typed(path, where, e, "stdout", JSON_STRING, "a string", err, errlen) ||
      typed(path, where, e, "stderr", JSON_STRING, "a string", err, errlen) ||
      typed(path, where, e, "fail", JSON_STRING, "a string (the error raised)", err,
            errlen))
    return -1;
  return 0;
}

/* A sample's number: a JSON number, or Prometheus's "NaN", "+Inf", "-Inf". */
static int prom_number(const json_t *v)
{
  const char *s = json_string_value(v);
  return json_is_number(v) ||
         (s && (!strcmp(s, "NaN") || !strcmp(s, "+Inf") || !strcmp(s, "-Inf")));
}

/* A vector: a list of series, each { labels = {name: "value"}, value, time }. */
static int check_vector(const char *path, const char *where, const json_t *vec, char *err,
                        size_t errlen)
{
  static const char *const series_f[] = {"labels", "value", "time", NULL};
  if (!json_is_array(vec))
    return rb_err(err, errlen,
                  "scenario %s: %s must be a list of series ({\"labels\": {...}, "
                  "\"value\": n})",
                  path, where);
  size_t i;
  json_t *x;
  json_array_foreach(vec, i, x)
  {
    const char *k;
    json_t *v;
    if (!json_is_object(x))
      return rb_err(err, errlen, "scenario %s: %s[%zu] must be a series object", path,
                    where, i);
    json_object_foreach(x, k, v)
    {
      size_t f = 0;
      while (series_f[f] && strcmp(series_f[f], k) != 0)
        f++;
      if (series_f[f] == NULL)
        return rb_err(err, errlen,
                      "scenario %s: unknown field '%s' in %s[%zu] (a series has labels, "
                      "value and time)",
                      path, k, where, i);
    }
    if (!prom_number(json_object_get(x, "value")))
      return rb_err(err, errlen,
                    "scenario %s: %s[%zu].value must be a number (or \"NaN\", \"+Inf\", "
                    "\"-Inf\")",
                    path, where, i);
    const json_t *t = json_object_get(x, "time"), *l = json_object_get(x, "labels");
    if (t && !json_is_number(t))
      return rb_err(err, errlen, "scenario %s: %s[%zu].time must be unix seconds", path,
                    where, i);
    if (l && !json_is_object(l))
      return rb_err(err, errlen, "scenario %s: %s[%zu].labels must be an object", path,
                    where, i);
    json_object_foreach((json_t *)l, k, v)
    {
      if (!json_is_string(v))
        return rb_err(err, errlen, "scenario %s: %s[%zu].labels.%s must be a string",
                      path, where, i, k);
    }
  }
  return 0;
}

/* One poll of "values": a number, a vector (a list of series) or
 * {"fail": "..."} (the query failed at that poll). */
static int check_sample(const char *path, const char *where, const json_t *x, char *err,
                        size_t errlen)
{
  if (prom_number(x))
    return 0;
  if (json_is_array(x))
    return check_vector(path, where, x, err, errlen);
  if (json_is_object(x) && json_object_size(x) == 1 &&
      json_is_string(json_object_get(x, "fail")))
    return 0;
  return rb_err(err, errlen,
                "scenario %s: %s must be a number, a list of series or {\"fail\": "
                "\"...\"}",
                path, where);
}

static int check_prom(const char *path, const char *where, const json_t *a, char *err,
                      size_t errlen)
{
  static const char *const forms[] = {"value", "values", "vector", "fail"};
  if (pattern_field(path, where, a, "query", "the PromQL query (a string)", err, errlen))
    return -1;
  int n = 0;
  for (size_t i = 0; i < 4; i++)
    n += json_object_get(a, forms[i]) != NULL;
  if (n != 1)
    return rb_err(err, errlen,
                  "scenario %s: %s: give one of \"value\", \"values\", \"vector\" or "
                  "\"fail\"",
                  path, where);
  const json_t *v = json_object_get(a, "value"), *vs = json_object_get(a, "values");
  char w[300];
  snprintf(w, sizeof w, "%s.vector", where);
  if (v && !prom_number(v))
    return rb_err(err, errlen,
                  "scenario %s: %s.value must be a number (a vector is \"vector\")", path,
                  where);
  if (json_object_get(a, "vector") &&
      check_vector(path, w, json_object_get(a, "vector"), err, errlen))
    return -1;
  if (typed(path, where, a, "fail", JSON_STRING, "a string (the error raised)", err,
            errlen))
    return -1;
  if (vs && (!json_is_array(vs) || json_array_size(vs) == 0))
    return rb_err(err, errlen,
                  "scenario %s: %s.values must be a non-empty list, one answer per poll",
                  path, where);
  size_t i;
  json_t *x;
  json_array_foreach(vs, i, x)
  {
    snprintf(w, sizeof w, "%s.values[%zu]", where, i);
    if (check_sample(path, w, x, err, errlen))
      return -1;
  }
  return 0;
}

static int check_cmd(const char *path, const char *where, const json_t *a, char *err,
                     size_t errlen)
{
  const json_t *argv = json_object_get(a, "argv");
  size_t i;
  json_t *x;
  if (!json_is_array(argv) || json_array_size(argv) == 0)
    return rb_err(err, errlen, "scenario %s: %s.argv must be a non-empty list of strings",
                  path, where);
  json_array_foreach(argv, i, x)
  {
    char why[300];
    if (rb_pattern_check(x, why, sizeof why) != 0)
      return rb_err(err, errlen, "scenario %s: %s.argv[%zu] %s", path, where, i, why);
  }
  return check_output(path, where, a, err, errlen);
}

static int check_http(const char *path, const char *where, const json_t *a, char *err,
                      size_t errlen)
{
  if (pattern_field(path, where, a, "method", NULL, err, errlen) ||
      pattern_field(path, where, a, "url", "the request's URL (a pattern)", err,
                    errlen) ||
      typed(path, where, a, "body", JSON_STRING, "a string", err, errlen) ||
      typed(path, where, a, "headers", JSON_OBJECT, "an object (name -> value)", err,
            errlen) ||
      typed(path, where, a, "fail", JSON_STRING, "a string (the error raised)", err,
            errlen))
    return -1;
  const json_t *st = json_object_get(a, "status");
  if (st && (!json_is_integer(st) || json_integer_value(st) < 100 ||
             json_integer_value(st) > 599))
    return rb_err(err, errlen, "scenario %s: %s.status must be an HTTP status (100-599)",
                  path, where);
  if (json_object_get(a, "body") && json_object_get(a, "json"))
    return rb_err(err, errlen, "scenario %s: %s: give \"body\" or \"json\", not both",
                  path, where);
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(a, "headers"), k, v)
  {
    if (!json_is_string(v))
      return rb_err(err, errlen, "scenario %s: %s.headers.%s must be a string", path,
                    where, k);
  }
  return 0;
}

static int check_ssh(const char *path, const char *where, const json_t *a, char *err,
                     size_t errlen)
{
  if (pattern_field(path, where, a, "host", "a host name (a pattern)", err, errlen) ||
      pattern_field(path, where, a, "command", "the command (a pattern)", err, errlen))
    return -1;
  return check_output(path, where, a, err, errlen);
}

/* op is one of ops (the first is the default); reads need their answer. */
static int check_op(const char *path, const char *where, const json_t *a,
                    const char *const *ops, const char *const *reads, const char *answer,
                    char *err, size_t errlen)
{
  const json_t *op = json_object_get(a, "op");
  const char *o = op ? json_string_value(op) : ops[0];
  int ok = 0, read = 0;
  for (size_t i = 0; o && ops[i]; i++)
    ok |= strcmp(ops[i], o) == 0;
  if (!ok)
    return rb_err(err, errlen, "scenario %s: %s.op must be one of %s%s%s%s%s", path,
                  where, ops[0], ops[1] ? ", " : "", ops[1] ? ops[1] : "",
                  ops[1] && ops[2] ? ", " : "", ops[1] && ops[2] ? ops[2] : "");
  for (size_t i = 0; reads[i]; i++)
    read |= strcmp(reads[i], o) == 0;
  if (typed(path, where, a, "fail", JSON_STRING, "a string (the error raised)", err,
            errlen))
    return -1;
  if (read && !json_object_get(a, answer) && !json_object_get(a, "fail"))
    return rb_err(err, errlen, "scenario %s: %s: a %s answer needs \"%s\" (or \"fail\")",
                  path, where, o, answer);
  return 0;
}

static int check_flags(const char *path, const char *where, const json_t *a, char *err,
                       size_t errlen)
{
  static const char *const ops[] = {"get", "set", NULL}, *const reads[] = {"get", NULL};
  if (pattern_field(path, where, a, "flag", "a flag name (a pattern)", err, errlen) ||
      typed(path, where, a, "state", JSON_TRUE, "true or false", err, errlen))
    return -1;
  return check_op(path, where, a, ops, reads, "state", err, errlen);
}

static int check_deploy(const char *path, const char *where, const json_t *a, char *err,
                        size_t errlen)
{
  static const char *const ops[] = {"recent", "status", "rollback", NULL},
                           *const reads[] = {"recent", "status", NULL};
  if (pattern_field(path, where, a, "service", "a service name (a pattern)", err,
                    errlen) ||
      check_op(path, where, a, ops, reads, "value", err, errlen))
    return -1;
  const json_t *v = json_object_get(a, "value");
  const char *op = json_string_value(json_object_get(a, "op"));
  if (v && !json_is_object(v) &&
      !(json_is_null(v) && (op == NULL || !strcmp(op, "recent"))))
    return rb_err(err, errlen,
                  "scenario %s: %s.value must be an object (null: no recent deploy)",
                  path, where);
  return 0;
}

static const char *const prom_m[] = {"query", NULL}, *const prom_d[] = {NULL};
static const char *const prom_f[] = {"query", "value", "values", "vector",
                                     "fail",  "note",  NULL};
static const char *const cmd_m[] = {"argv", NULL}, *const cmd_d[] = {NULL};
static const char *const cmd_f[] = {"argv", "exit", "stdout", "stderr",
                                    "fail", "note", NULL};
static const char *const http_m[] = {"method", "url", NULL}, *const http_d[] = {"GET",
                                                                                NULL};
static const char *const http_f[] = {"method", "url",  "status", "headers", "body",
                                     "json",   "fail", "note",   NULL};
static const char *const ssh_m[] = {"host", "command", NULL}, *const ssh_d[] = {NULL,
                                                                                NULL};
static const char *const ssh_f[] = {"host",   "command", "exit", "stdout",
                                    "stderr", "fail",    "note", NULL};
static const char *const flags_m[] = {"op", "flag", NULL}, *const flags_d[] = {"get",
                                                                               NULL};
static const char *const flags_f[] = {"flag", "op", "state", "fail", "note", NULL};
static const char *const deploy_m[] = {"op", "service", NULL}, *const deploy_d[] = {
                                                                   "recent", NULL};
static const char *const deploy_f[] = {"service", "op", "value", "fail", "note", NULL};

static const module_desc modules[] = {
    {"prom", prom_m, prom_d, prom_f, check_prom},
    {"cmd", cmd_m, cmd_d, cmd_f, check_cmd},
    {"http", http_m, http_d, http_f, check_http},
    {"ssh", ssh_m, ssh_d, ssh_f, check_ssh},
    {"flags", flags_m, flags_d, flags_f, check_flags},
    {"deploy", deploy_m, deploy_d, deploy_f, check_deploy},
};
static const char *const module_names[] = {"prom",  "cmd",    "http", "ssh",
                                           "flags", "deploy", NULL};

static const module_desc *desc(const char *module)
{
  for (size_t i = 0; i < sizeof modules / sizeof *modules; i++)
    if (strcmp(modules[i].name, module) == 0)
      return &modules[i];
  return NULL;
}

int rb_drill_module_known(const char *module)
{
  return desc(module) != NULL;
}

const char *const *rb_drill_modules(void)
{
  return module_names;
}

int rb_drill_entry_check(const char *path, const char *module, const char *where,
                         const json_t *entry, char *err, size_t errlen)
{
  const module_desc *d = desc(module);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)entry, k, v)
  {
    size_t i = 0;
    while (d->fields[i] && strcmp(d->fields[i], k) != 0)
      i++;
    if (d->fields[i] == NULL) {
      const char *near = rb_suggest(k, d->fields);
      return rb_err(err, errlen, "scenario %s: unknown field '%s' in %s%s%s%s", path, k,
                    where, near ? " (did you mean '" : "", near ? near : "",
                    near ? "'?)" : "");
    }
  }
  return d->check(path, where, entry, err, errlen);
}

/* -- matching and naming ------------------------------------------------------ */

static const json_t *matcher(const module_desc *d, size_t i, const json_t *entry,
                             json_t **owned)
{
  const json_t *p = json_object_get(entry, d->matchers[i]);
  if (p == NULL && d->defaults[i] != NULL)
    p = *owned = json_string(d->defaults[i]);
  return p;
}

int rb_drill_entry_matches(const char *module, const json_t *entry, const json_t *call)
{
  const module_desc *d = desc(module);
  int ok = d != NULL;
  for (size_t i = 0; ok && d->matchers[i]; i++) {
    json_t *owned = NULL;
    const json_t *p = matcher(d, i, entry, &owned),
                 *c = json_object_get(call, d->matchers[i]);
    if (json_is_array(p)) {
      ok = json_is_array(c) && json_array_size(c) == json_array_size(p);
      for (size_t j = 0; ok && j < json_array_size(p); j++)
        ok = rb_pattern_match(json_array_get(p, j),
                              json_string_value(json_array_get(c, j)));
    } else {
      ok = p != NULL && rb_pattern_match(p, json_string_value(c));
    }
    json_decref(owned);
  }
  return ok;
}

char *rb_drill_describe(const char *module, const json_t *v, int names)
{
  const module_desc *d = desc(module);
  size_t cap = 256, len = 0;
  char *out = malloc(cap);
  if (out == NULL || d == NULL) {
    free(out);
    return NULL;
  }
  out[0] = '\0';
  names = names || d->matchers[1] != NULL;
  for (size_t i = 0; d->matchers[i]; i++) {
    json_t *owned = NULL;
    const json_t *p = matcher(d, i, v, &owned);
    const char *g = json_string_value(json_object_get(p, "glob"));
    char *text = json_is_string(p) ? NULL : json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *shown = json_is_string(p) ? json_string_value(p) : g ? g : text;
    const char *q = json_is_string(p) ? "\"" : g ? "glob \"" : "";
    size_t need = len + strlen(d->matchers[i]) + strlen(shown ? shown : "?") + 16;
    if (need > cap) {
      char *n = realloc(out, cap = need * 2);
      if (n == NULL) {
        free(text);
        json_decref(owned);
        free(out);
        return NULL;
      }
      out = n;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s%s%s%s%s%s", i ? " " : "",
                            names ? d->matchers[i] : "", names ? " " : "", q,
                            shown ? shown : "?", *q ? "\"" : "");
    free(text);
    json_decref(owned);
  }
  return out;
}
