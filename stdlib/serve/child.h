/* child.h: what the alert listener checks before a run starts (the
 * rule's runbook loads, its parameters get values) and the children's env. */
#ifndef RB_SERVE_CHILD_H
#define RB_SERVE_CHILD_H

#include <jansson.h>
#include <stddef.h>

/* The environment for the listener's children: the listener's own minus the
 * variables named in drop (NULL-terminated; NULL entries are skipped), so
 * the listener's credentials never reach a run. A NULL-terminated array the
 * caller frees with free() (the strings are borrowed from environ). */
char **rb_serve_child_env(const char *const *drop, size_t ndrop);

/* Runs `runbook [--config F] --state-dir D show --format json NAME` (the
 * normal runbook-opening path, in a child so the listener runs no runbook
 * code) and returns what it printed (docs/show.schema.json), of which the
 * listener reads runbook, file and params: [{name, required, type,
 * default?}]. NULL with err (the child's first problem)
 * when the runbook is missing or does not load. */
json_t *rb_serve_inspect(const char *state_dir, const char *config_file,
                         char *const *envp, const char *name, char *err, size_t errlen);

/* Checks a rule's vars against the runbook: every var names a declared
 * parameter, every required parameter without a default is mapped.
 * Returns 0 or -1 with err. */
int rb_serve_check_rule(const json_t *info, const json_t *vars, char *err, size_t errlen);

/* Checks, when an alert arrives, that the run can start: the runbook's
 * file is still there and every mapped parameter got a non-empty value and
 * every required one a value. values: name -> string. Returns 0, or -1 with
 * err and *reason ("runbook_missing", "param_empty", "invalid"). */
int rb_serve_check_start(const json_t *info, const json_t *values, char *err,
                         size_t errlen, const char **reason);

/* Appends ev (not stolen) to <state_dir>/incidents/<incident>.jsonl, the
 * timeline the alert's run would have written. Returns 0 or -1 with err. */
int rb_serve_note(const char *state_dir, const char *incident, json_t *ev, char *err,
                  size_t errlen);

#endif
