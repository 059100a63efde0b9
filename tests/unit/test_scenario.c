/* test_scenario.c: loading drill scenarios: answers, shorthand, and errors
 * that name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/drill_match.h"
#include "runner/scenario.h"

static char dir[256];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/rb-scn-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

static rb_model *model(void)
{
  rb_model *m = rb_model_new("m.lua");
  m->name = strdup("m");
  rb_model_add_step(m, "look");
  rb_model_add_step(m, "fix");
  return m;
}

static void test_shorthand_answer_becomes_value(void **state)
{
  (void)state;
  rb_model *m = model();
  char err[512];
  json_t *s = rb_scenario_load(
      write_file("a.json", "{\"steps\": {\"look\": true, \"fix\": {\"result\": 1}}}"), m,
      err, sizeof err);
  assert_non_null(s);
  json_t *a = rb_scenario_answer(s, "look");
  assert_true(json_is_true(json_object_get(a, "value")));
  json_decref(a);
  a = rb_scenario_answer(s, "fix");
  assert_int_equal(json_integer_value(json_object_get(a, "result")), 1);
  json_decref(a);
  assert_null(rb_scenario_answer(s, "other"));
  json_decref(s);
  rb_model_free(m);
}

static void test_answer_for_unknown_step_names_it(void **state)
{
  (void)state;
  rb_model *m = model();
  char err[512];
  const char *p = write_file("b.json", "{\"steps\": {\"lok\": true}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "steps.lok: runbook 'm' has no step 'lok'"));
  rb_model_free(m);
}

static void test_json_syntax_error_names_line_and_column(void **state)
{
  (void)state;
  char err[512];
  const char *p = write_file("c.json", "{\n  \"steps\": {\n    \"look\": tru\n  }\n}\n");
  assert_null(rb_scenario_load(p, NULL, err, sizeof err));
  assert_non_null(strstr(err, "c.json:3:"));
}

static void test_steps_must_be_an_object(void **state)
{
  (void)state;
  char err[512];
  assert_null(rb_scenario_load(write_file("d.json", "{\"steps\": [true]}"), NULL, err,
                               sizeof err));
  assert_non_null(strstr(err, "field \"steps\" must be an object"));
  assert_null(rb_scenario_load(write_file("e.json", "[1]"), NULL, err, sizeof err));
  assert_non_null(strstr(err, "must be a JSON object"));
}

static void test_unknown_answer_field_is_named(void **state)
{
  (void)state;
  rb_model *m = model();
  char err[512];
  const char *p = write_file("f.json", "{\"steps\": {\"look\": {\"valeu\": true}}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(
      strstr(err, "unknown field 'valeu' in steps.look (did you mean 'value'?)"));
  rb_model_free(m);
}

static void test_vars_must_be_scalars(void **state)
{
  (void)state;
  char err[512];
  const char *p = write_file("g.json", "{\"steps\": {}, \"vars\": {\"env\": [3]}}");
  assert_null(rb_scenario_load(p, NULL, err, sizeof err));
  assert_non_null(strstr(err, "vars.env must be a string, a number or a boolean"));
}

static void test_values_answer_only_a_wait(void **state)
{
  (void)state;
  rb_model *m = model();
  rb_model_find(m, "look")->kind = RB_STEP_CHECK;
  rb_model_add_step(m, "settle")->kind = RB_STEP_WAIT;
  char err[512];
  json_t *s = rb_scenario_load(
      write_file("v.json", "{\"steps\": {\"settle\": {\"values\": [false, true]}}}"), m,
      err, sizeof err);
  assert_non_null(s);
  json_decref(s);
  const char *p = write_file("w.json", "{\"steps\": {\"look\": {\"values\": [true]}}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "steps.look.values: 'look' is a check; only a wait polls"));
  p = write_file("x.json", "{\"steps\": {\"settle\": {\"values\": [1]}}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "steps.settle.values[0] must be true or false"));
  rb_model_free(m);
}

static void test_calls_stand_in_for_steps_and_are_checked(void **state)
{
  (void)state;
  rb_model *m = model();
  char err[512];
  json_t *s = rb_scenario_load(
      write_file("c.json", "{\"calls\": {\"prom\": [{\"query\": \"up\", \"value\": 1}],"
                           " \"cmd\": [{\"argv\": [\"true\"], \"exit\": 0}]}}"),
      m, err, sizeof err);
  assert_non_null(s);
  json_decref(s);
  const char *p = write_file("d.json", "{\"calls\": {\"prom\": [{\"value\": 1}]}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "calls.prom[0].query must be the PromQL query"));
  p = write_file("e.json", "{\"calls\": {\"mysql\": []}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "unknown field 'mysql' in calls"));
  p = write_file("f.json", "{\"calls\": {\"ssh\": [{\"host\": {\"glob\": \"a\\\\x\"},"
                           " \"command\": \"x\"}]}}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "f.json: calls.ssh[0].host glob \"a\\x\": a backslash"));
  p = write_file("h.json", "{\"description\": \"no steps, no calls\"}");
  assert_null(rb_scenario_load(p, m, err, sizeof err));
  assert_non_null(strstr(err, "field \"steps\" must be an object"));
  rb_model_free(m);
}

static int glob(const char *pattern, const char *s)
{
  json_t *p = json_pack("{s:s}", "glob", pattern);
  char why[200];
  assert_int_equal(rb_pattern_check(p, why, sizeof why), 0);
  int r = rb_pattern_match(p, s);
  json_decref(p);
  return r;
}

static void test_glob_patterns(void **state)
{
  (void)state;
  assert_true(glob("app-*", "app-12"));
  assert_true(glob("app-*", "app-"));
  assert_false(glob("app-*", "db-1"));
  assert_true(glob("*", ""));
  assert_true(glob("*rollback*", "deploy rollback checkout"));
  assert_true(glob("a*b*c", "axxbyybzc"));
  assert_false(glob("a*b*c", "axxbyyb"));
  assert_true(glob("rate(x[*]) \\* 100", "rate(x[5m]) * 100"));
  assert_false(glob("rate(x[*]) \\* 100", "rate(x[5m]) + 100"));
  assert_true(glob("https://s.example/*?q=*", "https://s.example/api?q=1"));
  assert_false(glob("app-?", "app-1")); /* ? is itself */
  /* many stars on a long subject stay fast: one backtrack point */
  char subject[4001];
  memset(subject, 'a', 4000);
  subject[4000] = '\0';
  assert_false(glob("*a*a*a*a*a*a*a*a*a*b", subject));
  json_t *exact = json_string("app-*");
  assert_true(rb_pattern_match(exact, "app-*"));
  assert_false(rb_pattern_match(exact, "app-1"));
  json_decref(exact);
  char why[200];
  json_t *bad = json_pack("{s:s, s:s}", "glob", "a", "regex", "b");
  assert_int_equal(rb_pattern_check(bad, why, sizeof why), -1);
  json_decref(bad);
}

