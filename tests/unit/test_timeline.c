/* test_timeline.c: unit tests of the incident timeline (runner/timeline.c):
 * appends, the hash chain and its verification, torn-line repair and skipping,
 * secret scrubbing, describe, exports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/base/redact.h"
#include "runner/base/sha256.h"
#include "runner/digest.h"
#include "runner/postmortem.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

static char scratch[4096];
static int seq;

/* A fresh directory per run, under RB_TEST_TMP when ctest sets it. */
static int setup_dir(void **state)
{
  (void)state;
  const char *base = getenv("RB_TEST_TMP");
  if (base == NULL || *base == '\0')
    base = "/tmp";
  if (rb_mkdirs(base) != 0)
    return -1;
  snprintf(scratch, sizeof scratch, "%s/test_timeline.XXXXXX", base);
  return mkdtemp(scratch) ? 0 : -1;
}

static int teardown_dir(void **state)
{
  (void)state;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
  return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  rb_redact_clear();
  return 0;
}

/* A new file name in the scratch directory; returns a static buffer. */
static const char *fresh_path(void)
{
  static char path[4200];
  snprintf(path, sizeof path, "%s/tl-%d.jsonl", scratch, ++seq);
  return path;
}

static void write_file(const char *path, const char *content)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

/* Returns the file's content; caller frees. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  int c;
  while ((c = fgetc(f)) != EOF)
    fputc(c, m);
  fclose(m);
  fclose(f);
  return buf;
}

/* Hex SHA-256 of s, computed here independently of the writer; static. */
static const char *sha256_hex(const char *s)
{
  static char out[65];
  unsigned char md[32];
  unsigned int len = 0;
  assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL), 1);
  for (unsigned i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  return out;
}

typedef struct {
  int n;
  char steps[8][32];
  int stop_at;
} collected;

static int collect(json_t *ev, void *arg)
{
  collected *c = arg;
  if (rb_timeline_is_header(ev))
    return 0;
  const char *s = json_string_value(json_object_get(ev, "step"));
  if (c->n < 8)
    snprintf(c->steps[c->n], sizeof c->steps[0], "%s", s ? s : "-");
  c->n++;
  return (c->stop_at && c->n == c->stop_at) ? 7 : 0;
}

/* Runs fn with stderr sent to a file and returns what it wrote; caller frees. */
static char *capture_stderr(int (*fn)(const char *, collected *, int *), const char *path,
                            collected *c, int *skipped, int *rc)
{
  char errpath[4200];
  snprintf(errpath, sizeof errpath, "%s/stderr-%d", scratch, ++seq);
  fflush(stderr);
  int saved = dup(2);
  int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  dup2(fd, 2);
  close(fd);
  *rc = fn(path, c, skipped);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  return slurp(errpath);
}

static int read_all(const char *path, collected *c, int *skipped)
{
  char err[256] = "";
  return rb_timeline_read(path, collect, c, skipped, err, sizeof err);
}

static json_t *event(const char *step, const char *kind, const char *ev)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "incident", "INC-7", "run", "r1",
                   "runbook", "checkout-errors", "step", step, "kind", kind, "event", ev);
}

static void test_appended_events_read_back_in_order_with_ts_first(void **state)
{
  (void)state;
  const char *path = fresh_path();
  char err[256] = "";
  int repaired = -1;
  rb_timeline *tl = rb_timeline_open(path, 0, &repaired, err, sizeof err);
  assert_non_null(tl);
  assert_int_equal(repaired, 0);
  assert_string_equal(rb_timeline_path(tl), path);
  const char *steps[] = {"recent_deploy", "rollback", "verify"};
  for (int i = 0; i < 3; i++) {
    json_t *ev = event(steps[i], "check", "started");
    assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
    json_decref(ev);
  }
  rb_timeline_free(tl);

  char *raw = slurp(path);
  assert_true(strncmp(raw, "{\"ts\":\"20", 9) == 0);
  assert_non_null(strstr(raw, "Z\",\"incident\":\"INC-7\",\"run\":\"r1\",\"runbook\":"));
  free(raw);

  collected c = {0};
  int skipped = -1;
  assert_int_equal(rb_timeline_read(path, collect, &c, &skipped, err, sizeof err), 0);
  assert_int_equal(c.n, 3);
  assert_int_equal(skipped, 0);
  assert_string_equal(c.steps[0], "recent_deploy");
  assert_string_equal(c.steps[2], "verify");
}

