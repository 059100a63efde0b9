/* alerts.c: Alertmanager webhook parsing, the alert-to-runbook rules
 * (exact and regex label matchers, templated vars), HMAC checks and dedup. */
#include "stdlib/serve/alerts.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/buf.h"
#include "stdlib/serve/dedup.h"
#include "runner/base/util.h"

/* -- payload -------------------------------------------------------------- */

static int id_ok(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

static int string_members(const json_t *o, const char *where, char *err, size_t errlen)
{
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v)
  {
    if (!json_is_string(v))
      return rb_err(err, errlen, "%s.%s: expected a string", where, k);
  }
  return 0;
}

static int parse_alert(json_t *a, size_t i, rb_alert *out, char *err, size_t errlen)
{
  char where[64];
  snprintf(where, sizeof where, "alerts[%zu]", i);
  if (!json_is_object(a))
    return rb_err(err, errlen, "%s: expected an object", where);
  json_t *st = json_object_get(a, "status"), *fp = json_object_get(a, "fingerprint");
  json_t *lb = json_object_get(a, "labels"), *an = json_object_get(a, "annotations");
  if (!json_is_string(st))
    return rb_err(err, errlen, "%s.status: expected a string", where);
  out->status = json_string_value(st);
  if (strcmp(out->status, "firing") != 0 && strcmp(out->status, "resolved") != 0)
    return rb_err(err, errlen, "%s.status: expected \"firing\" or \"resolved\"", where);
  if (!json_is_string(fp))
    return rb_err(err, errlen, "%s.fingerprint: expected a string", where);
  out->fingerprint = json_string_value(fp);
  if (!id_ok(out->fingerprint, 64))
    return rb_err(err, errlen,
                  "%s.fingerprint: expected 1-64 letters, digits, '-', '_', '.'", where);
  if (!json_is_object(lb))
    return rb_err(err, errlen, "%s.labels: expected an object", where);
  if (an != NULL && !json_is_object(an))
    return rb_err(err, errlen, "%s.annotations: expected an object", where);
  char sub[96];
  snprintf(sub, sizeof sub, "%s.labels", where);
  if (string_members(lb, sub, err, errlen))
    return -1;
  snprintf(sub, sizeof sub, "%s.annotations", where);
  if (an && string_members(an, sub, err, errlen))
    return -1;
  json_t *sa = json_object_get(a, "startsAt");
  if (sa != NULL &&
      (!json_is_string(sa) || !rb_dedup_key_part_ok(json_string_value(sa), 64)))
    return rb_err(err, errlen, "%s.startsAt: expected an RFC 3339 time", where);
  out->starts_at = sa ? json_string_value(sa) : "";
  out->labels = lb;
  out->annotations = an;
  const char *name = json_string_value(json_object_get(lb, "alertname"));
  out->alertname = name && *name ? name : "unnamed";
  return 0;
}

/* Alertmanager (v4) and Grafana (unified alerting, "1") share the shape;
 * version is what the sender must say (absent allowed when optional). */
