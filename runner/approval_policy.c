/* approval_policy.c: who may answer a gate: the config's severity policy, the
 * runbook's approval_policy and the step's own, combined so that each holds. */
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/approval.h"
#include "runner/base/util.h"

static int in_list(const json_t *arr, const char *name)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
  {
    if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
      return 1;
  }
  return 0;
}

/* "a, b,c" -> ["a","b","c"]; empty entries are dropped. */
static json_t *split_names(const char *s)
{
  json_t *out = json_array();
  char *copy = strdup(s ? s : ""), *save = NULL;
  for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
       t = strtok_r(NULL, ",", &save))
    if (*rb_trim(t))
      json_array_append_new(out, json_string(rb_trim(t)));
  free(copy);
  return out;
}

/* [approvals.NAME] as a policy layer. Returns 0, 1 when there is no such
 * section, -1 with err on a bad value. */
static int config_layer(const rb_config *cfg, const char *sec, rb_approval_policy *p,
                        json_t **from, char *err, size_t errlen)
{
  static const char *const keys[] = {"min", "from", "not_self", "allow_as", NULL};
  int any = 0;
  for (size_t i = 0; keys[i]; i++)
    any |= rb_config_get(cfg, sec, keys[i]) != NULL;
  if (!any)
    return 1;
  long min = 1;
  int b = 0;
  if (rb_config_get(cfg, sec, "min") &&
      rb_config_get_int(cfg, sec, "min", &min, err, errlen) != 0)
    return -1;
  p->min = (int)min;
  if (rb_config_get(cfg, sec, "not_self")) {
    if (rb_config_get_bool(cfg, sec, "not_self", &b, err, errlen) != 0)
      return -1;
    p->not_self = 1 + b;
  }
  if (rb_config_get(cfg, sec, "allow_as")) {
    if (rb_config_get_bool(cfg, sec, "allow_as", &b, err, errlen) != 0)
      return -1;
    p->allow_as = 1 + b;
  }
  if (rb_config_get(cfg, sec, "from"))
    *from = split_names(rb_config_get(cfg, sec, "from"));
  return 0;
}

/* The accounts and approver names a `from` list admits: a group expands to
 * its members; any other name must be an account or a configured approver,
 * so that a misspelt group refuses everyone rather than admitting a name. */
static json_t *expand_from(const rb_config *cfg, const json_t *names, const char *layer,
                           char *err, size_t errlen)
{
  json_t *members = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(names, i, v)
  {
    const char *n = json_string_value(v);
    char sec[300];
    snprintf(sec, sizeof sec, "group.%s", n);
    const char *g = rb_config_get(cfg, sec, "members");
    snprintf(sec, sizeof sec, "approver.%s", n);
    if (g != NULL) {
      json_t *ms = split_names(g);
      json_array_extend(members, ms);
      json_decref(ms);
    } else if (getpwnam(n) != NULL || rb_config_get(cfg, sec, "token_env") ||
               rb_config_get(cfg, sec, "token_file") ||
               rb_config_get(cfg, sec, "slack_user")) {
      json_array_append(members, v);
    } else {
      rb_err(err, errlen,
             "approval policy %s: 'from' names '%s', which is no [group.%s], no account "
             "and no [approver.%s]",
             layer, n, n, n);
      json_decref(members);
      return NULL;
    }
  }
  return members;
}

/* Folds one layer into the combined policy: the larger min, not_self if
 * any layer says so, allow_as only if none forbids it, every from list. */
static int fold(json_t *pol, const rb_config *cfg, const char *layer,
                const rb_approval_policy *p, json_t *from, char *err, size_t errlen)
{
  if (p->min > json_integer_value(json_object_get(pol, "min"))) {
    json_object_set_new(pol, "min", json_integer(p->min));
    json_object_set_new(pol, "min_by", json_string(layer));
  }
  if (p->not_self == 2 && !json_is_true(json_object_get(pol, "not_self"))) {
    json_object_set_new(pol, "not_self", json_true());
    json_object_set_new(pol, "not_self_by", json_string(layer));
  }
  if (p->allow_as == 1 && json_is_true(json_object_get(pol, "allow_as"))) {
    json_object_set_new(pol, "allow_as", json_false());
    json_object_set_new(pol, "allow_as_by", json_string(layer));
  }
  if (p->timeout_ms > 0) /* the most specific layer decides how long to wait */
    json_object_set_new(pol, "timeout_ms", json_integer(p->timeout_ms));
  if (p->confirm) {
    json_object_set_new(pol, "confirm", json_string(p->confirm));
    json_object_set_new(pol, "confirm_by", json_string(layer));
  }
  if (from == NULL)
    return 0;
  json_t *members = expand_from(cfg, from, layer, err, errlen);
  if (members == NULL)
    return -1;
  json_array_append_new(
      json_object_get(pol, "from"),
      json_pack("{s:s, s:O, s:o}", "by", layer, "names", from, "members", members));
  return 0;
}