static void test_existing_ts_is_kept(void **state)
{
  (void)state;
  const char *path = fresh_path();
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
  assert_non_null(tl);
  json_t *ev = json_pack("{s:s, s:s}", "event", "note", "ts", "2026-11-22T09:36:08.312Z");
  assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
  json_decref(ev);
  rb_timeline_free(tl);
  char *raw = slurp(path);
  /* the header takes the time of the first event; prev is its SHA-256 */
  const char *head = "{\"ts\":\"2026-11-22T09:36:08.312Z\",\"event\":\"timeline_header\","
                     "\"chain\":\"sha256\",\"seq\":0}";
  char want[512];
  snprintf(want, sizeof want,
           "%s\n{\"ts\":\"2026-11-22T09:36:08.312Z\",\"event\":\"note\",\"seq\":1,"
           "\"prev\":\"%s\"}\n",
           head, sha256_hex(head));
  assert_string_equal(raw, want);
  free(raw);
}

static void test_fsync_append_creates_private_file_with_complete_lines(void **state)
{
  (void)state;
  const char *path = fresh_path();
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 1, NULL, err, sizeof err);
  assert_non_null(tl);
  json_t *ev = event("verify", "wait", "finished");
  assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
  assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
  json_decref(ev);
  rb_timeline_free(tl);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char *raw = slurp(path);
  size_t len = strlen(raw);
  assert_true(len > 0 && raw[len - 1] == '\n');
  free(raw);
}

static void test_torn_last_line_is_cut_on_open(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\"}\n{\"step\":\"b\"}\n{\"step\":\"c\",\"det");
  char err[256] = "";
  int repaired = 0;
  rb_timeline *tl = rb_timeline_open(path, 1, &repaired, err, sizeof err);
  assert_non_null(tl);
  assert_int_equal(repaired, 1);
  char *raw = slurp(path);
  assert_string_equal(raw, "{\"step\":\"a\"}\n{\"step\":\"b\"}\n");
  free(raw);
  json_t *ev = event("c", "check", "started");
  assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
  json_decref(ev);
  rb_timeline_free(tl);

  collected c = {0};
  int skipped = -1;
  assert_int_equal(rb_timeline_read(path, collect, &c, &skipped, err, sizeof err), 0);
  assert_int_equal(c.n, 3);
  assert_int_equal(skipped, 0);
  assert_string_equal(c.steps[2], "c");
}

static void test_torn_only_line_is_cut_to_empty_file(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\",\"detail\":{\"x\":");
  int repaired = 0;
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, &repaired, err, sizeof err);
  assert_non_null(tl);
  assert_int_equal(repaired, 1);
  rb_timeline_free(tl);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 0);
}

static void test_torn_line_longer_than_a_read_chunk_is_cut(void **state)
{
  (void)state;
  const char *path = fresh_path();
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"step\":\"a\"}\n{\"step\":\"", f);
  for (int i = 0; i < 10000; i++)
    fputc('x', f);
  fclose(f);
  int repaired = 0;
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, &repaired, err, sizeof err);
  assert_non_null(tl);
  assert_int_equal(repaired, 1);
  rb_timeline_free(tl);
  char *raw = slurp(path);
  assert_string_equal(raw, "{\"step\":\"a\"}\n");
  free(raw);
}

static void test_intact_file_is_not_repaired(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\"}\n");
  int repaired = -1;
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, &repaired, err, sizeof err);
  assert_non_null(tl);
  assert_int_equal(repaired, 0);
  rb_timeline_free(tl);
}

static void test_open_in_missing_directory_fails_naming_path(void **state)
{
  (void)state;
  char path[4200];
  snprintf(path, sizeof path, "%s/no/such/dir/tl.jsonl", scratch);
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
  assert_null(tl);
  assert_non_null(strstr(err, path));
  rb_timeline_free(NULL);
}

static void test_torn_last_line_is_skipped_with_warning(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\"}\n{\"step\":\"b\"}\n{\"step\":\"c\",\"det");
  collected c = {0};
  int skipped = -1, rc = -1;
  char *warn = capture_stderr(read_all, path, &c, &skipped, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(c.n, 2);
  assert_int_equal(skipped, 1);
  char want[4300];
  snprintf(want, sizeof want, "warning: %s:3: ignoring torn last timeline line\n", path);
  assert_string_equal(warn, want);
  free(warn);
}

