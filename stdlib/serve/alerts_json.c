/* alerts_json.c: the generic JSON alert route: a [serve.json.NAME] section
 * maps any sender's JSON to alerts with RFC 6901 JSON pointers. */
#include "stdlib/serve/alerts_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/serve/dedup.h"
#include "runner/base/util.h"

#define MAX_MAPPED 32

typedef struct {
  char name[64];
  char ptr[256];
} mapping;

struct rb_json_route {
  char name[64];
  char alerts[256]; /* pointer to the array of alerts; "" = the body is one */
  char fingerprint[256], status[256], starts_at[256];
  char resolved[64]; /* the status value that means resolved */
  mapping labels[MAX_MAPPED], annotations[MAX_MAPPED];
  size_t nlabels, nannotations;
};

static int pointer_ok(const char *p)
{
  if (*p != '\0' && *p != '/')
    return 0;
  for (; *p; p++)
    if (*p == '~' && p[1] != '0' && p[1] != '1')
      return 0;
  return 1;
}

/* Resolves pointer p in doc (RFC 6901); NULL when a step is missing. */
static json_t *resolve(json_t *doc, const char *p)
{
  json_t *cur = doc;
  while (cur && *p == '/') {
    char tok[256];
    size_t n = 0;
    for (p++; *p && *p != '/'; p++) {
      char ch = *p;
      if (ch == '~')
        ch = *++p == '0' ? '~' : '/';
      if (n + 1 >= sizeof tok)
        return NULL;
      tok[n++] = ch;
    }
    tok[n] = '\0';
    if (json_is_object(cur)) {
      cur = json_object_get(cur, tok);
    } else if (json_is_array(cur)) {
      char *end;
      unsigned long i = strtoul(tok, &end, 10);
      if (n == 0 || *end || (tok[0] == '0' && n > 1))
        return NULL;
      cur = json_array_get(cur, i);
    } else {
      return NULL;
    }
  }
  return cur;
}

static int label_name_ok(const char *s)
{
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

/* "name=/ptr, name2=/ptr2" into m. */
static int parse_list(const char *text, mapping *m, size_t *n, const char *at, char *err,
                      size_t errlen)
{
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", text ? text : "");
  char *save = NULL;
  for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    while (*item == ' ')
      item++;
    char *eq = strchr(item, '=');
    size_t len = strlen(item);
    while (len && item[len - 1] == ' ')
      item[--len] = '\0';
    if (eq == NULL || *n >= MAX_MAPPED)
      return rb_err(err, errlen, "%s: expected name=/pointer, ... (at most %d): '%s'", at,
                    MAX_MAPPED, item);
    *eq = '\0';
    for (char *e = eq - 1; e >= item && *e == ' '; e--)
      *e = '\0';
    while (eq[1] == ' ')
      eq++;
    if (!label_name_ok(item) || strlen(item) >= sizeof m->name)
      return rb_err(err, errlen, "%s: '%s' is not a label name", at, item);
    if (!pointer_ok(eq + 1) || strlen(eq + 1) >= sizeof m->ptr)
      return rb_err(err, errlen, "%s: '%s' is not a JSON pointer", at, eq + 1);
    snprintf(m[*n].name, sizeof m->name, "%s", item);
    snprintf(m[*n].ptr, sizeof m->ptr, "%s", eq + 1);
    (*n)++;
  }
  return 0;
}

static int copy_pointer(const rb_config *cfg, const char *section, const char *key,
                        const char *def, char *out, size_t len, char *err, size_t errlen)
{
  const char *v = rb_host_config_string(cfg, section, key);
  if (v == NULL)
    v = def;
  if (v == NULL)
    return rb_err(err, errlen, "[%s] %s: missing (a JSON pointer such as \"/id\")",
                  section, key);
  if (!pointer_ok(v) || strlen(v) >= len)
    return rb_err(err, errlen, "[%s] %s: '%s' is not a JSON pointer", section, key, v);
  snprintf(out, len, "%s", v);
  return 0;
}

