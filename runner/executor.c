/* executor.c: walks a runbook's step graph in the sandbox, records every
 * step, decision and operation on the timeline before moving on, and applies
 * the mode: exec runs everything behind approval gates, dry-run runs reads
 * and records writes, drill answers from the scenario. */
#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/escalation.h"
#include "runner/exec.h"
#include "runner/params.h"
#include "runner/scenario.h"
#include "runner/supervise.h"
#include "runner/base/util.h"

#define RB_MAX_TRANSITIONS 100000

static volatile sig_atomic_t g_interrupted;
static sb_state *g_sb; /* for the signal handler only */

static void on_signal(int sig)
{
  (void)sig;
  g_interrupted = 1;
  rb_stop_request();
  if (g_sb)
    sb_interrupt(g_sb);
}

int rb_exec_interrupted(void)
{
  return g_interrupted;
}

/* -- the walk ------------------------------------------------------------- */

typedef struct {
  rb_exec *ex;
  rb_outcome outcome;
  char error[6000]; /* room for an in-doubt action's list of writes */
  int invalid;
  int usage;
  int rc;
} walk_args;

static int walk_fail(walk_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int walk_fail(walk_args *a, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->error, sizeof a->error, fmt, ap);
  va_end(ap);
  a->outcome = RB_OUTCOME_FAILED;
  return -1;
}

/* The step the walk begins with: start, or where a resumed run continues. */
static const rb_step *first_step(walk_args *a)
{
  rb_exec *ex = a->ex;
  const char *first = ex->o->resume_at ? ex->o->resume_at : ex->m->start;
  const rb_step *s = rb_model_find(ex->m, first);
  if (s == NULL) {
    a->invalid = 1;
    walk_fail(a, "the runbook has no step '%s' to resume at (was it edited?)", first);
    return NULL;
  }
  if (ex->o->resume_in_doubt && s->kind == RB_STEP_ACTION) {
    s = rb_resume_settle(ex, s, a->error, sizeof a->error, &a->usage);
    if (s == NULL)
      a->outcome = RB_OUTCOME_FAILED;
  }
  return s;
}

/* Where to go after s ran with result rc. Returns 1 to go on with *next, 0
 * when the run ended well, -1 when it failed (a->error). */
static int after_step(walk_args *a, const rb_step *s, int rc, const rb_step_out *o,
                      const rb_step **next)
{
  rb_exec *ex = a->ex;
  if (ex->journal_broken)
    return walk_fail(a, "the timeline could not be written");
  if (rb_plan_diverged(ex)) /* exec --plan: nothing catches leaving the plan */
    return walk_fail(a, "step '%s': %s", s->id, rb_plan_diverged(ex));
  if (ex->unanswered[0]) { /* drill: the scenario does not cover a call */
    a->invalid = 1;
    return walk_fail(a, "step '%s': %s", s->id, ex->unanswered);
  }
  if (rc != 0) {
    if (o->outcome != RB_OUTCOME_NONE) { /* aborted by a denial */
      a->outcome = o->outcome;
      snprintf(a->error, sizeof a->error, "step '%s': %s", s->id, o->error);
      return 0;
    }
    if (s->on_error && !o->fatal) {
      *next = rb_model_find(ex->m, s->on_error);
      return 1;
    }
    a->invalid = o->invalid;
    return walk_fail(a, "step '%s': %s", s->id, o->error);
  }
  if (o->outcome != RB_OUTCOME_NONE) {
    a->outcome = o->outcome;
    return 0;
  }
  *next = rb_model_find(ex->m, o->next);
  if (*next == NULL)
    return walk_fail(a, "no step to go to after '%s'", s->id);
  return 1;
}

