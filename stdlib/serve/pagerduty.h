/* pagerduty.h: the PagerDuty v3 webhook receiver, POST /alerts/pagerduty:
 * X-PagerDuty-Signature checks and incident events mapped to alerts. */
#ifndef RB_SERVE_PAGERDUTY_H
#define RB_SERVE_PAGERDUTY_H

#include <stddef.h>

#include "stdlib/serve/alerts.h"

#define RB_PD_MAX_SECRETS 8

/* The signing secrets of [serve] pagerduty_secret: one or more, separated by
 * commas or white space (the old and the new one during a rotation). */
typedef struct rb_pd_secrets rb_pd_secrets;

/* Splits value into secrets, each at least 16 characters, at most
 * RB_PD_MAX_SECRETS. NULL with err. Freed (wiped) by rb_pd_secrets_free. */
rb_pd_secrets *rb_pd_secrets_parse(const char *value, char *err, size_t errlen);
void rb_pd_secrets_free(rb_pd_secrets *s);
/* Secret i, or NULL past the last (and for NULL s). */
const char *rb_pd_secret_at(const rb_pd_secrets *s, size_t i);
/* 1 when one of the secrets equals other (another credential reused). */
int rb_pd_secrets_contains(const rb_pd_secrets *s, const char *other);
/* 1 when any v1=<hex> signature of header (comma-separated) is the
 * HMAC-SHA256 of body under any of the secrets. Every pair is compared in
 * constant time, whichever matches. 0 otherwise, also for a NULL header. */
int rb_pd_verify(const rb_pd_secrets *s, const void *body, size_t len,
                 const char *header);

/* Parses a v3 webhook body. incident.triggered is a firing alert,
 * incident.resolved a resolved one, both from event.data (an incident);
 * any other event type gives an empty batch. *event_type is borrowed from
 * the batch. A missing or mistyped field is an error naming it
 * ("event.data.service.summary: missing"). */
int rb_alerts_parse_pagerduty(const char *body, size_t len, rb_alert_batch *out,
                              const char **event_type, char *err, size_t errlen);

#endif