static int parse_batch(const char *body, size_t len, const char *version, int optional,
                       const char *sender, rb_alert_batch *out, char *err, size_t errlen)
{
  memset(out, 0, sizeof *out);
  json_error_t je;
  out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (out->root == NULL)
    return rb_err(err, errlen, "body: invalid JSON at line %d column %d: %s", je.line,
                  je.column, je.text);
  if (!json_is_object(out->root)) {
    rb_err(err, errlen, "body: expected an object");
    goto fail;
  }
  json_t *ver = json_object_get(out->root, "version");
  if ((ver == NULL && !optional) ||
      (ver != NULL &&
       (!json_is_string(ver) || strcmp(json_string_value(ver), version) != 0))) {
    rb_err(err, errlen, "version: expected \"%s\" (%s)", version, sender);
    goto fail;
  }
  json_t *arr = json_object_get(out->root, "alerts");
  if (!json_is_array(arr)) {
    rb_err(err, errlen, "alerts: expected an array");
    goto fail;
  }
  json_t *gk = json_object_get(out->root, "groupKey");
  if (gk != NULL && !json_is_string(gk)) {
    rb_err(err, errlen, "groupKey: expected a string");
    goto fail;
  }
  out->group_key = gk && json_string_length(gk) ? json_string_value(gk) : NULL;
  out->n = json_array_size(arr);
  out->alerts = calloc(out->n ? out->n : 1, sizeof *out->alerts);
  if (out->alerts == NULL) {
    rb_err(err, errlen, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < out->n; i++) {
    if (parse_alert(json_array_get(arr, i), i, &out->alerts[i], err, errlen))
      goto fail;
  }
  return 0;
fail:
  rb_alerts_clear(out);
  return -1;
}

int rb_alerts_parse_am(const char *body, size_t len, rb_alert_batch *out, char *err,
                       size_t errlen)
{
  return parse_batch(body, len, "4", 1, "Alertmanager webhook v4", out, err, errlen);
}

int rb_alerts_parse_grafana(const char *body, size_t len, rb_alert_batch *out, char *err,
                            size_t errlen)
{
  return parse_batch(body, len, "1", 0, "Grafana unified alerting webhook", out, err,
                     errlen);
}

void rb_alerts_clear(rb_alert_batch *b)
{
  if (b == NULL)
    return;
  free(b->alerts);
  json_decref(b->root);
  memset(b, 0, sizeof *b);
}

/* -- rules ---------------------------------------------------------------- */

typedef struct {
  char *label;
  char *value; /* exact value, or NULL when re is used */
  regex_t re;
  int is_re;
} matcher;

typedef struct {
  matcher *m;
  size_t nm;
  int match_annotation;
  char *runbook; /* NULL with match_annotation: the annotation names it */
  json_t *vars;  /* name -> template */
  int dry_run;
} rule;

struct rb_rules {
  rule *r;
  size_t n;
};

static void rule_clear(rule *r)
{
  for (size_t i = 0; i < r->nm; i++) {
    free(r->m[i].label);
    free(r->m[i].value);
    if (r->m[i].is_re)
      regfree(&r->m[i].re);
  }
  free(r->m);
  free(r->runbook);
  json_decref(r->vars);
}

void rb_rules_free(rb_rules *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n; i++)
    rule_clear(&r->r[i]);
  free(r->r);
  free(r);
}

size_t rb_rules_count(const rb_rules *r)
{
  return r ? r->n : 0;
}

const char *rb_rules_runbook(const rb_rules *r, size_t i)
{
  return r && i < r->n ? r->r[i].runbook : NULL;
}

const json_t *rb_rules_vars(const rb_rules *r, size_t i)
{
  return r && i < r->n ? r->r[i].vars : NULL;
}

static int var_name_ok(const char *s)
{
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
    return 0;
  for (; *s; s++) {
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  }
  return 1;
}

static int parse_matchers(rule *r, const json_t *m, const char *at, char *err,
                          size_t errlen)
{
  if (!json_is_object(m))
    return rb_err(err, errlen, "%s.match: expected an object of label: value", at);
  r->m = calloc(json_object_size(m) + 1, sizeof *r->m);
  if (r->m == NULL)
    return rb_err(err, errlen, "out of memory");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)m, k, v)
  {
    if (!json_is_string(v))
      return rb_err(err, errlen, "%s.match.%s: expected a string", at, k);
    matcher *x = &r->m[r->nm++];
    x->label = strdup(k);
    const char *s = json_string_value(v);
    if (s[0] == '~') {
      /* anchored, like Alertmanager's =~ */
      size_t n = strlen(s) + 8;
      char *pat = malloc(n);
      if (pat == NULL)
        return rb_err(err, errlen, "out of memory");
      snprintf(pat, n, "^(%s)$", s + 1);
      int rc = regcomp(&x->re, pat, REG_EXTENDED | REG_NOSUB);
      free(pat);
      if (rc != 0) {
        char msg[128];
        regerror(rc, &x->re, msg, sizeof msg);
        return rb_err(err, errlen, "%s.match.%s: bad regex: %s", at, k, msg);
      }
      x->is_re = 1;
    } else {
      x->value = strdup(s);
    }
  }
  return 0;
}

