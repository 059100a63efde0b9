/* ownership.c: the executor's side of the run store: the exec lock on
 * (runbook, incident or a parameter) and the stop requests it obeys at safe
 * points (a signal, `runbook cancel`). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/base/util.h"

/* core.exec_lock: "incident" (the default) or "param:NAME" for a parameter
 * the runbook declares. Anything else is refused: a lock that silently
 * means something else protects nothing. Fills name and value. */
static int lock_scope(rb_exec *ex, const json_t *params, char *name, size_t nlen,
                      char *value, size_t vlen)
{
  const char *conf = rb_config_get_string(ex->o->config, "core", "exec_lock");
  if (conf == NULL || strcmp(conf, "incident") == 0) {
    snprintf(name, nlen, "incident");
    snprintf(value, vlen, "%s", ex->o->incident);
    return 0;
  }
  if (strncmp(conf, "param:", 6) != 0 || conf[6] == '\0') {
    fprintf(stderr,
            "runbook: core.exec_lock = '%s': expected 'incident' or 'param:NAME'\n",
            conf);
    return RB_EXIT_INVALID;
  }
  const char *v = json_string_value(json_object_get(params, conf + 6));
  if (v == NULL) {
    fprintf(stderr,
            "runbook: core.exec_lock = '%s': runbook '%s' has no parameter '%s' to lock "
            "on\n",
            conf, ex->m->name, conf + 6);
    return RB_EXIT_INVALID;
  }
  snprintf(name, nlen, "%s", conf + 6);
  snprintf(value, vlen, "%s", v);
  return 0;
}

static json_t *owner_to_json(const rb_owner *h)
{
  return json_pack("{s:I, s:s, s:s, s:s, s:s}", "pid", (json_int_t)h->pid, "user",
                   h->user, "host", h->host, "since", h->since, "run", h->run);
}

int rb_exec_lock(rb_exec *ex, const json_t *params, json_t **forced)
{
  *forced = NULL;
  if (ex->o->mode != RB_MODE_EXEC || ex->o->store == NULL)
    return RB_EXIT_OK; /* dry-runs and drills act on nothing */
  char name[128], value[512], key[1024], err[512];
  int code = lock_scope(ex, params, name, sizeof name, value, sizeof value);
  if (code != 0)
    return code;
  if (rb_store_exec_key(ex->m->name, name, value, key, sizeof key) != 0) {
    fprintf(stderr, "runbook: exec lock: %s=%s is too long\n", name, value);
    return RB_EXIT_INVALID;
  }
  rb_owner me, holder;
  rb_owner_self(&me, ex->o->run_id, ex->o->resumed ? "resume" : "exec");
  int rc =
      rb_store_acquire(ex->o->store, key, &me, &ex->exec_lease, &holder, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "runbook: exec lock: %s\n", err);
    return RB_EXIT_FAILED;
  }
  if (rc == 0)
    return RB_EXIT_OK;
  char who[768];
  rb_owner_describe(&holder, who, sizeof who);
  if (!ex->o->force) {
    fprintf(stderr,
            "runbook: runbook '%s' for %s '%s' is already being run by %s; refusing "
            "a second run (wait, `runbook cancel %s`, or --force)\n",
            ex->m->name, name, value, who, holder.run);
    return RB_EXIT_BUSY;
  }
  fprintf(stderr, "runbook: warning: --force: running while %s holds the lock on %s\n",
          who, key);
  *forced = json_pack("{s:s, s:o}", "lock", key, "holder", owner_to_json(&holder));
  return RB_EXIT_OK;
}

int rb_exec_stop_requested(rb_exec *ex, char *why, size_t len)
{
  if (rb_exec_interrupted()) {
    snprintf(why, len, "cancelled by the operator (signal)");
    return 1;
  }
  char by[128] = "", reason[512] = "";
  if (ex->o->store == NULL || !rb_store_cancelled(ex->o->store, ex->o->run_id, by,
                                                  sizeof by, reason, sizeof reason))
    return 0;
  snprintf(why, len, "cancelled by the operator (%s%s%s)", by, reason[0] ? ": " : "",
           reason);
  return 1;
}
