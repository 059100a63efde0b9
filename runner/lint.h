/* lint.h: the static pass of `runbook check` (luacheck with a standard that
 * knows the sandbox's globals): undeclared globals, writes in checks. */
#ifndef RB_LINT_H
#define RB_LINT_H

#include <stdio.h>

/* Lints the runbook at path without running any of it. Prints each finding
 * as "path:line: warning: ..." to out. Returns the number of warnings, or
 * -1 when the pass was skipped (luacheck missing or failing; the reason is
 * printed). */
int rb_lint_runbook(const char *path, FILE *out);

#endif
