/* notify.h: the listener's posts to [serve] notify's channel: an alert's run
 * can not start, or a run taken over from a dead replica stops in doubt. */
#ifndef RB_SERVE_NOTIFY_H
#define RB_SERVE_NOTIFY_H

#include <jansson.h>
#include <stddef.h>

#include "stdlib/rb_host.h"

typedef struct rb_serve_notify rb_serve_notify;

/* The channel [serve] notify names, or NULL: with *bad = 0 when none is
 * configured, with *bad = 1 and err when the setting is wrong (no such
 * section, bad type, no url). Freed with rb_serve_notify_free (NULL-safe). */
rb_serve_notify *rb_serve_notify_new(const rb_config *cfg, int *bad, char *err,
                                     size_t errlen);
void rb_serve_notify_free(rb_serve_notify *n);
/* "notify.NAME", or NULL for NULL. */
const char *rb_serve_notify_name(const rb_serve_notify *n);
/* Posts the event ev of incident (alert_not_started, or run_needs_human of
 * a taken-over run) (5 s timeout). Thread-safe. Returns 0,
 * or -1 with err (never the URL: it embeds its credential). */
int rb_serve_notify_post(const rb_serve_notify *n, const json_t *ev, const char *incident,
                         char *err, size_t errlen);

#endif