static int parse_vars(rule *r, const json_t *v, const char *at, char *err, size_t errlen)
{
  r->vars = json_object();
  if (v == NULL)
    return 0;
  if (!json_is_object(v))
    return rb_err(err, errlen, "%s.vars: expected an object of name: template", at);
  const char *k;
  json_t *t;
  json_object_foreach((json_t *)v, k, t)
  {
    if (!var_name_ok(k))
      return rb_err(err, errlen, "%s.vars.%s: not a parameter name", at, k);
    if (!json_is_string(t))
      return rb_err(err, errlen, "%s.vars.%s: expected a string", at, k);
    char terr[256];
    rb_alert probe = {"firing", "x", "x", "", NULL, NULL};
    char *x = rb_alerts_template(json_string_value(t), &probe, terr, sizeof terr);
    if (x == NULL && strstr(terr, "absent") == NULL)
      return rb_err(err, errlen, "%s.vars.%s: %s", at, k, terr);
    free(x);
    json_object_set(r->vars, k, t);
  }
  return 0;
}

/* Edit distance of a and b, stopping early past 2: only near misses are
 * worth a suggestion. */
static int near_miss(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63 || (la > lb ? la - lb : lb - la) > 2)
    return 0;
  int d[64][64];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best)
        best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      d[i][j] = best;
    }
  return d[la][lb] <= 2;
}

const char *rb_alerts_suggest(const char *word, const char *const *cands)
{
  for (int i = 0; cands[i]; i++)
    if (near_miss(word, cands[i]))
      return cands[i];
  return NULL;
}

static int parse_rule(rule *r, const json_t *o, const char *at, char *err, size_t errlen)
{
  static const char *const known[] = {
      "match", "match_annotation", "runbook", "vars", "mode", NULL};
  if (!json_is_object(o))
    return rb_err(err, errlen, "%s: expected an object", at);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v)
  {
    int ok = 0;
    for (int i = 0; known[i]; i++)
      ok |= strcmp(known[i], k) == 0;
    const char *near = ok ? NULL : rb_alerts_suggest(k, known);
    if (!ok)
      return rb_err(err, errlen,
                    "%s: unknown field '%s'%s%s%s (known: match, match_annotation, "
                    "runbook, vars, mode)",
                    at, k, near ? " (did you mean '" : "", near ? near : "",
                    near ? "'?)" : "");
  }
  json_t *ma = json_object_get(o, "match_annotation"),
         *rb = json_object_get(o, "runbook");
  json_t *mode = json_object_get(o, "mode"), *m = json_object_get(o, "match");
  if (ma != NULL && !json_is_boolean(ma))
    return rb_err(err, errlen, "%s.match_annotation: expected true or false", at);
  r->match_annotation = json_is_true(ma);
  if (m == NULL && !r->match_annotation)
    return rb_err(err, errlen, "%s: needs match or match_annotation", at);
  if (m != NULL && parse_matchers(r, m, at, err, errlen))
    return -1;
  if (rb != NULL) {
    if (!json_is_string(rb) || !rb_alerts_runbook_name_ok(json_string_value(rb)))
      return rb_err(err, errlen,
                    "%s.runbook: expected a runbook name (letters, digits, "
                    "'-', '_', '.')",
                    at);
    r->runbook = strdup(json_string_value(rb));
  } else if (!r->match_annotation) {
    return rb_err(err, errlen, "%s.runbook: missing (or say match_annotation: true)", at);
  }
  if (mode == NULL ||
      (json_is_string(mode) && strcmp(json_string_value(mode), "dry-run") == 0))
    r->dry_run = 1;
  else if (json_is_string(mode) && strcmp(json_string_value(mode), "exec") == 0)
    r->dry_run = 0;
  else
    return rb_err(err, errlen, "%s.mode: expected \"exec\" or \"dry-run\"", at);
  return parse_vars(r, json_object_get(o, "vars"), at, err, errlen);
}

