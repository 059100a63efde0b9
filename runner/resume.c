/* resume.c: continuing a journaled run: what to do with an action that may
 * have half-run, and the ctx its steps had stored. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/base/redact.h"

/* A step's policy comes from --in-doubt, or "rerun" for an idempotent one;
 * without either the operator must choose. */
const rb_step *rb_resume_settle(rb_exec *ex, const rb_step *s, char *error, size_t elen,
                                int *usage)
{
  const char *policy = ex->o->in_doubt;
  if (policy == NULL && s->idempotent)
    policy = "rerun";
  if (policy == NULL) {
    char ops[4096] = "";
    rb_resume_intents(ex->o->in_doubt_ops, ops, sizeof ops);
    snprintf(
        error, elen,
        "step '%s' (an action) started and never finished, so it may or may not have "
        "acted. Writes it had started (each journaled before it was sent):\n%s"
        "Check the systems it touches, then resume with --in-doubt rerun (run it again) "
        "or --in-doubt skip (treat it as done); mark it idempotent = true to rerun it "
        "without asking",
        s->id, ops);
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

/* One line per journaled write: what was to be sent, and whether it is
 * known to have completed. */
static void intent_line(const json_t *o, char *line, size_t len)
{
  const char *op = json_string_value(json_object_get(o, "op"));
  const char *ended = json_string_value(json_object_get(o, "ended"));
  char state[64];
  snprintf(state, sizeof state, "%s", ended ? ended : "IN DOUBT: no result recorded");
  if (op && strcmp(op, "http") == 0) {
    snprintf(line, len, "  http %s %s body sha256 %s (%lld bytes) [%s]\n",
             json_string_value(json_object_get(o, "method")),
             json_string_value(json_object_get(o, "url")),
             json_string_value(json_object_get(o, "body_sha256")),
             (long long)json_integer_value(json_object_get(o, "body_bytes")), state);
    return;
  }
  if (op && strcmp(op, "ssh") == 0) {
    char *hosts = json_dumps(json_object_get(o, "hosts"), JSON_COMPACT);
    snprintf(line, len, "  ssh %s %s: %s [%s]\n",
             json_string_value(json_object_get(o, "target")), hosts ? hosts : "?",
             json_string_value(json_object_get(o, "command")), state);
    free(hosts);
    return;
  }
  json_t *copy = json_deep_copy(o);
  json_object_del(copy, "ended");
  char *txt = json_dumps(copy, JSON_COMPACT);
  json_decref(copy);
  snprintf(line, len, "  %s [%s]\n", txt ? txt : "?", state);
  free(txt);
}

void rb_resume_intents(const json_t *ops, char *out, size_t len)
{
  size_t i, used = 0;
  json_t *o;
  out[0] = '\0';
  json_array_foreach((json_t *)ops, i, o)
  {
    char line[2048];
    intent_line(o, line, sizeof line);
    if (used + strlen(line) + 1 >= len)
      break;
    memcpy(out + used, line, strlen(line) + 1);
    used += strlen(line);
  }
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
    rb_json_to_lua_tagged(L, rv); /* NaN and infinities come back as numbers */
    lua_setfield(L, -2, rk);
  }
}
