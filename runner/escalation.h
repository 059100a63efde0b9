/* escalation.h: escalate steps that page: which keys each kind of
 * [escalation.NAME] target takes, and the check that every literal `to`
 * names a configured target. Sending lives in escalation.c (exec.h). */
#ifndef RB_ESCALATION_H
#define RB_ESCALATION_H

#include <stddef.h>
#include <stdio.h>

#include "runner/config.h"
#include "runner/model.h"
#include "sandbox/sandbox.h"

/* Checks every [escalation.*] section of c: a known kind, only the keys that
 * kind takes, the ones it needs. Returns 0, or -1 with err naming file:line
 * (called by rb_config_load, so a bad target stops every command). */
int rb_escalation_config_check(const rb_config *c, char *err, size_t errlen);

/* 1 when c has at least one [escalation.*] target: paging is set up. */
int rb_escalation_configured(const rb_config *c);

/* The literal `to` of each escalate step of m (loaded in sb) that names no
 * [escalation.*] section: "path:line: ..." per problem on err. Returns the
 * number of problems. When paging is not set up at all, says once on note
 * (may be NULL) that the targets were not checked, and returns 0. */
int rb_escalation_check_targets(sb_state *sb, const rb_model *m, const rb_config *c,
                                FILE *err, FILE *note);

#endif
