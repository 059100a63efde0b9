/* alerts.h: the plain-C half of the alert listener: parsing Alertmanager
 * webhook payloads, the alert-to-runbook rules, HMAC checks and dedup. */
#ifndef RB_ALERTS_H
#define RB_ALERTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* One alert of a payload. The strings and objects are borrowed from the
 * batch's root and live as long as it does. */
typedef struct {
  const char *status; /* "firing" or "resolved" */
  const char *fingerprint;
  const char *alertname; /* labels.alertname, or "unnamed" */
  const char *starts_at; /* startsAt as sent, "" when absent */
  const json_t *labels;
  const json_t *annotations;
} rb_alert;

typedef struct {
  json_t *root;
  rb_alert *alerts;
  size_t n;
  const char *group_key; /* Alertmanager's or Grafana's groupKey, or NULL */
} rb_alert_batch;

/* Parses an Alertmanager webhook (version 4) body. On error returns -1 with
 * err naming the field ("alerts[1].labels: expected an object"). The caller
 * releases a parsed batch with rb_alerts_clear (NULL-safe, idempotent). */
int rb_alerts_parse_am(const char *body, size_t len, rb_alert_batch *out, char *err,
                       size_t errlen);
/* The same for Grafana's unified alerting webhook, which is v4-shaped with
 * "version": "1" (required) and extra fields (values, valueString, URLs)
 * that rules do not read. */
int rb_alerts_parse_grafana(const char *body, size_t len, rb_alert_batch *out, char *err,
                            size_t errlen);
void rb_alerts_clear(rb_alert_batch *b);

/* The incident the run for alert i of b is recorded under, one per alert
 * group and firing (docs/serve.md, "Incidents"): "ALERT-<group>-<firing>",
 * the group the first 12 hex digits of SHA-256(groupKey) (the alert's
 * fingerprint when the batch has no groupKey), the firing the earliest
 * startsAt of the group's firing alerts in the batch (of all its alerts for
 * a resolved one: the firing that ended; the alert's own without a
 * groupKey), in UTC to the millisecond: 20261122T093608.312Z.
 * Without a readable startsAt it is "ALERT-<group>". Writes at most 92 bytes. */
void rb_alerts_incident(const rb_alert_batch *b, size_t i, char *out, size_t len);

/* "2026-11-22T09:40:10.5+01:00" as wall-clock ms; -1 when not RFC 3339. */
int64_t rb_alerts_rfc3339_ms(const char *s);

/* The rules file: a JSON array of rules, first match wins. */
typedef struct rb_rules rb_rules;

/* Loads and validates path; errors name file, rule index and field. Caller
 * frees with rb_rules_free. */
rb_rules *rb_rules_load(const char *path, char *err, size_t errlen);
/* Same from a parsed array (borrowed); origin names it in errors. */
rb_rules *rb_rules_from_json(const json_t *arr, const char *origin, char *err,
                             size_t errlen);
void rb_rules_free(rb_rules *r);
size_t rb_rules_count(const rb_rules *r);
/* Rule i's fixed runbook name (NULL when only an annotation names it) and
 * its vars (name -> template), borrowed. */
const char *rb_rules_runbook(const rb_rules *r, size_t i);
const json_t *rb_rules_vars(const rb_rules *r, size_t i);
/* The candidate at most two edits from word, or NULL. cands ends with NULL. */
const char *rb_alerts_suggest(const char *word, const char *const *cands);

typedef struct {
  char runbook[128];
  json_t *vars; /* object name -> string; owned, released by rb_alert_match_clear */
  int dry_run;
  int rule; /* index of the rule that matched */
} rb_alert_match;

/* Matches one alert. Returns 1 with *m filled when a rule matches, 0 when
 * none does, -1 with err when the rule matched but cannot be applied (an
 * annotation names an unsafe runbook). */
int rb_rules_match(const rb_rules *r, const rb_alert *a, rb_alert_match *m, char *err,
                   size_t errlen);
void rb_alert_match_clear(rb_alert_match *m);

/* Expands {{labels.X}}, {{annotations.X}}, {{fingerprint}}, {{status}} and
 * {{alertname}} in tmpl. Returns a malloc'd string (caller frees), or NULL
 * when a referenced field is absent or the template is malformed (err says
 * which). */
char *rb_alerts_template(const char *tmpl, const rb_alert *a, char *err, size_t errlen);

/* 1 when name is safe to pass to `runbook exec` as a runbook name (letters,
 * digits, '-', '_', '.', not starting with '-' or '.', no path). */
int rb_alerts_runbook_name_ok(const char *name);

/* Constant-time comparison of two strings of any length: 1 when equal. */
int rb_alerts_ct_equal(const char *a, const char *b);
/* Checks header "sha256=<hex>" against HMAC-SHA256(key, body), in constant
 * time. Returns 1 when it verifies, 0 otherwise (a NULL header included). */
int rb_alerts_hmac_ok(const char *key, const void *body, size_t len, const char *header);
/* Writes "sha256=<64 hex>" for body into out (at least 72 bytes). */
int rb_alerts_hmac_sign(const char *key, const void *body, size_t len, char *out,
                        size_t outlen);

#endif