rb_rules *rb_rules_from_json(const json_t *arr, const char *origin, char *err,
                             size_t errlen)
{
  if (!json_is_array(arr)) {
    rb_err(err, errlen, "%s: expected a JSON array of rules", origin);
    return NULL;
  }
  rb_rules *rs = calloc(1, sizeof *rs);
  if (rs == NULL || (rs->r = calloc(json_array_size(arr) + 1, sizeof *rs->r)) == NULL) {
    free(rs);
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < json_array_size(arr); i++) {
    char at[4200];
    snprintf(at, sizeof at, "%s: rule %zu", origin, i);
    rs->n++;
    if (parse_rule(&rs->r[i], json_array_get(arr, i), at, err, errlen)) {
      rb_rules_free(rs);
      return NULL;
    }
  }
  return rs;
}

rb_rules *rb_rules_load(const char *path, char *err, size_t errlen)
{
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL) {
    rb_err(err, errlen, "%s:%d: %s", path, je.line, je.text);
    return NULL;
  }
  rb_rules *r = rb_rules_from_json(root, path, err, errlen);
  json_decref(root);
  return r;
}

static int rule_matches(const rule *r, const rb_alert *a)
{
  for (size_t i = 0; i < r->nm; i++) {
    const char *v = json_string_value(json_object_get(a->labels, r->m[i].label));
    if (v == NULL)
      return 0;
    if (r->m[i].is_re ? regexec(&r->m[i].re, v, 0, NULL, 0) != 0
                      : strcmp(v, r->m[i].value) != 0)
      return 0;
  }
  return 1;
}

static int fill_match(const rule *r, const rb_alert *a, const char *runbook,
                      rb_alert_match *m)
{
  snprintf(m->runbook, sizeof m->runbook, "%s", runbook);
  m->dry_run = r->dry_run;
  m->vars = json_object();
  const char *k;
  json_t *t;
  json_object_foreach(r->vars, k, t)
  {
    char terr[256];
    char *v = rb_alerts_template(json_string_value(t), a, terr, sizeof terr);
    if (v != NULL) /* an absent label leaves the runbook's default in force */
      json_object_set_new(m->vars, k, json_string(v));
    free(v);
  }
  return 1;
}

int rb_rules_match(const rb_rules *rs, const rb_alert *a, rb_alert_match *m, char *err,
                   size_t errlen)
{
  memset(m, 0, sizeof *m);
  for (size_t i = 0; rs && i < rs->n; i++) {
    const rule *r = &rs->r[i];
    if (!rule_matches(r, a))
      continue;
    const char *name = r->runbook;
    if (r->match_annotation) {
      const char *ann = json_string_value(json_object_get(a->annotations, "runbook"));
      if (ann == NULL || *ann == '\0') {
        if (name == NULL)
          continue;
      } else if (!rb_alerts_runbook_name_ok(ann) || strlen(ann) >= sizeof m->runbook) {
        return rb_err(err, errlen, "annotations.runbook: '%.64s' is not a runbook name",
                      ann);
      } else {
        name = ann;
      }
    }
    m->rule = (int)i;
    return fill_match(r, a, name, m);
  }
  return 0;
}

void rb_alert_match_clear(rb_alert_match *m)
{
  if (m == NULL)
    return;
  json_decref(m->vars);
  m->vars = NULL;
}

int rb_alerts_runbook_name_ok(const char *name)
{
  return name && name[0] != '-' && name[0] != '.' && id_ok(name, 127);
}

/* -- templates ------------------------------------------------------------ */

static const char *lookup(const rb_alert *a, const char *key, size_t n)
{
  char k[256];
  if (n >= sizeof k)
    return NULL;
  memcpy(k, key, n);
  k[n] = '\0';
  if (strcmp(k, "fingerprint") == 0)
    return a->fingerprint;
  if (strcmp(k, "status") == 0)
    return a->status;
  if (strcmp(k, "alertname") == 0)
    return a->alertname;
  if (strncmp(k, "labels.", 7) == 0)
    return json_string_value(json_object_get(a->labels, k + 7));
  if (strncmp(k, "annotations.", 12) == 0)
    return json_string_value(json_object_get(a->annotations, k + 12));
  return NULL;
}

