/* resolved.h: a resolved notification, from any receiver, noted on the
 * timeline of the incident its firing opened. */
#ifndef RB_SERVE_RESOLVED_H
#define RB_SERVE_RESOLVED_H

#include <stddef.h>

#include "stdlib/serve/alerts.h"

/* Appends an alert_resolved event (actor alert:<alertname>; detail with
 * fingerprint, startsAt, the route it came by) to the timeline of incident
 * (rb_alerts_incident: the one its firing opened) when that timeline exists.
 * Returns 1 when noted, 0 when no run was ever started for it, -1 with err. */
int rb_serve_note_resolved(const char *state_dir, const rb_alert *a, const char *incident,
                           const char *route, char *err, size_t errlen);

#endif
