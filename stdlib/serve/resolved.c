/* resolved.c: resolved notifications noted on the timeline of the run
 * their alert started, whichever receiver brought them. */
#include "stdlib/serve/resolved.h"

#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

#include "runner/base/util.h"
#include "stdlib/serve/child.h"

int rb_serve_note_resolved(const char *state_dir, const rb_alert *a, const char *incident,
                           const char *route, char *err, size_t errlen)
{
  char path[4400], actor[256];
  struct stat st;
  snprintf(path, sizeof path, "%s/incidents/%s.jsonl", state_dir, incident);
  /* a resolved alert that never started a run has no timeline to join, and
   * must not create one (it may match no rule at all) */
  if (stat(path, &st) != 0)
    return 0;
  snprintf(actor, sizeof actor, "alert:%.200s", a->alertname);
  json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "event", "alert_resolved",
                         "actor", actor, "detail", "fingerprint", a->fingerprint,
                         "startsAt", a->starts_at, "via", route);
  if (ev == NULL)
    return rb_err(err, errlen, "out of memory");
  int rc = rb_serve_note(state_dir, incident, ev, err, errlen);
  json_decref(ev);
  return rc == 0 ? 1 : -1;
}