/* Walks from the first step to an outcome. Returns 0 or -1. */
static int walk(walk_args *a)
{
  rb_exec *ex = a->ex;
  const rb_step *s = first_step(a);
  if (s == NULL)
    return -1;
  for (int n = 0; s != NULL; n++) {
    if (n >= RB_MAX_TRANSITIONS)
      return walk_fail(a, "more than %d steps: the runbook loops", RB_MAX_TRANSITIONS);
    if (ex->run_deadline_ms > 0 && rb_now_mono_ms() > ex->run_deadline_ms)
      return walk_fail(a, "the run exceeded its time budget (core.run_timeout)");
    if (rb_exec_stop_requested(ex, a->error, sizeof a->error)) {
      /* A safe point: the last step ended and the next has not begun. */
      a->outcome = RB_OUTCOME_ABORTED;
      rb_console_say(ex, "  %s", a->error);
      return 0;
    }
    if (rb_plan_step(ex, s, a->error, sizeof a->error) != 0)
      return walk_fail(a, "%s", a->error); /* exec --plan: not the planned step */
    json_array_append_new(ex->path, json_string(s->id));
    rb_step_out o;
    int rc = rb_step_run(ex, s, &o);
    const rb_step *next = NULL;
    int go = after_step(a, s, rc, &o, &next);
    if (go <= 0)
      return go;
    s = next;
  }
  return 0;
}

/* Runs inside lua_pcall so an unexpected Lua error in host code cannot
 * reach the panic handler. */
static int walk_protected(lua_State *L)
{
  walk_args *a = lua_touserdata(L, 1);
  a->rc = walk(a);
  return 0;
}

/* Walks with SIGINT and SIGTERM interrupting the sandbox. */
static void walk_interruptible(rb_exec *ex, walk_args *wa)
{
  lua_State *L = sb_lua(ex->sb);
  memset(wa, 0, sizeof *wa);
  wa->ex = ex;
  g_sb = ex->sb;
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  lua_pushcfunction(L, walk_protected);
  lua_pushlightuserdata(L, wa);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    char tmp[64];
    wa->outcome = RB_OUTCOME_FAILED;
    snprintf(wa->error, sizeof wa->error, "internal error: %s",
             sb_safe_tostring(L, -1, tmp, sizeof tmp));
    lua_pop(L, 1);
    wa->rc = -1;
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  g_sb = NULL;
}

/* -- setting up the run --------------------------------------------------- */

/* ctx: the params, the run's identity, and whatever steps store. */
static int make_ctx(lua_State *L)
{
  json_t *params = lua_touserdata(L, 1);
  const rb_run_opts *o = lua_touserdata(L, 2);
  lua_newtable(L);
  /* A resumed run gets back what its steps had stored. */
  rb_resume_ctx(L, o->resume_ctx);
  const char *k;
  json_t *v;
  json_object_foreach(params, k, v)
  {
    rb_json_to_lua(L, v); /* typed: ctx.threshold is a number */
    lua_setfield(L, -2, k);
  }
  lua_pushstring(L, o->incident);
  lua_setfield(L, -2, "incident");
  lua_pushstring(L, o->run_id);
  lua_setfield(L, -2, "run");
  lua_pushstring(L, rb_mode_name(o->mode));
  lua_setfield(L, -2, "mode");
  lua_setfield(L, LUA_REGISTRYINDEX, "rb.ctx");
  return 0;
}

