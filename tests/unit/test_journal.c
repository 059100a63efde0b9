/* test_journal.c: reading a run back from its timeline: where to resume,
 * the last ctx, and actions in doubt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/journal.h"

static char path[256];

static void write_events(const char *const *lines)
{
  snprintf(path, sizeof path, "/tmp/rb-journal-%d.jsonl", (int)getpid());
  FILE *f = fopen(path, "w");
  for (; *lines; lines++)
    fprintf(f, "%s\n", *lines);
  fclose(f);
}

#define RUN_STARTED                                                                      \
  "{\"run\":\"r1\",\"runbook\":\"b\",\"step\":null,\"kind\":\"run\",\"event\":"          \
  "\"started\","                                                                         \
  "\"mode\":\"exec\",\"actor\":\"user:a\",\"detail\":{\"file\":\"/rb/b.lua\","           \
  "\"params\":{\"env\":\"prod\"}}}"

static void test_action_started_without_end_is_in_doubt(void **state)
{
  (void)state;
  const char *ev[] = {
      RUN_STARTED,
      "{\"run\":\"r1\",\"step\":\"a\",\"kind\":\"check\",\"event\":\"started\","
      "\"detail\":{}}",
      "{\"run\":\"r1\",\"step\":\"a\",\"kind\":\"check\",\"event\":\"decision\","
      "\"detail\":{\"branch\":\"b\",\"ctx\":{\"x\":1}}}",
      "{\"run\":\"r1\",\"step\":\"b\",\"kind\":\"action\",\"event\":\"started\","
      "\"detail\":{}}",
      "{\"run\":\"r1\",\"step\":\"b\",\"kind\":\"action\",\"event\":\"started\","
      "\"detail\":{\"op\":\"cmd\",\"command\":[\"deploy\",\"rollback\"]}}",
      "{\"run\":\"other\",\"step\":\"z\",\"kind\":\"action\",\"event\":\"finished\","
      "\"detail\":{}}",
      NULL};
  write_events(ev);
  rb_journal j;
  char err[256];
  assert_int_equal(rb_journal_load(path, "r1", &j, err, sizeof err), 0);
  assert_string_equal(j.file, "/rb/b.lua");
  assert_string_equal(j.mode, "exec");
  assert_string_equal(json_string_value(json_object_get(j.params, "env")), "prod");
  assert_int_equal(json_integer_value(json_object_get(j.ctx, "x")), 1);
  assert_true(j.in_doubt);
  assert_string_equal(j.last, "b");
  assert_int_equal(json_array_size(j.in_doubt_ops), 1);
  assert_int_equal(json_array_size(j.path), 2);
  assert_false(j.ended);
  rb_journal_clear(&j);
  unlink(path);
}

static void test_finished_action_resumes_at_its_next(void **state)
{
  (void)state;
  const char *ev[] = {
      RUN_STARTED,
      "{\"run\":\"r1\",\"step\":\"b\",\"kind\":\"action\",\"event\":\"started\","
      "\"detail\":{}}",
      "{\"run\":\"r1\",\"step\":\"b\",\"kind\":\"action\",\"event\":\"finished\","
      "\"detail\":{\"next\":\"c\"}}",
      "{\"run\":\"r1\",\"step\":null,\"kind\":\"run\",\"event\":\"failed\","
      "\"detail\":{\"error\":\"the executor died from signal 9\"}}",
      NULL};
  write_events(ev);
  rb_journal j;
  char err[256];
  assert_int_equal(rb_journal_load(path, "r1", &j, err, sizeof err), 0);
  assert_false(j.in_doubt);
  assert_false(j.ended);
  assert_string_equal(j.next, "c");
  rb_journal_clear(&j);
  unlink(path);
}

static void test_failure_handled_by_on_error_resumes_there(void **state)
{
  (void)state;
  const char *ev[] = {
      RUN_STARTED,
      "{\"run\":\"r1\",\"step\":\"b\",\"kind\":\"action\",\"event\":\"started\","
      "\"detail\":{}}",
      "{\"run\":\"r1\",\"step\":\"b\",\"kind\":\"action\",\"event\":\"failed\","
      "\"detail\":{\"error\":\"x\",\"on_error\":\"page\"}}",
      NULL};
  write_events(ev);
  rb_journal j;
  char err[256];
  assert_int_equal(rb_journal_load(path, "r1", &j, err, sizeof err), 0);
  assert_false(j.in_doubt);
  assert_false(j.failed);
  assert_string_equal(j.next, "page");
  rb_journal_clear(&j);
  unlink(path);
}

static void test_run_with_outcome_has_ended(void **state)
{
  (void)state;
  const char *ev[] = {
      RUN_STARTED,
      "{\"run\":\"r1\",\"step\":null,\"kind\":\"run\",\"event\":\"finished\","
      "\"detail\":{\"outcome\":\"escalated\"}}",
      NULL};
  write_events(ev);
  rb_journal j;
  char err[256];
  assert_int_equal(rb_journal_load(path, "r1", &j, err, sizeof err), 0);
  assert_true(j.ended);
  assert_string_equal(j.outcome, "escalated");
  rb_journal_clear(&j);
  unlink(path);
}

static void test_unknown_run_is_an_error(void **state)
{
  (void)state;
  const char *ev[] = {RUN_STARTED, NULL};
  write_events(ev);
  rb_journal j;
  char err[256];
  assert_int_equal(rb_journal_load(path, "r2", &j, err, sizeof err), -1);
  assert_non_null(strstr(err, "has no events of run r2"));
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_action_started_without_end_is_in_doubt),
      cmocka_unit_test(test_finished_action_resumes_at_its_next),
      cmocka_unit_test(test_failure_handled_by_on_error_resumes_there),
      cmocka_unit_test(test_run_with_outcome_has_ended),
      cmocka_unit_test(test_unknown_run_is_an_error),
  };
  return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