static void test_unparseable_complete_line_is_an_error_naming_it(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\"}\n\n   \nnot json\n[1,2]\n{\"step\":\"b\"}\r\n");
  collected c = {0};
  int skipped = -1, rc = 0;
  char *warn = capture_stderr(read_all, path, &c, &skipped, &rc);
  /* the walk goes on (exports show the rest) but fails, naming each line */
  assert_int_equal(rc, -1);
  assert_int_equal(c.n, 2);
  assert_int_equal(skipped, 0);
  assert_string_equal(c.steps[1], "b");
  assert_non_null(strstr(warn, ":4: unparseable"));
  assert_non_null(strstr(warn, ":5: unparseable"));
  assert_null(strstr(warn, ":2:"));
  free(warn);
  char err[512] = "";
  assert_int_equal(rb_timeline_read(path, NULL, NULL, NULL, err, sizeof err), -1);
  char want[4300];
  snprintf(want, sizeof want, "%s:4: unparseable line", path);
  assert_non_null(strstr(err, want));
}

static void test_very_long_line_is_read_whole(void **state)
{
  (void)state;
  const char *path = fresh_path();
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
  assert_non_null(tl);
  size_t n = 200000;
  char *big = malloc(n + 1);
  memset(big, 'o', n);
  big[n] = '\0';
  json_t *ev = json_pack("{s:s, s:{s:s}}", "step", "logs", "detail", "output", big);
  assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
  json_decref(ev);
  free(big);
  rb_timeline_free(tl);
  collected c = {0};
  int skipped = -1;
  assert_int_equal(rb_timeline_read(path, collect, &c, &skipped, err, sizeof err), 0);
  assert_int_equal(c.n, 1);
  assert_int_equal(skipped, 0);
}

static void test_callback_nonzero_stops_the_walk(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\"}\n{\"step\":\"b\"}\n{\"step\":\"c\"}\n");
  collected c = {.stop_at = 2};
  char err[256] = "";
  assert_int_equal(rb_timeline_read(path, collect, &c, NULL, err, sizeof err), 7);
  assert_int_equal(c.n, 2);
}

static void test_reading_a_missing_file_is_an_error_naming_it(void **state)
{
  (void)state;
  const char *path = fresh_path();
  char err[256] = "";
  assert_int_equal(rb_timeline_read(path, collect, NULL, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
}

static void
test_secrets_are_scrubbed_on_append_and_callers_event_is_untouched(void **state)
{
  (void)state;
  assert_int_equal(rb_redact_add("sup3rs3cret"), 0);
  const char *path = fresh_path();
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
  assert_non_null(tl);
  json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}}", "step", "flag_off", "event",
                         "would_run", "detail", "command", "curl -u me:sup3rs3cret x",
                         "url", "https://u:p@flags/api?token=abc", "headers",
                         "Authorization", "Bearer xyz");
  char *before = json_dumps(ev, JSON_COMPACT);
  assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
  char *after = json_dumps(ev, JSON_COMPACT);
  assert_string_equal(before, after);
  assert_null(json_object_get(ev, "ts"));
  free(before);
  free(after);
  json_decref(ev);
  rb_timeline_free(tl);

  char *raw = slurp(path);
  assert_null(strstr(raw, "sup3rs3cret"));
  assert_null(strstr(raw, "xyz"));
  assert_null(strstr(raw, "abc"));
  assert_null(strstr(raw, "u:p@"));
  assert_non_null(strstr(raw, "curl -u me:[REDACTED] x"));
  assert_non_null(strstr(raw, "https://[REDACTED]@flags/api?token=[REDACTED]"));
  assert_non_null(strstr(raw, "\"Authorization\":\"[REDACTED]\""));
  free(raw);
}

static void test_append_refuses_a_non_object(void **state)
{
  (void)state;
  const char *path = fresh_path();
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
  assert_non_null(tl);
  json_t *arr = json_array();
  assert_int_equal(rb_timeline_append(tl, arr, err, sizeof err), -1);
  assert_int_equal(rb_timeline_append(tl, NULL, err, sizeof err), -1);
  json_decref(arr);
  rb_timeline_free(tl);
}

static void assert_describes(const char *json, const char *want)
{
  json_t *ev = json_loads(json, 0, NULL);
  assert_non_null(ev);
  char *got = rb_timeline_describe(ev);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
  json_decref(ev);
}