int rb_incident_path(const char *state_dir, const char *incident, char *out, size_t len)
{
  for (const char *p = incident; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
      return -1;
  if (incident[0] == '\0' || incident[0] == '.')
    return -1;
  return rb_fmt(out, len, "%s/incidents/%s.jsonl", state_dir, incident);
}

static FILE *open_log(const rb_run_opts *o)
{
  char dir[4096], path[4200];
  if (rb_fmt(dir, sizeof dir, "%s/logs", o->state_dir) || rb_mkdirs(dir) != 0 ||
      rb_fmt(path, sizeof path, "%s/%s.log", dir, o->run_id))
    return NULL;
  return fopen(path, "ae");
}

/* The step, approval and run budgets. Returns RB_EXIT_OK or RB_EXIT_INVALID. */
static int read_budgets(rb_exec *ex, int64_t *run_timeout)
{
  const rb_config *cfg = ex->o->config;
  char err[2048];
  *run_timeout = 3600000;
  if (rb_config_get_duration(cfg, "core", "step_timeout", &ex->step_timeout_ms, err,
                             sizeof err) ||
      rb_config_get_duration(cfg, "approvals", "timeout", &ex->approval_timeout_ms, err,
                             sizeof err) ||
      rb_config_get_duration(cfg, "core", "run_timeout", run_timeout, err, sizeof err)) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_INVALID;
  }
  return RB_EXIT_OK;
}

/* drill: the scenario file. */
static int read_scenario(rb_exec *ex)
{
  char err[2048];
  if (ex->o->scenario_path == NULL)
    return RB_EXIT_OK;
  ex->scenario = rb_scenario_load(ex->o->scenario_path, ex->m, err, sizeof err);
  if (ex->scenario == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_INVALID;
  }
  return RB_EXIT_OK;
}

/* --var values, then the scenario's vars, then the defaults. */
static int read_params(rb_exec *ex, json_t **params)
{
  char err[2048];
  json_t *fallback = ex->scenario ? json_object_get(ex->scenario, "vars") : NULL;
  *params = rb_params_resolve(ex->m, ex->o->vars, fallback, err, sizeof err);
  if (*params == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_USAGE;
  }
  return RB_EXIT_OK;
}

/* The incident's timeline (path into tlpath) and the run's log. */
static int open_journal(rb_exec *ex, char *tlpath, size_t tlen)
{
  const rb_run_opts *o = ex->o;
  char dir[4200], err[2048];
  if (rb_incident_path(o->state_dir, o->incident, tlpath, tlen) != 0) {
    fprintf(stderr, "runbook: invalid incident id '%s' (use letters, digits, - _ .)\n",
            o->incident);
    return RB_EXIT_USAGE;
  }
  if (rb_fmt(dir, sizeof dir, "%s/incidents", o->state_dir) || rb_mkdirs(dir) != 0) {
    fprintf(stderr, "runbook: cannot create state dir %s: %s\n", dir, strerror(errno));
    return RB_EXIT_FAILED;
  }
  /* A drill acts on nothing, so its timeline is made durable once, at the
   * end; exec and dry-run fsync every event before moving on. */
  int repaired = 0;
  ex->tl = rb_timeline_open(tlpath, o->do_fsync && o->mode != RB_MODE_DRILL, &repaired,
                            err, sizeof err);
  if (ex->tl == NULL) {
    fprintf(stderr, "runbook: timeline: %s\n", err);
    return RB_EXIT_FAILED;
  }
  if (repaired)
    fprintf(stderr,
            "runbook: warning: %s ended in a torn line (a crash); it was cut off\n",
            tlpath);
  ex->log = open_log(o);
  return RB_EXIT_OK;
}

/* Builds ctx, starts the clocks and records the run's started event. */
static int start_run(rb_exec *ex, json_t *params, json_t *forced, int64_t run_timeout)
{
  const rb_run_opts *o = ex->o;
  if (rb_plan_begin(ex) != 0)
    return RB_EXIT_FAILED;
  ex->path = o->resume_path ? json_deep_copy(o->resume_path) : json_array();
  lua_State *L = sb_lua(ex->sb);
  lua_pushcfunction(L, make_ctx);
  lua_pushlightuserdata(L, params);
  lua_pushlightuserdata(L, (void *)o);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "runbook: cannot build ctx: out of memory\n");
    lua_pop(L, 1);
    return RB_EXIT_FAILED;
  }
  ex->run_start_us = rb_now_mono_us();
  ex->run_deadline_ms = rb_now_mono_ms() + run_timeout;
  json_t *started = json_pack("{s:s, s:s, s:O}", "file", o->runbook_path, "title",
                              ex->m->title, "params", params);
  if (o->scenario_name)
    json_object_set_new(started, "scenario", json_string(o->scenario_name));
  if (forced)
    json_object_set(started, "forced", forced);
  if (o->resume_at || o->resumed) {
    json_object_set_new(started, "resumed_at",
                        json_string(o->resume_at ? o->resume_at : ex->m->start));
    if (o->resume_note)
      json_object_set_new(started, "resume", json_string(o->resume_note));
  }
  rb_event_emit(ex, NULL, "started", -1, started);
  rb_console_banner(ex);
  return RB_EXIT_OK;
}