static json_t *names_of(const rb_approval_policy *p)
{
  if (p->nfrom == 0)
    return NULL;
  json_t *a = json_array();
  for (size_t i = 0; i < p->nfrom; i++)
    json_array_append_new(a, json_string(p->from[i]));
  return a;
}

json_t *rb_approval_policy_build(const rb_config *cfg, const rb_model *m,
                                 const rb_step *s, const json_t *self,
                                 int64_t default_timeout_ms, char *err, size_t errlen)
{
  json_t *pol = json_pack("{s:i, s:[], s:b, s:b, s:I, s:O}", "min", 1, "from", "not_self",
                          0, "allow_as", 1, "timeout_ms", (json_int_t)default_timeout_ms,
                          "self", self);
  int rc = 0;
  if (m->severity) {
    char sec[300], layer[320];
    snprintf(sec, sizeof sec, "approvals.%s", m->severity);
    snprintf(layer, sizeof layer, "[%s]", sec);
    rb_approval_policy p;
    memset(&p, 0, sizeof p);
    json_t *from = NULL;
    int r = config_layer(cfg, sec, &p, &from, err, errlen);
    if (r == 0)
      rc = fold(pol, cfg, layer, &p, from, err, errlen);
    else if (r < 0)
      rc = -1;
    json_object_set_new(pol, "severity", json_string(m->severity));
    json_decref(from);
  }
  json_t *from = names_of(&m->policy);
  if (rc == 0)
    rc = fold(pol, cfg, "approval_policy", &m->policy, from, err, errlen);
  json_decref(from);
  char layer[300];
  snprintf(layer, sizeof layer, "step '%s'", s->id);
  from = names_of(&s->policy);
  if (rc == 0)
    rc = fold(pol, cfg, layer, &s->policy, from, err, errlen);
  json_decref(from);
  if (rc != 0) {
    json_decref(pol);
    return NULL;
  }
  return pol;
}

int rb_approval_policy_check(const json_t *pol, const char *identity, int labelled,
                             char *why, size_t len)
{
  if (pol == NULL)
    return 0;
  if (json_is_true(json_object_get(pol, "not_self")) &&
      in_list(json_object_get(pol, "self"), identity))
    return rb_err(why, len, "refused by %s (not_self): %s started this run",
                  json_string_value(json_object_get(pol, "not_self_by")), identity);
  if (labelled && json_is_false(json_object_get(pol, "allow_as")))
    return rb_err(why, len, "refused by %s (allow_as = false): answer without --as",
                  json_string_value(json_object_get(pol, "allow_as_by")));
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(pol, "from"), i, f)
  {
    if (in_list(json_object_get(f, "members"), identity))
      continue;
    char *names = json_dumps(json_object_get(f, "names"), JSON_COMPACT);
    rb_err(why, len, "refused by %s: %s is not in from = %s",
           json_string_value(json_object_get(f, "by")), identity, names ? names : "?");
    free(names);
    return -1;
  }
  return 0;
}

int rb_approval_confirm_check(const json_t *pol, const rb_approval_answer *a, char *why,
                              size_t len)
{
  const char *word = json_string_value(json_object_get(pol, "confirm"));
  if (word == NULL || !a->approve || (a->confirm && strcmp(a->confirm, word) == 0))
    return 0;
  /* The word is no secret: the request shows it; typing it is the point. */
  return rb_err(why, len, "refused by %s (confirm): approving needs the word '%s'%s",
                json_string_value(json_object_get(pol, "confirm_by")), word,
                a->confirm && *a->confirm ? ", and the answer gave another" : "");
}

/* Appends the names of every from list: "sre", "sre and dba". */
static void from_text(const json_t *pol, char *out, size_t len)
{
  size_t i, j, used = 0;
  json_t *f, *n;
  out[0] = '\0';
  json_array_foreach(json_object_get(pol, "from"), i, f)
  {
    json_array_foreach(json_object_get(f, "names"), j, n)
    {
      int w = snprintf(out + used, len - used, "%s%s", used ? (j ? "/" : " and ") : "",
                       json_string_value(n));
      if (w < 0 || (size_t)w >= len - used)
        return;
      used += (size_t)w;
    }
  }
}

void rb_approval_policy_needs(const json_t *pol, const json_t *answers, char *out,
                              size_t len)
{
  long have = 0, min = pol ? (long)json_integer_value(json_object_get(pol, "min")) : 1;
  char from[256], who[512] = "";
  size_t i, used = 0;
  json_t *a;
  json_array_foreach(answers, i, a)
  {
    have += json_is_true(json_object_get(a, "approve"));
    int w = snprintf(who + used, sizeof who - used, "%s%s%s", used ? ", " : "",
                     json_string_value(json_object_get(a, "identity")),
                     json_is_true(json_object_get(a, "approve")) ? "" : " (denied)");
    if (w > 0 && (size_t)w < sizeof who - used)
      used += (size_t)w;
  }
  from_text(pol, from, sizeof from);
  snprintf(out, len, "%ld of %ld%s%s; answered: %s", have, min < 1 ? 1 : min,
           from[0] ? " from " : "", from, who[0] ? who : "nobody");
}
