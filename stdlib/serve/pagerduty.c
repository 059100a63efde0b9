/* pagerduty.c: PagerDuty v3 webhooks: signatures under one or more secrets
 * (rotation), incident.triggered / incident.resolved mapped to alerts. */
#include "stdlib/serve/pagerduty.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"
#include "stdlib/serve/dedup.h"

#define MAX_SIGNATURES 16

struct rb_pd_secrets {
  char *v[RB_PD_MAX_SECRETS];
  size_t n;
};

void rb_pd_secrets_free(rb_pd_secrets *s)
{
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++) {
    OPENSSL_cleanse(s->v[i], strlen(s->v[i]));
    free(s->v[i]);
  }
  free(s);
}

static int is_sep(char c)
{
  return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

rb_pd_secrets *rb_pd_secrets_parse(const char *value, char *err, size_t errlen)
{
  rb_pd_secrets *s = calloc(1, sizeof *s);
  if (s == NULL) {
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  for (const char *p = value; *p;) {
    while (*p && is_sep(*p))
      p++;
    size_t n = 0;
    while (p[n] && !is_sep(p[n]))
      n++;
    if (n == 0)
      break;
    if (n < 16 || s->n == RB_PD_MAX_SECRETS) {
      rb_err(err, errlen,
             n < 16 ? "[serve] pagerduty_secret: secret %zu is shorter than 16 characters"
                    : "[serve] pagerduty_secret: more than %zu secrets",
             n < 16 ? s->n + 1 : (size_t)RB_PD_MAX_SECRETS);
      rb_pd_secrets_free(s);
      return NULL;
    }
    s->v[s->n] = strndup(p, n);
    if (s->v[s->n++] == NULL) {
      rb_err(err, errlen, "out of memory");
      rb_pd_secrets_free(s);
      return NULL;
    }
    p += n;
  }
  if (s->n == 0) {
    rb_err(err, errlen, "[serve] pagerduty_secret: empty");
    rb_pd_secrets_free(s);
    return NULL;
  }
  return s;
}

const char *rb_pd_secret_at(const rb_pd_secrets *s, size_t i)
{
  return s && i < s->n ? s->v[i] : NULL;
}

int rb_pd_secrets_contains(const rb_pd_secrets *s, const char *other)
{
  int found = 0;
  for (size_t i = 0; s && other && i < s->n; i++)
    found |= rb_alerts_ct_equal(s->v[i], other);
  return found;
}

/* One signature "v1=<64 hex>" of the header, lower-cased into out (65
 * bytes); 0 when it has another version or shape (ignored, as documented). */
static int take_signature(const char *p, size_t n, char *out)
{
  while (n > 0 && (*p == ' ' || *p == '\t'))
    p++, n--;
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
    n--;
  if (n != 3 + 64 || strncmp(p, "v1=", 3) != 0)
    return 0;
  for (size_t i = 0; i < 64; i++) {
    char c = p[3 + i];
    if (c >= 'A' && c <= 'F')
      c = (char)(c + 32);
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return 0;
    out[i] = c;
  }
  out[64] = '\0';
  return 1;
}

int rb_pd_verify(const rb_pd_secrets *s, const void *body, size_t len, const char *header)
{
  char want[RB_PD_MAX_SECRETS][65], got[MAX_SIGNATURES][65];
  size_t ngot = 0;
  int ok = 0;
  if (s == NULL || header == NULL)
    return 0;
  for (const char *p = header; *p && ngot < MAX_SIGNATURES;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    ngot += take_signature(p, n, got[ngot]);
    p += n + (comma != NULL);
  }
  for (size_t i = 0; i < s->n; i++) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int m = 0;
    if (HMAC(EVP_sha256(), s->v[i], (int)strlen(s->v[i]), body, len, mac, &m) == NULL ||
        m != 32)
      return 0;
    for (unsigned j = 0; j < 32; j++)
      snprintf(want[i] + 2 * j, 3, "%02x", mac[j]);
    OPENSSL_cleanse(mac, sizeof mac);
  }
  /* every pair is compared: the time says nothing about which matched */
  for (size_t i = 0; i < s->n; i++)
    for (size_t j = 0; j < ngot; j++)
      ok |= CRYPTO_memcmp(want[i], got[j], 64) == 0;
  OPENSSL_cleanse(want, sizeof want);
  return ok;
}

/* -- the payload ------------------------------------------------------------ */

/* A field that must be a string: its value, or NULL with err. */
static const char *need_str(const json_t *o, const char *key, const char *where,
                            char *err, size_t errlen)
{
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v)) {
    rb_err(err, errlen, "%s.%s: %s", where, key, v ? "expected a string" : "missing");
    return NULL;
  }
  return json_string_value(v);
}

