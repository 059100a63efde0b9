/* step_gate.c: the approval gate of an action or approval step: the preview
 * of what would run, the question, and the answer (scenario or human). */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "runner/approval.h"
#include "runner/base/redact.h"
#include "runner/exec.h"
#include "runner/base/util.h"

/* Runs an action's function with writes recorded instead of sent, to show
 * an approver exactly what they approve. Returns the would_run list. */
static json_t *preview_action(rb_exec *ex, const rb_step *s)
{
  json_t *ops = json_array();
  ex->collect = ops;
  rb_mode saved = ex->host.mode;
  ex->host.mode = RB_MODE_DRY_RUN;
  char err[512];
  int fatal = 0;
  if (rb_step_call(ex, s, "run", err, sizeof err, &fatal) == 0)
    lua_pop(sb_lua(ex->sb), 1);
  else
    json_array_append_new(ops, json_pack("{s:s}", "preview_error", err));
  ex->host.mode = saved;
  ex->collect = NULL;
  return ops;
}

static void skip_in_dry_run(rb_exec *ex, const rb_step *s, const char *question)
{
  rb_event_emit(
      ex, s, "skipped", -1,
      json_pack("{s:s, s:s}", "approval", question, "reason",
                "dry-run: no approval asked; the actions below are only recorded"));
  rb_console_say(ex, "      %sapproval not asked in dry-run: %s%s",
                 rb_console_col(ex, C_DIM), question, rb_console_col(ex, C_RESET));
}

/* drill: the scenario answers; no answer approves. */
static void ask_scenario(rb_exec *ex, const rb_step *s, rb_approval_decision *d)
{
  json_t *ans = rb_step_answer(ex, s);
  const json_t *a = ans ? json_object_get(ans, "approved") : NULL;
  d->approved = a == NULL || json_is_true(a);
  const char *by = ans ? json_string_value(json_object_get(ans, "by")) : NULL;
  snprintf(d->by, sizeof d->by, "%s", by ? by : "drill");
  snprintf(d->via, sizeof d->via, "%s", a ? "scenario" : "scenario default");
  json_decref(ans);
}

static int gate_stop(void *arg)
{
  char why[16];
  return rb_exec_stop_requested(arg, why, sizeof why);
}

/* The timeline hears every answer and refusal while the gate waits. */
typedef struct {
  rb_exec *ex;
  const rb_step *s;
} gate_note;

static void on_answer(void *arg, const char *event, json_t *detail)
{
  gate_note *n = arg;
  const char *who = json_string_value(json_object_get(detail, "identity"));
  const char *why = json_string_value(json_object_get(detail, "reason"));
  const char *needs = json_string_value(json_object_get(detail, "needs"));
  rb_console_say(n->ex, "      %s%s via %s: %s", who ? who : "?",
                 strcmp(event, "approval_refused") == 0             ? " refused"
                 : json_is_true(json_object_get(detail, "approve")) ? " approves"
                                                                    : " denies",
                 json_string_value(json_object_get(detail, "channel")),
                 why     ? why
                 : needs ? needs
                         : "");
  rb_event_emit(n->ex, n->s, event, -1, detail);
}

/* Who not_self refuses: the account running this process (who started or
 * resumed the run), the actor, and for a resumed run whoever started it. */
static json_t *self_list(rb_exec *ex)
{
  json_t *self = json_array();
  json_array_append_new(self, json_string(rb_approval_account()));
  const char *actors[] = {ex->o->actor, ex->o->started_by};
  for (size_t i = 0; i < 2; i++) {
    const char *a = actors[i];
    if (a == NULL)
      continue;
    json_array_append_new(self, json_string(strncmp(a, "user:", 5) == 0 ? a + 5 : a));
  }
  return self;
}

/* exec: a human answers, here or with `runbook approve`. The wait does not
 * count against the step's deadline. Returns 0, or -1 with o->error. */
