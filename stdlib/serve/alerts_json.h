/* alerts_json.h: the generic JSON alert route, POST /alerts/json/NAME, whose
 * fields are mapped to alerts by JSON pointers in [serve.json.NAME]. */
#ifndef RB_ALERTS_JSON_H
#define RB_ALERTS_JSON_H

#include "stdlib/serve/alerts.h"
#include "stdlib/rb_host.h"

typedef struct rb_json_route rb_json_route;

/* Reads section ("serve.json.NAME"): alerts (pointer to the array, "" for a
 * body that is one alert), fingerprint (required), status and resolved,
 * starts_at, labels and annotations ("name=/pointer, ..."). NULL with err
 * naming the section and key. Freed with rb_json_route_free (NULL-safe). */
rb_json_route *rb_json_route_new(const rb_config *cfg, const char *section, char *err,
                                 size_t errlen);
void rb_json_route_free(rb_json_route *r);
/* NAME, the last part of the section. */
const char *rb_json_route_name(const rb_json_route *r);
/* Parses body into alerts as the route maps them. A mapped field that is
 * missing is an error naming the alert, the pointer and what it maps to
 * ("alerts[0]: /tags/service (service): missing"). */
int rb_alerts_parse_json(const rb_json_route *r, const char *body, size_t len,
                         rb_alert_batch *out, char *err, size_t errlen);

#endif