static void test_describe_decision_names_question_value_and_branch(void **state)
{
  (void)state;
  assert_describes(
      "{\"step\":\"recent_deploy\",\"kind\":\"check\",\"event\":\"decision\","
      "\"detail\":{\"question\":\"Deploy in the last 2 hours?\",\"value\":true,"
      "\"branch\":\"rollback\"}}",
      "recent_deploy: Deploy in the last 2 hours? -> true, taking 'rollback'");
}

static void test_describe_would_run_shows_command_and_host(void **state)
{
  (void)state;
  assert_describes(
      "{\"step\":\"rollback\",\"kind\":\"action\",\"event\":\"would_run\","
      "\"detail\":{\"command\":\"deploy rollback checkout\",\"host\":\"app-1\"}}",
      "rollback: would run `deploy rollback checkout` on app-1");
  assert_describes("{\"step\":\"rollback\",\"kind\":\"action\",\"event\":\"would_run\","
                   "\"detail\":{\"command\":[\"deploy\",\"rollback\",\"checkout\"]}}",
                   "rollback: would run `deploy rollback checkout`");
  assert_describes("{\"step\":\"flag_off\",\"kind\":\"action\",\"event\":\"would_run\","
                   "\"detail\":{\"method\":\"POST\",\"url\":\"https://flags/api\"}}",
                   "flag_off: would run POST https://flags/api");
}

static void test_describe_failed_and_finished(void **state)
{
  (void)state;
  assert_describes("{\"step\":\"verify\",\"kind\":\"wait\",\"event\":\"failed\","
                   "\"detail\":{\"error\":\"timed out after 5m\"}}",
                   "verify: failed: timed out after 5m");
  assert_describes(
      "{\"step\":\"rollback\",\"kind\":\"action\",\"event\":\"finished\","
      "\"duration_ms\":1200,\"detail\":{\"host\":\"app-1\",\"exit_code\":0}}",
      "rollback: finished in 1.20 s on app-1, exit 0");
}

static void test_describe_run_level_and_approval_events(void **state)
{
  (void)state;
  assert_describes("{\"kind\":\"run\",\"event\":\"started\",\"mode\":\"drill\","
                   "\"runbook\":\"checkout-errors\"}",
                   "run started (drill of checkout-errors)");
  assert_describes("{\"kind\":\"run\",\"event\":\"finished\",\"detail\":{\"outcome\":"
                   "\"resolved\"}}",
                   "run finished: resolved");
  assert_describes("{\"step\":\"rollback\",\"kind\":\"approval\",\"event\":\"approved\","
                   "\"actor\":\"alert\",\"detail\":{\"approver\":\"alice\"}}",
                   "rollback: approved by alice");
  assert_describes("{\"step\":\"status\",\"kind\":\"notify\",\"event\":\"note\","
                   "\"detail\":{\"phase\":\"Identified\",\"message\":\"bad deploy\"}}",
                   "status: note [Identified]: bad deploy");
}

static void test_describe_survives_odd_input(void **state)
{
  (void)state;
  char *s = rb_timeline_describe(NULL);
  assert_non_null(s);
  free(s);
  json_t *n = json_integer(3);
  s = rb_timeline_describe(n);
  assert_string_equal(s, "(not an event)");
  free(s);
  json_decref(n);
  assert_describes("{}", "run event");
  assert_describes("{\"step\":5,\"kind\":[],\"event\":{},\"detail\":\"x\"}", "run event");
  assert_describes("{\"step\":\"s\",\"event\":\"decision\",\"detail\":{\"question\":1}}",
                   "s: decided -> ?");
  assert_describes(
      "{\"step\":\"s\",\"event\":\"would_run\",\"detail\":{\"command\":[1,\"a\"],"
      "\"host\":{\"h\":1}}}",
      "s: would run `[1,\"a\"]` on {\"h\":1}");
  assert_describes("{\"step\":\"s\",\"event\":\"finished\",\"duration_ms\":-5,"
                   "\"detail\":{\"exit_code\":\"x\",\"value\":null}}",
                   "s: finished -> null");
  assert_describes(
      "{\"step\":\"s\",\"event\":\"failed\",\"detail\":{\"error\":\"a\\nb\\u001b[2J\"}}",
      "s: failed: a b [2J");
}

