/* test_cmd_engine.c: the process engine under `cmd` without Lua: exit codes,
 * capped output, stdin, the working dir, the given environment only, a
 * timeout that kills the whole group, and a program that cannot start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/cmd_engine.h"

static char *env_none[] = {"PATH=/usr/bin:/bin", NULL};

static void spec(rb_cmd_spec *s, const char *const *argv, int64_t timeout_ms, size_t cap)
{
  memset(s, 0, sizeof *s);
  for (s->argc = 0; argv[s->argc] != NULL; s->argc++)
    s->argv[s->argc] = argv[s->argc];
  s->argv[s->argc] = NULL;
  s->timeout_ms = timeout_ms;
  s->output_limit = cap;
}

static int run(const rb_cmd_spec *s, rb_cmd_result *r)
{
  memset(r, 0, sizeof *r);
  r->env.vars = env_none;
  return rb_cmd_execute(s, r);
}

static void test_exit_code_and_output(void **state)
{
  (void)state;
  const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  rb_cmd_spec s;
  rb_cmd_result r;
  spec(&s, argv, 5000, 4096);
  assert_int_equal(run(&s, &r), 0);
  assert_int_equal(r.exit_code, 3);
  assert_false(r.timed_out);
  assert_string_equal(rb_buf_str(&r.out.b), "out\n");
  assert_string_equal(rb_buf_str(&r.err.b), "err\n");
  rb_cmd_result_clear(&r);
}

static void test_output_over_the_cap_is_cut_and_marked(void **state)
{
  (void)state;
  const char *argv[] = {"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x", NULL};
  rb_cmd_spec s;
  rb_cmd_result r;
  spec(&s, argv, 5000, 1000);
  assert_int_equal(run(&s, &r), 0);
  assert_int_equal(r.exit_code, 0);
  assert_true(r.out.truncated);
  assert_int_equal(strlen(rb_buf_str(&r.out.b)), 1000);
  rb_cmd_result_clear(&r);
}

static void test_stdin_cwd_and_only_the_given_environment(void **state)
{
  (void)state;
  setenv("RB_ENGINE_LEAK", "must-not-pass", 1);
  const char *argv[] = {"sh", "-c", "cat; pwd; echo \"[${RB_ENGINE_LEAK:-}]\"", NULL};
  rb_cmd_spec s;
  rb_cmd_result r;
  spec(&s, argv, 5000, 4096);
  s.stdin_data = "from stdin\n";
  s.stdin_len = strlen(s.stdin_data);
  s.cwd = "/";
  assert_int_equal(run(&s, &r), 0);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(rb_buf_str(&r.out.b), "from stdin\n/\n[]\n");
  rb_cmd_result_clear(&r);
  unsetenv("RB_ENGINE_LEAK");
}

static void test_timeout_kills_the_whole_group(void **state)
{
  (void)state;
  char marker[256];
  snprintf(marker, sizeof marker, "%s/engine-marker-%d",
           getenv("RB_TEST_TMP") ? getenv("RB_TEST_TMP") : "/tmp", (int)getpid());
  unlink(marker);
  char script[512];
  /* the background child is in the command's group: the kill reaches it */
  snprintf(script, sizeof script, "(sleep 1; touch %s) & sleep 30", marker);
  const char *argv[] = {"sh", "-c", script, NULL};
  rb_cmd_spec s;
  rb_cmd_result r;
  spec(&s, argv, 300, 4096);
  assert_int_equal(run(&s, &r), 0);
  assert_true(r.timed_out);
  assert_int_equal(r.exit_code, -1);
  assert_true(r.duration_ms < 3000);
  rb_cmd_result_clear(&r);
  sleep(2);
  assert_int_not_equal(access(marker, F_OK), 0);
}

static void test_a_missing_program_is_an_error_not_a_result(void **state)
{
  (void)state;
  const char *argv[] = {"no-such-program-rb-test", NULL};
  rb_cmd_spec s;
  rb_cmd_result r;
  spec(&s, argv, 5000, 4096);
  assert_int_equal(run(&s, &r), -1);
  assert_non_null(strstr(r.error, "cannot run 'no-such-program-rb-test'"));
  rb_cmd_result_clear(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exit_code_and_output),
      cmocka_unit_test(test_output_over_the_cap_is_cut_and_marked),
      cmocka_unit_test(test_stdin_cwd_and_only_the_given_environment),
      cmocka_unit_test(test_timeout_kills_the_whole_group),
      cmocka_unit_test(test_a_missing_program_is_an_error_not_a_result),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