static void test_entries_match_on_every_field_with_defaults(void **state)
{
  (void)state;
  json_t *e = json_pack("{s:{s:s}}", "url", "glob", "https://x/*");
  json_t *get = json_pack("{s:s, s:s}", "method", "GET", "url", "https://x/a");
  json_t *post = json_pack("{s:s, s:s}", "method", "POST", "url", "https://x/a");
  assert_true(rb_drill_entry_matches("http", e, get)); /* method defaults to GET */
  assert_false(rb_drill_entry_matches("http", e, post));
  char *d = rb_drill_describe("http", e, 0);
  assert_string_equal(d, "method \"GET\" url glob \"https://x/*\"");
  free(d);
  json_t *c = json_pack("{s:[s,{s:s}]}", "argv", "systemctl", "glob", "*");
  json_t *call = json_pack("{s:[s,s]}", "argv", "systemctl", "restart");
  json_t *call3 = json_pack("{s:[s,s,s]}", "argv", "systemctl", "restart", "x");
  assert_true(rb_drill_entry_matches("cmd", c, call));
  assert_false(rb_drill_entry_matches("cmd", c, call3));
  json_decref(e);
  json_decref(get);
  json_decref(post);
  json_decref(c);
  json_decref(call);
  json_decref(call3);
}

static void test_named_scenario_is_found_next_to_the_runbook(void **state)
{
  (void)state;
  char out[512];
  assert_int_equal(
      rb_scenario_find("/rb/runbooks/x.lua", "x", "database", out, sizeof out), 0);
  assert_string_equal(out, "/rb/runbooks/scenarios/x/database.json");
  assert_int_equal(
      rb_scenario_find("/rb/runbooks/x.lua", "x", "./my.json", out, sizeof out), 0);
  assert_string_equal(out, "./my.json");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shorthand_answer_becomes_value),
      cmocka_unit_test(test_answer_for_unknown_step_names_it),
      cmocka_unit_test(test_json_syntax_error_names_line_and_column),
      cmocka_unit_test(test_steps_must_be_an_object),
      cmocka_unit_test(test_unknown_answer_field_is_named),
      cmocka_unit_test(test_vars_must_be_scalars),
      cmocka_unit_test(test_values_answer_only_a_wait),
      cmocka_unit_test(test_calls_stand_in_for_steps_and_are_checked),
      cmocka_unit_test(test_glob_patterns),
      cmocka_unit_test(test_entries_match_on_every_field_with_defaults),
      cmocka_unit_test(test_named_scenario_is_found_next_to_the_runbook),
  };
  return cmocka_run_group_tests_name("scenario", tests, setup, teardown);
}