/* -- the end of the run --------------------------------------------------- */

static int exit_for(rb_outcome outcome)
{
  switch (outcome) {
  case RB_OUTCOME_RESOLVED:
    return RB_EXIT_OK;
  case RB_OUTCOME_ESCALATED:
    return RB_EXIT_ESCALATED;
  case RB_OUTCOME_ABORTED:
    return RB_EXIT_ABORTED;
  default:
    return RB_EXIT_FAILED;
  }
}

/* drill: compares the walk with the scenario's "expect". Returns 1 on a
 * match (or nothing expected). */
static int check_expect(rb_exec *ex, rb_outcome outcome)
{
  const json_t *e = json_object_get(ex->scenario, "expect");
  if (e == NULL)
    return 1;
  const char *want = json_string_value(json_object_get(e, "outcome"));
  const char *got = rb_outcome_name(outcome);
  const json_t *path = json_object_get(e, "path");
  int ok = 1;
  if (want && strcmp(want, got) != 0) {
    fprintf(stderr, "drill: expected outcome '%s', got '%s'\n", want, got);
    ok = 0;
  }
  if (path && !json_equal(path, ex->path)) {
    char *w = json_dumps(path, JSON_COMPACT), *g = json_dumps(ex->path, JSON_COMPACT);
    fprintf(stderr, "drill: expected path %s\n       got path      %s\n", w ? w : "?",
            g ? g : "?");
    free(w);
    free(g);
    ok = 0;
  }
  rb_event_emit(ex, NULL, "note", -1,
                json_pack("{s:s, s:b, s:s}", "drill_expectation", ok ? "met" : "not met",
                          "ok", ok, "message",
                          ok ? "the drill followed the scenario's expected path"
                             : "the drill left the scenario's expected path"));
  return ok;
}

/* Records the run's end and prints the summary. Returns the exit code. */
static int finish_run(rb_exec *ex, const walk_args *wa, const char *tlpath)
{
  int64_t total_ms = (rb_now_mono_us() - ex->run_start_us) / 1000;
  json_t *fin =
      json_pack("{s:s, s:O}", "outcome", rb_outcome_name(wa->outcome), "path", ex->path);
  if (wa->error[0])
    json_object_set_new(fin, "error", json_string(wa->error));
  if (ex->would_fail != NULL)
    json_object_set(fin, "would_fail", ex->would_fail);
  if (ex->page_failures != NULL) /* the human must know nobody was paged */
    json_object_set(fin, "pages_failed", ex->page_failures);
  ex->cur = NULL;
  rb_plan_finish(ex, wa->rc == 0, wa->outcome, fin);
  json_t *plan = json_incref(json_object_get(fin, "plan"));
  rb_event_emit(ex, NULL, wa->rc == 0 ? "finished" : "failed", total_ms, fin);
  int code = wa->usage     ? RB_EXIT_USAGE
             : wa->invalid ? RB_EXIT_INVALID
                           : exit_for(wa->outcome);
  /* A drill with an expect is a test: met passes (0), missed fails (6). */
  if (ex->o->mode == RB_MODE_DRILL && code != RB_EXIT_INVALID &&
      json_object_get(ex->scenario, "expect"))
    code = check_expect(ex, wa->outcome) ? RB_EXIT_OK : RB_EXIT_MISMATCH;
  /* A write that would fail outranks how the walk ended: automation gates
   * a real run on the dry-run's 0. Usage and invalid mean no plan at all. */
  if (ex->o->mode == RB_MODE_DRY_RUN && ex->would_fail != NULL && code != RB_EXIT_USAGE &&
      code != RB_EXIT_INVALID)
    code = RB_EXIT_WOULD_FAIL;
  if (rb_record_write(ex, wa->outcome) != 0 && code == RB_EXIT_OK)
    code = RB_EXIT_FAILED;
  rb_console_summary(ex, wa->outcome, wa->error, tlpath);
  size_t i;
  json_t *f;
  json_array_foreach(ex->page_failures, i, f)
  {
    fprintf(stderr, "runbook: %s\n", json_string_value(f));
  }
  code = rb_plan_exit(ex, plan, code);
  json_decref(plan);
  return code;
}

