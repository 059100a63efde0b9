/* postmortem.h: the postmortem document for an incident, in markdown, with
 * the facts from its timeline filled in and prompts for what only people know. */
#ifndef RB_POSTMORTEM_H
#define RB_POSTMORTEM_H

#include <stddef.h>
#include <stdio.h>

/* Writes the postmortem of the incident whose timeline is at path. Returns 0,
 * or -1 with err (unreadable timeline, no events). */
int rb_postmortem_write(const char *path, const char *incident, FILE *out, char *err,
                        size_t errlen);

#endif