/* An optional object field: 1 with *out (NULL when absent or null), or -1. */
static int opt_obj(const json_t *o, const char *key, const char *where, json_t **out,
                   char *err, size_t errlen)
{
  json_t *v = json_object_get(o, key);
  *out = json_is_object(v) ? v : NULL;
  if (v != NULL && !json_is_null(v) && !json_is_object(v))
    return rb_err(err, errlen, "%s.%s: expected an object or null", where, key);
  return 1;
}

/* Copies an optional string field (absent or null: nothing) to dst[name]. */
static int copy_opt(json_t *dst, const char *name, const json_t *o, const char *key,
                    const char *where, char *err, size_t errlen)
{
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    json_object_set_new(dst, name,
                        json_sprintf("%lld", (long long)json_integer_value(v)));
    return 0;
  }
  if (!json_is_string(v))
    return rb_err(err, errlen, "%s.%s: expected a string", where, key);
  json_object_set(dst, name, v);
  return 0;
}

/* The summaries of an optional array of references, comma-joined into
 * dst[name]: "Engineering, Database". */
static int join_refs(json_t *dst, const char *name, const json_t *o, const char *key,
                     const char *where, char *err, size_t errlen)
{
  json_t *arr = json_object_get(o, key), *ref;
  size_t i;
  if (arr == NULL || json_is_null(arr))
    return 0;
  if (!json_is_array(arr))
    return rb_err(err, errlen, "%s.%s: expected an array", where, key);
  rb_buf b;
  rb_buf_init(&b, 4096);
  json_array_foreach(arr, i, ref)
  {
    const char *s = json_string_value(json_object_get(ref, "summary"));
    if (s == NULL) {
      rb_buf_free(&b);
      return rb_err(err, errlen, "%s.%s[%zu].summary: expected a string", where, key, i);
    }
    if ((i > 0 && rb_buf_add(&b, ", ", 2) != 0) || rb_buf_add(&b, s, strlen(s)) != 0) {
      rb_buf_free(&b);
      return rb_err(err, errlen, "%s.%s: too long", where, key);
    }
  }
  if (b.len > 0)
    json_object_set_new(dst, name, json_stringn(rb_buf_str(&b), b.len));
  rb_buf_free(&b);
  return 0;
}

/* The reference fields of an incident (service, priority, policy) as
 * labels: service and service_id must be there, the others may be null. */
static int map_refs(const json_t *d, json_t *lb, char *err, size_t errlen)
{
  const char *w = "event.data";
  json_t *svc = json_object_get(d, "service"), *pri, *pol;
  if (!json_is_object(svc))
    return rb_err(err, errlen, "%s.service: %s", w,
                  svc ? "expected an object" : "missing");
  const char *sum = need_str(svc, "summary", "event.data.service", err, errlen);
  const char *sid = sum ? need_str(svc, "id", "event.data.service", err, errlen) : NULL;
  if (sid == NULL)
    return -1;
  json_object_set_new(lb, "service", json_string(sum));
  json_object_set_new(lb, "service_id", json_string(sid));
  if (opt_obj(d, "priority", w, &pri, err, errlen) < 0 ||
      opt_obj(d, "escalation_policy", w, &pol, err, errlen) < 0)
    return -1;
  if (pri &&
      (copy_opt(lb, "priority", pri, "summary", "event.data.priority", err, errlen) ||
       copy_opt(lb, "priority_id", pri, "id", "event.data.priority", err, errlen)))
    return -1;
  if (pol && copy_opt(lb, "escalation_policy", pol, "summary",
                      "event.data.escalation_policy", err, errlen))
    return -1;
  return join_refs(lb, "teams", d, "teams", w, err, errlen);
}

