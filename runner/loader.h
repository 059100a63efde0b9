/* loader.h: turns a runbook file into a validated rb_model while keeping its
 * Lua table (and the step functions in it) in the sandbox for the executor. */
#ifndef RB_LOADER_H
#define RB_LOADER_H

#include "runner/model.h"
#include "sandbox/sandbox.h"

/* Adds the runbook DSL (runbook, check, action, wait, approval, notify,
 * escalate, resolved, escalated, aborted) to the sandbox's globals and locks
 * them. */
void rb_loader_install_dsl(sb_state *sb);
/* Runs the runbook file and converts what it returns. On success *out is a
 * model the caller frees, and the runbook table is left in the registry
 * under "rb.runbook". Returns 0, or -1 with "file:line: ..." lines in err
 * (load errors, malformed fields). Validation is separate. */
int rb_loader_load(sb_state *sb, const char *path, rb_model **out, char *err,
                   size_t errlen);
/* Pushes the table of step `id` of the loaded runbook (raw access). */
void rb_loader_push_step(sb_state *sb, const char *id);

#endif