rb_json_route *rb_json_route_new(const rb_config *cfg, const char *section, char *err,
                                 size_t errlen)
{
  rb_json_route *r = calloc(1, sizeof *r);
  const char *name = strrchr(section, '.');
  char at[160];
  if (r == NULL) {
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(r->name, sizeof r->name, "%s", name ? name + 1 : section);
  const char *res = rb_host_config_string(cfg, section, "resolved");
  snprintf(r->resolved, sizeof r->resolved, "%s", res ? res : "resolved");
  snprintf(at, sizeof at, "[%s] labels", section);
  int bad = copy_pointer(cfg, section, "alerts", "", r->alerts, sizeof r->alerts, err,
                         errlen) ||
            copy_pointer(cfg, section, "fingerprint", NULL, r->fingerprint,
                         sizeof r->fingerprint, err, errlen) ||
            copy_pointer(cfg, section, "status", "", r->status, sizeof r->status, err,
                         errlen) ||
            copy_pointer(cfg, section, "starts_at", "", r->starts_at, sizeof r->starts_at,
                         err, errlen) ||
            parse_list(rb_host_config_string(cfg, section, "labels"), r->labels,
                       &r->nlabels, at, err, errlen);
  snprintf(at, sizeof at, "[%s] annotations", section);
  if (!bad)
    bad = parse_list(rb_host_config_string(cfg, section, "annotations"), r->annotations,
                     &r->nannotations, at, err, errlen);
  if (bad) {
    free(r);
    return NULL;
  }
  return r;
}

void rb_json_route_free(rb_json_route *r)
{
  free(r);
}

const char *rb_json_route_name(const rb_json_route *r)
{
  return r->name;
}

/* A scalar as label text; NULL for objects, arrays and null. */
static json_t *as_text(const json_t *v)
{
  char buf[64];
  if (json_is_string(v))
    return json_incref((json_t *)v);
  if (json_is_integer(v))
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
  else
    return NULL;
  return json_string(buf);
}

static json_t *map_fields(json_t *a, const mapping *m, size_t n, const char *where,
                          char *err, size_t errlen)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++) {
    json_t *v = as_text(resolve(a, m[i].ptr));
    if (v == NULL) {
      json_decref(o);
      rb_err(err, errlen, "%s%s (%s): %s", where, m[i].ptr, m[i].name,
             resolve(a, m[i].ptr) ? "expected a string, number or boolean" : "missing");
      return NULL;
    }
    json_object_set_new(o, m[i].name, v);
  }
  return o;
}

/* One alert: its mapped fields kept alive in hold (freed with the batch). */
static int map_alert(const rb_json_route *r, json_t *a, size_t i, json_t *hold,
                     rb_alert *out, char *err, size_t errlen)
{
  char where[64];
  snprintf(where, sizeof where, "alerts[%zu]: ", i);
  json_t *fp = as_text(resolve(a, r->fingerprint));
  json_array_append_new(hold, fp ? fp : json_null());
  if (fp == NULL || !rb_dedup_key_part_ok(json_string_value(fp), 64) ||
      !rb_alerts_runbook_name_ok(json_string_value(fp)))
    return rb_err(err, errlen, "%s%s (fingerprint): %s", where, r->fingerprint,
                  fp ? "expected 1-64 letters, digits, '-', '_', '.'" : "missing");
  out->fingerprint = json_string_value(fp);
  out->status = "firing";
  if (r->status[0]) {
    const char *st = json_string_value(resolve(a, r->status));
    if (st == NULL)
      return rb_err(err, errlen, "%s%s (status): missing", where, r->status);
    out->status = strcmp(st, r->resolved) == 0 ? "resolved" : "firing";
  }
  out->starts_at = "";
  if (r->starts_at[0]) {
    json_t *sa = as_text(resolve(a, r->starts_at));
    json_array_append_new(hold, sa ? sa : json_null());
    if (sa == NULL || !rb_dedup_key_part_ok(json_string_value(sa), 64))
      return rb_err(err, errlen, "%s%s (starts_at): %s", where, r->starts_at,
                    sa ? "expected at most 64 characters without spaces" : "missing");
    out->starts_at = json_string_value(sa);
  }
  json_t *lb = map_fields(a, r->labels, r->nlabels, where, err, errlen);
  if (lb == NULL)
    return -1;
  json_array_append_new(hold, lb);
  json_t *an = map_fields(a, r->annotations, r->nannotations, where, err, errlen);
  if (an == NULL)
    return -1;
  json_array_append_new(hold, an);
  out->labels = lb;
  out->annotations = an;
  const char *name = json_string_value(json_object_get(lb, "alertname"));
  out->alertname = name && *name ? name : "unnamed";
  return 0;
}

int rb_alerts_parse_json(const rb_json_route *r, const char *body, size_t len,
                         rb_alert_batch *out, char *err, size_t errlen)
{
  memset(out, 0, sizeof *out);
  json_error_t je;
  json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (doc == NULL)
    return rb_err(err, errlen, "body: invalid JSON at line %d column %d: %s", je.line,
                  je.column, je.text);
  /* root holds the document and everything mapped from it */
  out->root = json_pack("[o]", doc);
  json_t *arr = resolve(doc, r->alerts);
  int one = r->alerts[0] == '\0';
  if (!one && !json_is_array(arr)) {
    rb_err(err, errlen, "%s: expected an array of alerts", r->alerts);
    goto fail;
  }
  out->n = one ? 1 : json_array_size(arr);
  out->alerts = calloc(out->n ? out->n : 1, sizeof *out->alerts);
  if (out->alerts == NULL) {
    rb_err(err, errlen, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < out->n; i++) {
    json_t *a = one ? doc : json_array_get(arr, i);
    if (map_alert(r, a, i, out->root, &out->alerts[i], err, errlen) != 0)
      goto fail;
  }
  return 0;
fail:
  rb_alerts_clear(out);
  return -1;
}
