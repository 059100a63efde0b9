/* cmd_env.h: the environment a local command runs with: a minimal base
 * (PATH, HOME, LANG, LC_*, TZ and the names [cmd] env_allow lists) plus
 * what the runbook passes explicitly. Nothing else of the executor's
 * environment, so a secret named by a config `*_env` key never leaks. */
#ifndef RB_CMD_ENV_H
#define RB_CMD_ENV_H

#include <stddef.h>

#include "stdlib/rb_host.h"

/* "NAME=value" strings, NULL-terminated in vars[n]; every string is wiped
 * when freed, as an explicit variable may hold a secret. */
typedef struct {
  char **vars;
  size_t n, cap;
} rb_cmd_env;

/* 1 when s is a portable variable name ([A-Za-z_][A-Za-z0-9_]*). */
int rb_cmd_env_name_ok(const char *s);
/* Fills e (zeroed by the caller) with the base taken from envp: the fixed
 * names and those of [cmd] env_allow. Refuses (-1 with err) a malformed
 * allow list and an allowed name that a config secret names (`token_env =
 * NAME` in any section): that variable holds a credential, which reaches
 * a command only when a runbook passes it explicitly. */
int rb_cmd_env_base(rb_cmd_env *e, const rb_config *c, char *const *envp, char *err,
                    size_t errlen);
/* Sets name=value, replacing a variable of that name. Returns 0 or -1 (out
 * of memory). */
int rb_cmd_env_set(rb_cmd_env *e, const char *name, const char *value);
/* Wipes and frees; NULL-safe, and e may be zeroed or half filled. */
void rb_cmd_env_free(rb_cmd_env *e);

#endif