static int known_key(const char *key, size_t n)
{
  static const char *const fixed[] = {"fingerprint", "status", "alertname"};
  for (int i = 0; i < 3; i++)
    if (strlen(fixed[i]) == n && strncmp(fixed[i], key, n) == 0)
      return 1;
  return (n > 7 && strncmp(key, "labels.", 7) == 0) ||
         (n > 12 && strncmp(key, "annotations.", 12) == 0);
}

char *rb_alerts_template(const char *tmpl, const rb_alert *a, char *err, size_t errlen)
{
  rb_buf out;
  rb_buf_init(&out, SIZE_MAX);
  for (const char *p = tmpl; *p;) {
    const char *piece = p;
    size_t n = 1;
    if (p[0] == '{' && p[1] == '{') {
      const char *end = strstr(p + 2, "}}");
      const char *k = p + 2;
      if (end == NULL) {
        rb_err(err, errlen, "'{{' without '}}'");
        goto fail;
      }
      while (*k == ' ')
        k++;
      size_t kn = (size_t)(end - k);
      while (kn > 0 && k[kn - 1] == ' ')
        kn--;
      if (!known_key(k, kn)) {
        rb_err(err, errlen,
               "unknown field '{{%.*s}}' (labels.X, annotations.X, "
               "fingerprint, status, alertname)",
               (int)(kn > 64 ? 64 : kn), k);
        goto fail;
      }
      piece = lookup(a, k, kn);
      if (piece == NULL) {
        rb_err(err, errlen, "'%.*s' is absent", (int)(kn > 64 ? 64 : kn), k);
        goto fail;
      }
      n = strlen(piece);
      p = end + 2;
    } else {
      p++;
    }
    if (rb_buf_add(&out, piece, n) != RB_BUF_OK) {
      rb_err(err, errlen, "out of memory");
      goto fail;
    }
  }
  return rb_buf_take(&out);
fail:
  rb_buf_free(&out);
  return NULL;
}

/* -- authentication ----------------------------------------------------- */

int rb_alerts_ct_equal(const char *a, const char *b)
{
  /* Digests of both sides have equal length, so the comparison time does
   * not depend on where (or whether) the lengths differ. */
  unsigned char da[32], db[32];
  unsigned int la = 0, lb = 0;
  if (a == NULL || b == NULL)
    return 0;
  if (!EVP_Digest(a, strlen(a), da, &la, EVP_sha256(), NULL) ||
      !EVP_Digest(b, strlen(b), db, &lb, EVP_sha256(), NULL))
    return 0;
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

int rb_alerts_hmac_sign(const char *key, const void *body, size_t len, char *out,
                        size_t outlen)
{
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (outlen < 72 ||
      HMAC(EVP_sha256(), key, (int)strlen(key), body, len, mac, &n) == NULL || n != 32)
    return -1;
  memcpy(out, "sha256=", 7);
  for (unsigned i = 0; i < n; i++)
    snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
  OPENSSL_cleanse(mac, sizeof mac);
  return 0;
}

int rb_alerts_hmac_ok(const char *key, const void *body, size_t len, const char *header)
{
  char want[80], got[80];
  if (key == NULL || header == NULL || strlen(header) >= sizeof got)
    return 0;
  if (rb_alerts_hmac_sign(key, body, len, want, sizeof want) != 0)
    return 0;
  /* hex digits compare case-insensitively */
  size_t i = 0;
  for (; header[i]; i++)
    got[i] = (header[i] >= 'A' && header[i] <= 'F') ? (char)(header[i] + 32) : header[i];
  got[i] = '\0';
  int ok = rb_alerts_ct_equal(want, got);
  OPENSSL_cleanse(want, sizeof want);
  return ok;
}
