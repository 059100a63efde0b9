/* test_loader.c: the loader without the executor: a runbook file becomes a
 * model with its steps, branches, params and policies, and every malformed
 * field is refused with file:line before anything could run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/loader.h"
#include "runner/model.h"
#include "sandbox/sandbox.h"

static char g_dir[512];
static int g_seq;

static int setup(void **state)
{
  (void)state;
  const char *base = getenv("RB_TEST_TMP");
  snprintf(g_dir, sizeof g_dir, "%s/loader-XXXXXX", base ? base : "/tmp");
  return mkdtemp(g_dir) ? 0 : -1;
}

static void write_file(char *path, size_t len, const char *text)
{
  snprintf(path, len, "%s/rb-%d.lua", g_dir, ++g_seq);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Loads text as a runbook file in a fresh sandbox (no modules: the loader
 * needs none). Returns the loader's code; err holds its message. */
static int load(const char *text, rb_model **m, char *path, size_t plen, char *err,
                size_t errlen)
{
  write_file(path, plen, text);
  sb_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.memory_bytes = 16u << 20;
  char e[256];
  sb_state *sb = sb_new(&lim, e, sizeof e);
  assert_non_null(sb);
  rb_loader_install_dsl(sb);
  *m = NULL;
  int rc = rb_loader_load(sb, path, m, err, errlen);
  sb_free(sb);
  return rc;
}

static const char GOOD[] =
    "return runbook {\n"
    "  name = \"good\", title = \"Good\", start = \"look\",\n"
    "  params = { service = { default = \"checkout\" },\n"
    "             threshold = { type = \"number\", default = \"0.01\" } },\n"
    "  steps = {\n"
    "    look = check { title = \"Look\", run = function() return true end,\n"
    "                   on = { [true] = \"act\", [false] = \"done\" } },\n"
    "    act = action { title = \"Act\", approval = true, idempotent = true,\n"
    "                   timeout = \"30s\", run = function() end, next = \"done\" },\n"
    "    done = resolved { title = \"Done\" },\n"
    "  },\n"
    "}\n";

static void test_a_runbook_becomes_a_model_with_its_steps_and_params(void **state)
{
  (void)state;
  rb_model *m;
  char path[600], err[1024] = "";
  assert_int_equal(load(GOOD, &m, path, sizeof path, err, sizeof err), 0);
  assert_non_null(m);
  assert_string_equal(m->name, "good");
  assert_string_equal(m->start, "look");
  assert_int_equal(m->nsteps, 3);
  assert_int_equal(m->nparams, 2);
  char verr[512] = "";
  assert_int_equal(rb_model_validate(m, verr, sizeof verr), 0);
  const rb_step *act = rb_model_find(m, "act");
  assert_non_null(act);
  assert_int_equal(act->kind, RB_STEP_ACTION);
  assert_true(act->approval);
  assert_true(act->idempotent);
  assert_int_equal(act->timeout_ms, 30000);
  assert_string_equal(act->next, "done");
  assert_int_equal(act->line, 8);
  const rb_step *look = rb_model_find(m, "look");
  assert_non_null(look);
  assert_int_equal(look->nbranches, 2);
  int seen_true = 0;
  for (size_t i = 0; i < look->nbranches; i++)
    if (strcmp(look->branches[i].key, "true") == 0)
      seen_true = strcmp(look->branches[i].target, "act") == 0;
  assert_true(seen_true);
  rb_model_free(m);
}

/* Each mistake is refused at load with the runbook's file and the line of
 * the step, and the message names the field. */
static void expect_refused(const char *steps, const char *want)
{
  char text[2048];
  snprintf(text, sizeof text,
           "return runbook {\n  name = \"bad\", title = \"Bad\", start = \"a\",\n"
           "  steps = {\n%s\n    done = resolved { title = \"Done\" },\n  },\n}\n",
           steps);
  rb_model *m;
  char path[600], err[2048] = "";
  int rc = load(text, &m, path, sizeof path, err, sizeof err);
  if (rc == 0) {
    /* some mistakes are graph-level: the validator names them */
    rc = rb_model_validate(m, err, sizeof err) == 0 ? 0 : -1;
  }
  rb_model_free(m);
  assert_int_not_equal(rc, 0);
  if (strstr(err, want) == NULL)
    fail_msg("wanted '%s' in: %s", want, err);
  char where[700];
  snprintf(where, sizeof where, "%s:4", path);
  if (strstr(err, where) == NULL)
    fail_msg("wanted '%s' in: %s", where, err);
}

static void test_a_misspelt_approval_is_refused_with_a_suggestion(void **state)
{
  (void)state;
  expect_refused("    a = action { title = \"A\", aproval = true, run = function() end,"
                 " next = \"done\" },",
                 "unknown field 'aproval' in action 'a' (did you mean 'approval'?)");
}

static void test_a_bare_number_timeout_is_refused(void **state)
{
  (void)state;
  expect_refused("    a = action { title = \"A\", timeout = 5, run = function() end,"
                 " next = \"done\" },",
                 "timeout");
}

static void test_a_string_approval_is_refused(void **state)
{
  (void)state;
  expect_refused(
      "    a = action { title = \"A\", approval = \"yes\", run = function() end,"
      " next = \"done\" },",
      "approval");
}

static void test_a_branch_to_a_missing_step_is_refused(void **state)
{
  (void)state;
  expect_refused("    a = check { title = \"A\", run = function() return true end,"
                 " on = { [true] = \"nowhere\", [false] = \"done\" } },",
                 "nowhere");
}

static void test_a_syntax_error_names_the_line(void **state)
{
  (void)state;
  rb_model *m;
  char path[600], err[1024] = "";
  assert_int_not_equal(load("return runbook {\n  name = \"x\",\n  title = = 1,\n}\n", &m,
                            path, sizeof path, err, sizeof err),
                       0);
  assert_null(m);
  char where[700];
  snprintf(where, sizeof where, ":3:");
  assert_non_null(strstr(err, where));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_runbook_becomes_a_model_with_its_steps_and_params),
      cmocka_unit_test(test_a_misspelt_approval_is_refused_with_a_suggestion),
      cmocka_unit_test(test_a_bare_number_timeout_is_refused),
      cmocka_unit_test(test_a_string_approval_is_refused),
      cmocka_unit_test(test_a_branch_to_a_missing_step_is_refused),
      cmocka_unit_test(test_a_syntax_error_names_the_line),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
