/* resume.c: continuing a journaled run: what to do with an action that may
 * have half-run, and the ctx its steps had stored. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/redact.h"

/* A step's policy comes from --in-doubt, or "rerun" for an idempotent one;
 * without either the operator must choose. */
const rb_step *rb_resume_settle(rb_exec *ex, const rb_step *s, char *error, size_t elen,
                                int *usage)
{
  const char *policy = ex->o->in_doubt;
  if (policy == NULL && s->idempotent)
    policy = "rerun";
  if (policy == NULL) {
    char *ops = json_dumps(ex->o->in_doubt_ops, JSON_COMPACT);
    snprintf(
        error, elen,
        "step '%s' (an action) started and never finished, so it may or may not have "
        "acted%s%s. Check the systems it touches, then resume with --in-doubt rerun (run "
        "it again) or --in-doubt skip (treat it as done); mark it idempotent = true to "
        "rerun it without asking",
        s->id, ops && strcmp(ops, "[]") != 0 ? "; writes it had started: " : "",
        ops && strcmp(ops, "[]") != 0 ? ops : "");
    free(ops);
    *usage = 1;
    return NULL;
  }
  rb_event_emit(ex, s, "note", -1,
                json_pack("{s:s, s:s, s:b}", "in_doubt", policy, "by", ex->o->actor,
                          "idempotent", s->idempotent));
  if (strcmp(policy, "rerun") == 0)
    return s;
  const char *next = s->next ? s->next : rb_step_branch(s, "default");
  const rb_step *n = next ? rb_model_find(ex->m, next) : NULL;
  if (n == NULL)
    snprintf(error, elen, "step '%s' has no next step to skip to", s->id);
  return n;
}

void rb_resume_ctx(lua_State *L, const json_t *resume_ctx)
{
  const char *rk;
  json_t *rv;
  json_object_foreach((json_t *)resume_ctx, rk, rv)
  {
    /* A value the journal had to redact is not known any more: leave it
     * unset so the step that needs it can fetch it again. */
    if (json_is_string(rv) && strcmp(json_string_value(rv), RB_REDACTED) == 0)
      continue;
    rb_json_to_lua(L, rv);
    lua_setfield(L, -2, rk);
  }
}