static int ask_human(rb_exec *ex, const rb_step *s, const char *question,
                     const json_t *req, const char *tmo, rb_approval_decision *d,
                     rb_step_out *o)
{
  rb_console_say(ex, "    %s%s? approval needed:%s %s", rb_console_col(ex, C_BOLD),
                 rb_console_col(ex, C_YELLOW), rb_console_col(ex, C_RESET), question);
  size_t i;
  json_t *op;
  json_array_foreach(json_object_get(req, "would_run"), i, op)
  {
    rb_console_op(ex, "would_run", op);
  }
  rb_plan_gate_say(ex, req);
  int tty = isatty(0);
  char err[512];
  const json_t *pol = json_object_get(req, "policy");
  int64_t tmo_ms = json_integer_value(json_object_get(pol, "timeout_ms"));
  const char *word = json_string_value(json_object_get(pol, "confirm"));
  char needs[768], tty_hint[160];
  rb_approval_policy_needs(pol, NULL, needs, sizeof needs);
  rb_console_say(ex, "      needs %s", needs);
  snprintf(tty_hint, sizeof tty_hint,
           "\n      or type '%s' / 'no' here: ", word ? word : "yes");
  /* The request is on disk before the hint that points at it is shown. */
  if (rb_approval_post(ex->o->state_dir, ex->o->run_id, s->id, req, tmo_ms, err,
                       sizeof err) != 0)
    return rb_step_fail(o, "approval: %s", err);
  rb_console_say(
      ex, "      approve with: %s approve %s %s%s%s   (deny: --deny; %s until denied)%s",
      ex->o->approve_cmd ? ex->o->approve_cmd : "runbook", ex->o->run_id, s->id,
      word ? " --confirm " : "", word ? word : "", tmo, tty ? tty_hint : "");
  rb_step_leave(ex);
  gate_note n = {ex, s};
  int rc = rb_approval_wait_stop(ex->o->state_dir, ex->o->run_id, s->id, req, tmo_ms, tty,
                                 on_answer, &n, gate_stop, ex, d, err, sizeof err);
  rb_step_enter(ex, s, rb_step_deadline(ex, s));
  return rc != 0 ? rb_step_fail(o, "approval: %s", err) : 0;
}

/* Adds the gate's policy to req; -1 with o->error (req freed) when it
 * does not resolve, such as a `from` naming nobody. */
static int gate_policy(rb_exec *ex, const rb_step *s, json_t *req, rb_step_out *o)
{
  char err[512];
  json_t *self = self_list(ex);
  json_t *pol = rb_approval_policy_build(ex->o->config, ex->m, s, self,
                                         ex->approval_timeout_ms, err, sizeof err);
  json_decref(self);
  if (pol == NULL) {
    json_decref(req);
    return rb_step_fail(o, "approval: %s", err);
  }
  json_object_set_new(req, "policy", pol);
  return 0;
}

int rb_step_gate(rb_exec *ex, const rb_step *s, const char *question, rb_step_out *o)
{
  if (ex->o->mode == RB_MODE_DRY_RUN) {
    skip_in_dry_run(ex, s, question);
    return 1;
  }
  json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "question", question, "title", s->title,
                          "runbook", ex->m->name, "incident", ex->o->incident);
  if (s->kind == RB_STEP_ACTION && ex->o->mode == RB_MODE_EXEC)
    json_object_set_new(req, "would_run", preview_action(ex, s));
  json_t *plan = rb_plan_gate_info(ex); /* exec --plan: what the approver approves */
  if (plan)
    json_object_set_new(req, "plan", plan);
  /* The request file is read by other processes and sent on (the listener's
   * approvals endpoint, Slack): scrubbed as the timeline is. */
  rb_redact_json(req);
  char tmo[32];
  /* A drill's scenario answers: its gates need no config to resolve groups. */
  if (ex->o->mode != RB_MODE_DRILL && gate_policy(ex, s, req, o) != 0)
    return -1;
  int64_t tmo_ms =
      json_integer_value(json_object_get(json_object_get(req, "policy"), "timeout_ms"));
  rb_format_elapsed((tmo_ms ? tmo_ms : ex->approval_timeout_ms) * 1000, tmo, sizeof tmo);
  json_object_set_new(req, "timeout", json_string(tmo));
  rb_event_emit(ex, s, "approval_requested", -1, json_deep_copy(req));
  rb_approval_decision d;
  memset(&d, 0, sizeof d);
  int64_t t0 = rb_now_mono_ms();
  int rc = 0;
  if (ex->o->mode == RB_MODE_DRILL)
    ask_scenario(ex, s, &d);
  else
    rc = ask_human(ex, s, question, req, tmo, &d, o);
  json_decref(req);
  if (rc != 0)
    return -1;
  if (d.cancelled) {
    /* Nothing of the gated step ran: the run ends here, and says why. */
    rb_step_fail(o, "approval not given: the run was cancelled");
    rb_exec_stop_requested(ex, o->error, sizeof o->error);
    rb_event_emit(ex, s, "denied", rb_now_mono_ms() - t0,
                  json_pack("{s:s, s:s, s:s, s:b}", "question", question, "by", d.by,
                            "via", d.via, "cancelled", 1));
    o->outcome = RB_OUTCOME_ABORTED;
    return -1;
  }
  json_t *detail = json_pack("{s:s, s:s, s:s, s:s}", "question", question, "by", d.by,
                             "via", d.via, "comment", d.comment);
  if (d.answers)
    json_object_set_new(detail, "answers", d.answers);
  if (d.timed_out)
    json_object_set_new(detail, "timed_out", json_true());
  rb_plan_gate_note(ex, detail);
  rb_event_emit(ex, s, d.approved ? "approved" : "denied", rb_now_mono_ms() - t0, detail);
  rb_console_say(
      ex, "    %s%s%s by %s (%s)", rb_console_col(ex, d.approved ? C_GREEN : C_RED),
      d.approved ? "approved" : "denied", rb_console_col(ex, C_RESET), d.by, d.via);
  return d.approved;
}