/* What rules can read of the event and its incident (docs/serve.md). */
static int map_incident(const json_t *ev, const char *type, const json_t *d, json_t *lb,
                        json_t *an, char *err, size_t errlen)
{
  const char *w = "event.data";
  const char *title = need_str(d, "title", w, err, errlen);
  const char *urgency = title ? need_str(d, "urgency", w, err, errlen) : NULL;
  const char *status = urgency ? need_str(d, "status", w, err, errlen) : NULL;
  if (status == NULL)
    return -1;
  json_object_set_new(lb, "alertname", json_string(title));
  json_object_set_new(lb, "source", json_string("pagerduty"));
  json_object_set_new(lb, "event_type", json_string(type));
  json_object_set(lb, "incident_id", json_object_get(d, "id"));
  json_object_set_new(lb, "title", json_string(title));
  json_object_set_new(lb, "urgency", json_string(urgency));
  json_object_set_new(lb, "status", json_string(status));
  if (copy_opt(lb, "incident_number", d, "number", w, err, errlen) ||
      copy_opt(lb, "incident_key", d, "incident_key", w, err, errlen) ||
      map_refs(d, lb, err, errlen))
    return -1;
  json_t *agent, *bridge;
  if (copy_opt(an, "html_url", d, "html_url", w, err, errlen) ||
      copy_opt(an, "event_id", ev, "id", "event", err, errlen) ||
      copy_opt(an, "occurred_at", ev, "occurred_at", "event", err, errlen) ||
      join_refs(an, "assignees", d, "assignees", w, err, errlen) ||
      opt_obj(ev, "agent", "event", &agent, err, errlen) < 0 ||
      opt_obj(d, "conference_bridge", w, &bridge, err, errlen) < 0)
    return -1;
  if (agent && copy_opt(an, "agent", agent, "summary", "event.agent", err, errlen))
    return -1;
  if (bridge && copy_opt(an, "conference_url", bridge, "conference_url",
                         "event.data.conference_bridge", err, errlen))
    return -1;
  return 0;
}

/* event.data as one alert; lb and an are kept alive by root. */
static int incident_alert(const json_t *ev, const char *type, rb_alert_batch *out,
                          char *err, size_t errlen)
{
  json_t *d = json_object_get(ev, "data");
  if (!json_is_object(d))
    return rb_err(err, errlen, "event.data: %s", d ? "expected an object" : "missing");
  const char *id = need_str(d, "id", "event.data", err, errlen);
  const char *created = id ? need_str(d, "created_at", "event.data", err, errlen) : NULL;
  if (created == NULL)
    return -1;
  if (!rb_alerts_runbook_name_ok(id) || strlen(id) > 60)
    return rb_err(err, errlen,
                  "event.data.id: expected 1-60 letters, digits, '-', '_', '.'");
  if (!rb_dedup_key_part_ok(created, 64))
    return rb_err(err, errlen, "event.data.created_at: expected an ISO 8601 time");
  json_t *lb = json_object(), *an = json_object();
  json_t *fp = json_sprintf("pd-%s", id);
  json_array_append_new(out->root, lb);
  json_array_append_new(out->root, an);
  json_array_append_new(out->root, fp);
  if (lb == NULL || an == NULL || fp == NULL)
    return rb_err(err, errlen, "out of memory");
  if (map_incident(ev, type, d, lb, an, err, errlen) != 0)
    return -1;
  rb_alert *a = &out->alerts[0];
  a->status = strcmp(type, "incident.resolved") == 0 ? "resolved" : "firing";
  a->fingerprint = json_string_value(fp);
  a->alertname = json_string_value(json_object_get(lb, "alertname"));
  if (a->alertname[0] == '\0')
    a->alertname = "unnamed";
  a->starts_at = created;
  a->labels = lb;
  a->annotations = an;
  out->n = 1;
  return 0;
}

int rb_alerts_parse_pagerduty(const char *body, size_t len, rb_alert_batch *out,
                              const char **event_type, char *err, size_t errlen)
{
  memset(out, 0, sizeof *out);
  *event_type = NULL;
  json_error_t je;
  json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (doc == NULL)
    return rb_err(err, errlen, "body: invalid JSON at line %d column %d: %s", je.line,
                  je.column, je.text);
  out->root = json_pack("[o]", doc); /* the document and what is mapped from it */
  out->alerts = calloc(1, sizeof *out->alerts);
  json_t *ev = json_object_get(doc, "event");
  const char *type = NULL;
  if (out->root == NULL || out->alerts == NULL)
    rb_err(err, errlen, "out of memory");
  else if (!json_is_object(doc))
    rb_err(err, errlen, "body: expected an object");
  else if (!json_is_object(ev))
    rb_err(err, errlen, "event: %s", ev ? "expected an object" : "missing");
  else
    type = need_str(ev, "event_type", "event", err, errlen);
  if (type == NULL)
    goto fail;
  *event_type = type;
  if (strcmp(type, "incident.triggered") != 0 && strcmp(type, "incident.resolved") != 0)
    return 0; /* answered and ignored: an empty batch */
  if (incident_alert(ev, type, out, err, errlen) == 0)
    return 0;
fail:
  *event_type = NULL;
  rb_alerts_clear(out);
  return -1;
}
