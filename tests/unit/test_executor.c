/* test_executor.c: the step kinds driven through rb_run_execute on small
 * runbooks with no network: branches, failures and on_error, waits, the
 * approval gate in dry-run, and what lands on the timeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/config.h"
#include "runner/run.h"

static char g_dir[512];
static int g_seq;

static int setup(void **state)
{
  (void)state;
  const char *base = getenv("RB_TEST_TMP");
  snprintf(g_dir, sizeof g_dir, "%s/executor-XXXXXX", base ? base : "/tmp");
  return mkdtemp(g_dir) ? 0 : -1;
}

/* Writes a runbook file whose steps table is `steps`. */
static void write_runbook(char *path, size_t len, const char *steps)
{
  snprintf(path, len, "%s/rb-%d.lua", g_dir, ++g_seq);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "return runbook { name = \"t\", title = \"T\", start = \"first\",\n"
          "  params = { p = { default = \"v\" } },\n  steps = {\n%s\n  } }\n",
          steps);
  fclose(f);
}

/* Runs the runbook in mode; returns the exit code and the timeline events. */
static int run(const char *steps, rb_mode mode, json_t **events)
{
  char path[600], incident[64], tl[700];
  write_runbook(path, sizeof path, steps);
  snprintf(incident, sizeof incident, "inc-%d", g_seq);
  rb_config *cfg = rb_config_new_empty();
  rb_run_opts o;
  memset(&o, 0, sizeof o);
  o.runbook_path = path;
  o.mode = mode;
  o.incident = incident;
  o.run_id = incident;
  o.actor = "user:test";
  o.state_dir = g_dir;
  o.vars = json_object();
  o.config = cfg;
  o.quiet = 1;
  o.report_fd = -1;
  int code = rb_run_execute(&o);
  json_decref(o.vars);
  rb_config_free(cfg);
  assert_int_equal(rb_incident_path(g_dir, incident, tl, sizeof tl), 0);
  *events = json_array();
  FILE *f = fopen(tl, "r");
  char line[65536];
  while (f && fgets(line, sizeof line, f))
    json_array_append_new(*events, json_loads(line, 0, NULL));
  if (f)
    fclose(f);
  return code;
}

/* The first event of step with that event name, or NULL. */
static json_t *find(json_t *events, const char *step, const char *event)
{
  size_t i;
  json_t *ev;
  json_array_foreach(events, i, ev)
  {
    const char *s = json_string_value(json_object_get(ev, "step"));
    const char *e = json_string_value(json_object_get(ev, "event"));
    if (((step == NULL && s == NULL) || (step && s && strcmp(s, step) == 0)) &&
        strcmp(e, event) == 0)
      return ev;
  }
  return NULL;
}

static const char *detail_str(json_t *ev, const char *key)
{
  return json_string_value(json_object_get(json_object_get(ev, "detail"), key));
}

static void test_check_branches_and_action_result_is_recorded(void **state)
{
  (void)state;
  json_t *evs;
  int code =
      run("first = check { title = 'Q?', run = function(ctx) return ctx.p == 'v' end,\n"
          "  on = { [true] = 'act', [false] = 'give_up' } },\n"
          "act = action { title = 'A', run = function(ctx) ctx.n = 7\n"
          "  return { ok = true } end, next = 'done' },\n"
          "give_up = escalated { title = 'E' },\n"
          "done = resolved { title = 'R' },",
          RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_OK);
  json_t *d = find(evs, "first", "decision");
  assert_non_null(d);
  assert_string_equal(detail_str(d, "branch"), "act");
  json_t *a = find(evs, "act", "finished");
  assert_non_null(a);
  assert_true(json_is_true(
      json_object_get(json_object_get(json_object_get(a, "detail"), "result"), "ok")));
  /* the ctx the step stored is journaled for a resume */
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_object_get(a, "detail"), "ctx"), "n")),
                   7);
  json_t *fin = find(evs, NULL, "finished");
  assert_string_equal(detail_str(fin, "outcome"), "resolved");
  json_decref(evs);
}

static void test_failure_goes_to_on_error(void **state)
{
  (void)state;
  json_t *evs;
  int code = run("first = action { title = 'A', run = function() error('boom') end,\n"
                 "  next = 'done', on_error = 'page' },\n"
                 "page = escalated { title = 'E' },\n"
                 "done = resolved { title = 'R' },",
                 RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_ESCALATED);
  json_t *f = find(evs, "first", "failed");
  assert_non_null(f);
  assert_non_null(strstr(detail_str(f, "error"), "boom"));
  assert_string_equal(detail_str(f, "on_error"), "page");
  json_decref(evs);
}

static void test_failure_without_on_error_fails_the_run(void **state)
{
  (void)state;
  json_t *evs;
  int code = run("first = check { title = 'Q?', run = function() return nil end,\n"
                 "  on = { [true] = 'done', [false] = 'done' } },\n"
                 "done = resolved { title = 'R' },",
                 RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_FAILED);
  json_t *f = find(evs, NULL, "failed");
  assert_non_null(f);
  assert_string_equal(detail_str(f, "outcome"), "failed");
  assert_non_null(strstr(detail_str(f, "error"), "check returned nil"));
  json_decref(evs);
}

