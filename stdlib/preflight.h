/* preflight.h: the shape of a dry-run's preflight result, shared by the ssh,
 * http and cmd modules (header-only: the plugins link no runner code). */
#ifndef RB_PREFLIGHT_H
#define RB_PREFLIGHT_H

#include <jansson.h>
#include <stddef.h>

/* The "preflight" member of a would_run detail: {"ok": true, "target": t} or
 * {"ok": false, "target": t, "reason": r}. The runner collects the failed
 * ones for the plan summary and exit code 7. Caller owns the result. */
static inline json_t *rb_preflight_json(const char *target, const char *reason)
{
  json_t *pf = json_pack("{s:b, s:s}", "ok", reason == NULL, "target", target);
  if (pf != NULL && reason != NULL)
    json_object_set_new(pf, "reason", json_string(reason));
  return pf;
}

/* cmd.run's preflight (in the binary, stdlib/preflight.c): prog as execvp
 * would find it, on $PATH or, with a '/', relative to cwd (NULL: ours).
 * Returns NULL when it is an executable file, else writes a short reason
 * ("'kubctl': command not found on PATH") into buf and returns buf. */
const char *rb_preflight_command(const char *prog, const char *cwd, char *buf,
                                 size_t len);

#endif
