/* timeline_mirror.h: a run started by a `runbook serve` on a shared store
 * hands every timeline append to the listener (fd RB_TIMELINE_MIRROR_FD)
 * and waits until the store holds it, so another replica can resume it. */
#ifndef RB_TIMELINE_MIRROR_H
#define RB_TIMELINE_MIRROR_H

#include <stddef.h>

/* Sends the bytes just appended to the timeline at path and waits (up to
 * 10 s) for the listener's acknowledgement. 0 when acknowledged or when no
 * mirror is set up; -1 with err otherwise: the append must fail, as the
 * run may not go on with an event the store does not have. */
int rb_timeline_mirror(const char *path, const char *lines, size_t len, char *err,
                       size_t errlen);

#endif