static void exec_init(rb_exec *ex, const rb_run_opts *o)
{
  memset(ex, 0, sizeof *ex);
  ex->o = o;
  ex->out = stdout;
  ex->host.mode = o->mode;
  ex->host.config = o->config;
  ex->host.incident = o->incident;
  ex->host.run_id = o->run_id;
  ex->host.emit = rb_event_host_emit;
  ex->host.progress = rb_console_progress;
  ex->host.status = rb_console_status;
  ex->host.priv = ex;
  if (o->mode == RB_MODE_DRY_RUN && o->record_path != NULL)
    ex->record = json_object();
}

static void exec_free(rb_exec *ex)
{
  json_decref(ex->scenario);
  json_decref(ex->path);
  json_decref(ex->last_ctx);
  json_decref(ex->would_fail);
  json_decref(ex->pages);
  json_decref(ex->page_failures);
  rb_plan_free(ex->plan);
  json_decref(ex->record);
  if (ex->log)
    fclose(ex->log);
  rb_timeline_free(ex->tl);
  rb_store_release(ex->o->store, ex->exec_lease);
  rb_model_free(ex->m);
  sb_free(ex->sb);
}

int rb_run_execute(const rb_run_opts *o)
{
  rb_exec ex;
  exec_init(&ex, o);
  int code = rb_runbook_load(o->runbook_path, o->config, &ex.host,
                             rb_console_sandbox_print, &ex, &ex.sb, &ex.m, o->report_fd);
  if (code != RB_EXIT_OK)
    return code;
  rb_supervise_loaded(o->report_fd, ex.m->name);
  /* An unknown literal target stops exec and dry-run before anything acts. */
  if (o->mode != RB_MODE_DRILL &&
      rb_escalation_check_targets(ex.sb, ex.m, o->config, stderr, NULL) > 0) {
    exec_free(&ex);
    return RB_EXIT_INVALID;
  }
  json_t *params = NULL, *forced = NULL;
  int64_t run_timeout = 0;
  char tlpath[4300];
  if ((code = read_scenario(&ex)) != RB_EXIT_OK ||
      (code = read_budgets(&ex, &run_timeout)) != RB_EXIT_OK ||
      (code = read_params(&ex, &params)) != RB_EXIT_OK ||
      (code = rb_exec_lock(&ex, params, &forced)) != RB_EXIT_OK ||
      (code = open_journal(&ex, tlpath, sizeof tlpath)) != RB_EXIT_OK ||
      (code = start_run(&ex, params, forced, run_timeout)) != RB_EXIT_OK)
    goto out;
  if (o->resumed)
    rb_escalation_recover(&ex, tlpath);
  walk_args wa;
  walk_interruptible(&ex, &wa);
  code = finish_run(&ex, &wa, tlpath);
out:
  json_decref(params);
  json_decref(forced);
  exec_free(&ex);
  return code;
}