static void test_check_value_without_branch_names_the_branches(void **state)
{
  (void)state;
  json_t *evs;
  int code = run("first = check { title = 'Q?', run = function() return 'maybe' end,\n"
                 "  on = { [true] = 'done', [false] = 'done' } },\n"
                 "done = resolved { title = 'R' },",
                 RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_FAILED);
  json_t *f = find(evs, "first", "failed");
  assert_non_null(strstr(detail_str(f, "error"), "maybe, which has no branch"));
  json_decref(evs);
}

static void test_wait_polls_until_the_condition_holds(void **state)
{
  (void)state;
  json_t *evs;
  int code =
      run("first = wait { title = 'W', every = '10ms', timeout = '5s',\n"
          "  until_ = function(ctx) ctx.k = (ctx.k or 0) + 1 return ctx.k >= 3 end,\n"
          "  on = { [true] = 'done', [false] = 'late' } },\n"
          "late = escalated { title = 'E' },\n"
          "done = resolved { title = 'R' },",
          RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_OK);
  json_t *d = find(evs, "first", "decision");
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(d, "detail"), "polls")), 3);
  json_decref(evs);
}

static void test_wait_that_never_holds_takes_the_false_branch(void **state)
{
  (void)state;
  json_t *evs;
  int code = run("first = wait { title = 'W', every = '10ms', timeout = '100ms',\n"
                 "  until_ = function() return false end,\n"
                 "  on = { [true] = 'done', [false] = 'late' } },\n"
                 "late = escalated { title = 'E' },\n"
                 "done = resolved { title = 'R' },",
                 RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_ESCALATED);
  json_t *d = find(evs, "first", "decision");
  assert_true(json_is_true(json_object_get(json_object_get(d, "detail"), "timed_out")));
  json_decref(evs);
}

static void test_dry_run_skips_the_approval_and_marks_the_action_simulated(void **state)
{
  (void)state;
  json_t *evs;
  int code = run("first = action { title = 'A', approval = true,\n"
                 "  run = function() return 1 end, next = 'done' },\n"
                 "done = resolved { title = 'R' },",
                 RB_MODE_DRY_RUN, &evs);
  assert_int_equal(code, RB_EXIT_OK);
  assert_non_null(find(evs, "first", "skipped"));
  json_t *f = find(evs, "first", "finished");
  assert_true(json_is_true(json_object_get(json_object_get(f, "detail"), "simulated")));
  json_decref(evs);
}

static void test_notify_without_channels_records_the_update(void **state)
{
  (void)state;
  json_t *evs;
  int code = run(
      "first = notify { title = 'N', message = function(ctx) return 'on ' .. ctx.p end,\n"
      "  next = 'done' },\n"
      "done = resolved { title = 'R' },",
      RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_OK);
  json_t *f = find(evs, "first", "finished");
  assert_string_equal(detail_str(f, "message"), "on v");
  assert_string_equal(detail_str(f, "phase"), "Investigating");
  json_decref(evs);
}

static void test_escalate_without_next_ends_escalated(void **state)
{
  (void)state;
  json_t *evs;
  int code = run("first = escalate { title = 'Page', to = 'dba' },", RB_MODE_EXEC, &evs);
  assert_int_equal(code, RB_EXIT_ESCALATED);
  json_t *f = find(evs, NULL, "finished");
  assert_string_equal(detail_str(f, "outcome"), "escalated");
  json_decref(evs);
}

static void test_invalid_runbook_is_refused_before_running(void **state)
{
  (void)state;
  char path[600];
  write_runbook(
      path, sizeof path,
      "first = action { title = 'A', run = function() end, next = 'nowhere' },");
  rb_config *cfg = rb_config_new_empty();
  FILE *devnull = fopen("/dev/null", "w");
  assert_int_equal(rb_run_check(path, cfg, 0, devnull, -1), RB_EXIT_INVALID);
  fclose(devnull);
  rb_config_free(cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_branches_and_action_result_is_recorded),
      cmocka_unit_test(test_failure_goes_to_on_error),
      cmocka_unit_test(test_failure_without_on_error_fails_the_run),
      cmocka_unit_test(test_check_value_without_branch_names_the_branches),
      cmocka_unit_test(test_wait_polls_until_the_condition_holds),
      cmocka_unit_test(test_wait_that_never_holds_takes_the_false_branch),
      cmocka_unit_test(test_dry_run_skips_the_approval_and_marks_the_action_simulated),
      cmocka_unit_test(test_notify_without_channels_records_the_update),
      cmocka_unit_test(test_escalate_without_next_ends_escalated),
      cmocka_unit_test(test_invalid_runbook_is_refused_before_running),
  };
  return cmocka_run_group_tests_name("executor", tests, setup, NULL);
}