static void test_describe_alert_resolved_and_pages(void **state)
{
  (void)state;
  assert_describes("{\"event\":\"alert_resolved\",\"actor\":\"alert:HighErrors\","
                   "\"detail\":{\"via\":\"/alerts/grafana\",\"fingerprint\":\"f1\"}}",
                   "alert resolved (via grafana): HighErrors");
  assert_describes("{\"event\":\"alert_resolved\",\"actor\":\"alice\","
                   "\"detail\":{\"via\":\"/alerts/json/uptime\"}}",
                   "alert resolved (via json/uptime)");
  assert_describes("{\"event\":\"alert_resolved\",\"detail\":{\"via\":7}}",
                   "alert resolved (via ?)");
  assert_describes(
      "{\"step\":\"done\",\"kind\":\"resolved\",\"event\":\"note\",\"detail\":"
      "{\"op\":\"page\",\"event\":\"resolve\",\"target\":\"dba\",\"ok\":false,"
      "\"error\":\"HTTP 500\"}}",
      "done: resolve of the page to dba FAILED: HTTP 500");
}

/* A timeline whose alert cleared before the run's verify said resolved. */
static void write_alert_first(const char *path)
{
  write_file(
      path,
      "{\"ts\":\"2026-11-22T09:36:00.000Z\",\"incident\":\"ALERT-f1\",\"run\":\"r1\","
      "\"runbook\":\"checkout-errors\",\"kind\":\"run\",\"event\":\"started\","
      "\"mode\":\"exec\"}\n"
      "{\"ts\":\"2026-11-22T09:38:00.000Z\",\"run\":\"r1\",\"step\":\"rollback\","
      "\"kind\":\"action\",\"event\":\"finished\",\"detail\":{\"exit_code\":0}}\n"
      "{\"ts\":\"2026-11-22T09:40:30.000Z\",\"event\":\"alert_resolved\","
      "\"actor\":\"alert:HighErrors\",\"detail\":{\"via\":\"/alerts/alertmanager\"}}\n"
      "{\"ts\":\"2026-11-22T09:44:00.000Z\",\"run\":\"r1\",\"kind\":\"run\","
      "\"event\":\"finished\",\"detail\":{\"outcome\":\"resolved\"}}\n");
}

static void test_postmortem_resolved_is_the_earlier_of_run_and_alert(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_alert_first(path);
  char *buf = NULL, err[256] = "";
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  assert_int_equal(rb_postmortem_write(path, "ALERT-f1", m, err, sizeof err), 0);
  fclose(m);
  assert_non_null(strstr(buf,
                         "- **First mitigation**: 2026-11-22 09:38:00 UTC, 2m00s after "
                         "detection\n"));
  assert_non_null(strstr(buf,
                         "- **Resolved**: 2026-11-22 09:40:30 UTC, 4m30s after detection "
                         "(the alert's resolved notification, via alertmanager)\n"
                         "- **Run resolved**: 2026-11-22 09:44:00 UTC, 8m00s after "
                         "detection\n"));
  assert_null(strstr(buf, "did not resolve"));
  assert_non_null(
      strstr(buf, "- **Duration**: 09:36 to 09:40 UTC (4m30s on the timeline"));
  assert_non_null(
      strstr(buf, "| 09:40:30 | alert resolved (via alertmanager): HighErrors |\n"));
  free(buf);
  /* the brief keeps serve's note as its own kind of row */
  json_t *rows = rb_digest_load(path, NULL, 0, err, sizeof err);
  assert_non_null(rows);
  assert_int_equal(json_array_size(rows), 4);
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 2), "what")),
                      "alert");
  json_decref(rows);
}

static void write_incident(const char *path)
{
  write_file(
      path,
      "{\"ts\":\"2026-11-22T09:36:00.000Z\",\"incident\":\"INC-42\",\"run\":\"r1\","
      "\"runbook\":\"checkout-errors\",\"kind\":\"run\",\"event\":\"started\","
      "\"mode\":\"exec\"}\n"
      "{\"ts\":\"2026-11-22T09:36:08.312Z\",\"step\":\"recent_deploy\",\"kind\":"
      "\"check\",\"event\":\"decision\",\"detail\":{\"question\":\"Deploy in the last 2 "
      "hours?\",\"value\":true,\"branch\":\"rollback\"}}\n"
      "{\"ts\":\"2026-11-22T09:40:01.000Z\",\"step\":\"grep\",\"kind\":\"check\","
      "\"event\":\"failed\",\"detail\":{\"error\":\"a|b\"}}\n"
      "{\"ts\":\"2026-11-23T00:00:02.500Z\",\"kind\":\"run\",\"event\":\"finished\","
      "\"detail\":{\"outcome\":\"resolved\"}}\n");
}

static char *export_to_string(const char *path, rb_tl_format fmt, int *rc)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  char err[256] = "";
  *rc = rb_timeline_export(path, fmt, m, err, sizeof err);
  fclose(m);
  return buf;
}

static void test_markdown_export_is_a_postmortem_table_with_escaped_pipes(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_incident(path);
  int rc = -1;
  char *md = export_to_string(path, RB_TL_MARKDOWN, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(md, "## Timeline (All times UTC)\n"
                          "\n"
                          "Incident INC-42, runbook checkout-errors, 2026-11-22\n"
                          "\n"
                          "| Time (UTC) | Event |\n"
                          "|------|-------|\n"
                          "| 09:36:00 | run started (exec of checkout-errors) |\n"
                          "| 09:36:08 | recent_deploy: Deploy in the last 2 hours? -> "
                          "true, taking 'rollback' |\n"
                          "| 09:40:01 | grep: failed: a\\|b |\n"
                          "| 2026-11-23 00:00:02 | run finished: resolved |\n");
  free(md);
}

static void test_text_export_has_one_line_per_event(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_incident(path);
  int rc = -1;
  char *txt = export_to_string(path, RB_TL_TEXT, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(
      txt, "09:36:00.000  run  started  (exec of checkout-errors)\n"
           "09:36:08.312  recent_deploy  decision  Deploy in the last 2 hours? "
           "-> true, taking 'rollback'\n"
           "09:40:01.000  grep  failed  a|b\n"
           "2026-11-23 00:00:02.500  run  finished  resolved\n");
  free(txt);
}

static void test_json_export_reproduces_the_stored_lines(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_incident(path);
  int rc = -1;
  char *js = export_to_string(path, RB_TL_JSON, &rc);
  assert_int_equal(rc, 0);
  char *raw = slurp(path);
  assert_string_equal(js, raw);
  free(raw);
  free(js);
}

static void test_markdown_export_of_empty_timeline_says_so(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "");
  int rc = -1;
  char *md = export_to_string(path, RB_TL_MARKDOWN, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(md, "## Timeline (All times UTC)\n\n_No events._\n");
  free(md);
}

/* ---- the hash chain ---- */

/* Appends n events (steps s1..sn) to path through a fresh handle. */
static void append_events(const char *path, int from, int n)
{
  char err[256] = "";
  rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
  assert_non_null(tl);
  for (int i = from; i < from + n; i++) {
    char step[16];
    snprintf(step, sizeof step, "s%d", i);
    json_t *ev = event(step, "action", "started");
    json_object_set_new(ev, "seq", json_integer(999)); /* the writer's field */
    assert_int_equal(rb_timeline_append(tl, ev, err, sizeof err), 0);
    json_decref(ev);
  }
  rb_timeline_free(tl);
}

/* Splits the file into its lines (without newlines); returns the count. */
static int file_lines(const char *path, char *lines[], int max)
{
  char *raw = slurp(path);
  int n = 0;
  for (char *save = NULL, *l = strtok_r(raw, "\n", &save); l && n < max;
       l = strtok_r(NULL, "\n", &save))
    lines[n++] = strdup(l);
  free(raw);
  return n;
}

static void put_lines(const char *path, char *lines[], int n)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s\n", lines[i]);
  fclose(f);
}

static void free_lines(char *lines[], int n)
{
  for (int i = 0; i < n; i++)
    free(lines[i]);
}

static rb_tl_verdict verdict(const char *path, int want_rc)
{
  rb_tl_verdict v;
  char err[256] = "";
  assert_int_equal(rb_timeline_verify(path, &v, err, sizeof err), want_rc);
  return v;
}

static void test_each_line_carries_the_hash_of_the_one_before(void **state)
{
  (void)state;
  const char *path = fresh_path();
  append_events(path, 1, 2);
  append_events(path, 3, 2); /* a second handle, as a resume would */
  char *lines[8];
  int n = file_lines(path, lines, 8);
  assert_int_equal(n, 5);
  assert_non_null(strstr(lines[0], "\"event\":\"timeline_header\""));
  assert_null(strstr(lines[0], "\"prev\""));
  for (int i = 1; i < n; i++) {
    char want[128];
    snprintf(want, sizeof want, "\"seq\":%d,\"prev\":\"%s\"}", i,
             sha256_hex(lines[i - 1]));
    assert_non_null(strstr(lines[i], want));
  }
  rb_tl_verdict v = verdict(path, 0);
  assert_int_equal(v.events, 4);
  assert_int_equal(v.bad_line, 0);
  assert_string_equal(v.head, sha256_hex(lines[4]));
  free_lines(lines, n);
}

/* Writes a 6-line chain (header + 5 events), lets change() alter its lines,
 * and returns the verdict, which must be a failure. */
static rb_tl_verdict tampered(int (*change)(char *lines[], int n))
{
  const char *path = fresh_path();
  append_events(path, 1, 5);
  char *lines[8];
  int n = file_lines(path, lines, 8);
  assert_int_equal(n, 6);
  int m = change(lines, n);
  put_lines(path, lines, m);
  free_lines(lines, n);
  return verdict(path, 1);
}

static int edit_line_3(char *lines[], int n)
{
  char *p = strstr(lines[2], "\"s2\"");
  assert_non_null(p);
  p[2] = '9';
  return n;
}

static int delete_line_3(char *lines[], int n)
{
  char *gone = lines[2];
  memmove(&lines[2], &lines[3], (size_t)(n - 3) * sizeof *lines);
  lines[n - 1] = gone; /* still freed */
  return n - 1;
}

static int swap_lines_3_and_4(char *lines[], int n)
{
  char *t = lines[2];
  lines[2] = lines[3];
  lines[3] = t;
  return n;
}

static int delete_header(char *lines[], int n)
{
  char *gone = lines[0];
  memmove(&lines[0], &lines[1], (size_t)(n - 1) * sizeof *lines);
  lines[n - 1] = gone;
  return n - 1;
}

static int garble_line_4(char *lines[], int n)
{
  lines[3][5] = '\0';
  return n;
}

static void test_verify_names_the_first_line_that_does_not_chain(void **state)
{
  (void)state;
  rb_tl_verdict v = tampered(edit_line_3);
  assert_int_equal(v.bad_line, 3);
  assert_non_null(strstr(v.why, "edited"));
  assert_int_equal(v.events, 1);

  v = tampered(delete_line_3);
  assert_int_equal(v.bad_line, 3);
  assert_non_null(strstr(v.why, "deleted: 1 event(s)"));

  v = tampered(swap_lines_3_and_4);
  assert_int_equal(v.bad_line, 3);
  assert_non_null(strstr(v.why, "reordered"));

  v = tampered(delete_header);
  assert_int_equal(v.bad_line, 1);
  assert_non_null(strstr(v.why, "no header"));

  v = tampered(garble_line_4);
  assert_int_equal(v.bad_line, 4);
  assert_non_null(strstr(v.why, "unparseable"));
}

static void test_verify_allows_a_torn_last_line_and_reports_it(void **state)
{
  (void)state;
  const char *path = fresh_path();
  append_events(path, 1, 3);
  FILE *f = fopen(path, "a");
  fputs("{\"ts\":\"2026-11-22T10:00:00.000Z\",\"ev", f);
  fclose(f);
  rb_tl_verdict v = verdict(path, 0);
  assert_int_equal(v.events, 3);
  assert_int_equal(v.torn_line, 5);
  /* the next append cuts it and chains on */
  append_events(path, 4, 1);
  v = verdict(path, 0);
  assert_int_equal(v.events, 4);
  assert_int_equal(v.torn_line, 0);
}

static void test_timeline_written_before_chaining_is_unchained(void **state)
{
  (void)state;
  const char *path = fresh_path();
  write_file(path, "{\"step\":\"a\"}\n{\"step\":\"b\"}\n");
  rb_tl_verdict v = verdict(path, 1);
  assert_int_equal(v.unchained, 2);
  assert_int_equal(v.events, 0);
  assert_int_equal(v.bad_line, 0);
  /* appending starts a chain with a header linked to the old last line */
  append_events(path, 1, 2);
  char *lines[8];
  int n = file_lines(path, lines, 8);
  assert_int_equal(n, 5);
  assert_non_null(strstr(lines[2], "\"event\":\"timeline_header\""));
  assert_non_null(strstr(lines[2], sha256_hex(lines[1])));
  free_lines(lines, n);
  v = verdict(path, 1);
  assert_int_equal(v.unchained, 2);
  assert_int_equal(v.events, 2);
  assert_int_equal(v.bad_line, 0);
  /* an empty file proves nothing */
  const char *empty = fresh_path();
  write_file(empty, "");
  v = verdict(empty, 1);
  assert_int_equal(v.events, 0);
}

static void test_concurrent_appenders_chain_one_after_the_other(void **state)
{
  (void)state;
  const char *path = fresh_path();
  pid_t kids[4];
  for (int k = 0; k < 4; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      char err[256] = "";
      rb_timeline *tl = rb_timeline_open(path, 0, NULL, err, sizeof err);
      for (int i = 0; tl && i < 50; i++) {
        json_t *ev = event("x", "action", "started");
        if (rb_timeline_append(tl, ev, err, sizeof err) != 0)
          _exit(1);
        json_decref(ev);
      }
      rb_timeline_free(tl);
      _exit(tl ? 0 : 1);
    }
  }
  for (int k = 0; k < 4; k++) {
    int st = -1;
    assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  rb_tl_verdict v = verdict(path, 0);
  assert_int_equal(v.events, 200);
}

static void test_sha256_matches_the_standard_and_libcrypto(void **state)
{
  (void)state;
  char out[65];
  rb_sha256_hex("", 0, out);
  assert_string_equal(out,
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  rb_sha256_hex("abc", 3, out);
  assert_string_equal(out,
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  /* every padding case: tail under, at and over 55 bytes, whole blocks */
  static char buf[70000];
  for (size_t i = 0; i < sizeof buf - 1; i++)
    buf[i] = (char)('a' + (i * 7) % 26);
  size_t lens[] = {1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, sizeof buf - 1};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    char c = buf[lens[i]];
    buf[lens[i]] = '\0';
    rb_sha256_hex(buf, lens[i], out);
    assert_string_equal(out, sha256_hex(buf));
    buf[lens[i]] = c;
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_appended_events_read_back_in_order_with_ts_first),
      cmocka_unit_test(test_existing_ts_is_kept),
      cmocka_unit_test(test_fsync_append_creates_private_file_with_complete_lines),
      cmocka_unit_test(test_torn_last_line_is_cut_on_open),
      cmocka_unit_test(test_torn_only_line_is_cut_to_empty_file),
      cmocka_unit_test(test_torn_line_longer_than_a_read_chunk_is_cut),
      cmocka_unit_test(test_intact_file_is_not_repaired),
      cmocka_unit_test(test_open_in_missing_directory_fails_naming_path),
      cmocka_unit_test(test_torn_last_line_is_skipped_with_warning),
      cmocka_unit_test(test_unparseable_complete_line_is_an_error_naming_it),
      cmocka_unit_test(test_very_long_line_is_read_whole),
      cmocka_unit_test(test_callback_nonzero_stops_the_walk),
      cmocka_unit_test(test_reading_a_missing_file_is_an_error_naming_it),
      cmocka_unit_test_teardown(
          test_secrets_are_scrubbed_on_append_and_callers_event_is_untouched, teardown),
      cmocka_unit_test(test_append_refuses_a_non_object),
      cmocka_unit_test(test_describe_decision_names_question_value_and_branch),
      cmocka_unit_test(test_describe_would_run_shows_command_and_host),
      cmocka_unit_test(test_describe_failed_and_finished),
      cmocka_unit_test(test_describe_run_level_and_approval_events),
      cmocka_unit_test(test_describe_survives_odd_input),
      cmocka_unit_test(test_describe_alert_resolved_and_pages),
      cmocka_unit_test(test_postmortem_resolved_is_the_earlier_of_run_and_alert),
      cmocka_unit_test(test_markdown_export_is_a_postmortem_table_with_escaped_pipes),
      cmocka_unit_test(test_text_export_has_one_line_per_event),
      cmocka_unit_test(test_json_export_reproduces_the_stored_lines),
      cmocka_unit_test(test_markdown_export_of_empty_timeline_says_so),
      cmocka_unit_test(test_sha256_matches_the_standard_and_libcrypto),
      cmocka_unit_test(test_each_line_carries_the_hash_of_the_one_before),
      cmocka_unit_test(test_verify_names_the_first_line_that_does_not_chain),
      cmocka_unit_test(test_verify_allows_a_torn_last_line_and_reports_it),
      cmocka_unit_test(test_timeline_written_before_chaining_is_unchained),
      cmocka_unit_test(test_concurrent_appenders_chain_one_after_the_other),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
