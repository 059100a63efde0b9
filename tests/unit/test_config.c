/* test_config.c: unit tests of the settings file (runner/config.c): syntax,
 * validation against the key table, typed getters, secrets, search order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/config.h"
#include "runner/base/redact.h"
#include "runner/base/util.h"

static char scratch[4096];
static char origin[4096];
static int seq;

static int setup_dir(void **state)
{
  (void)state;
  const char *base = getenv("RB_TEST_TMP");
  if (base == NULL || *base == '\0')
    base = "/tmp";
  if (rb_mkdirs(base) != 0 || getcwd(origin, sizeof origin) == NULL)
    return -1;
  snprintf(scratch, sizeof scratch, "%s/test_config.XXXXXX", base);
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
  return chdir(origin);
}

/* Writes content to a new file in the scratch dir; returns a static path. */
static const char *conf(const char *content)
{
  static char path[4200];
  snprintf(path, sizeof path, "%s/c%d.conf", scratch, ++seq);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
  return path;
}

/* Loads content expecting an error; returns it in a static buffer. */
static const char *load_error(const char *content, int line)
{
  static char err[512];
  err[0] = '\0';
  const char *path = conf(content);
  rb_config *c = rb_config_load(path, err, sizeof err);
  assert_null(c);
  char prefix[4300];
  snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
  if (strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("error '%s' does not start with '%s'", err, prefix);
  return err + strlen(prefix);
}

static void test_comments_quotes_and_sections_are_parsed(void **state)
{
  (void)state;
  const char *path = conf("# a comment\n"
                          "; another\n"
                          "\n"
                          "[ssh]\n"
                          "  user = deploy   # trailing comment\n"
                          "known_hosts=/etc/ssh/known_hosts\n"
                          "[flags.checkout]\n"
                          "url = \"https://flags/api#x\" ; quoted keeps the #\n"
                          "set_body = \"{\\\"on\\\": true, \\\\o/}\"\n"
                          "project = a#b\n");
  char err[256] = "";
  rb_config *c = rb_config_load(path, err, sizeof err);
  assert_non_null(c);
  assert_string_equal(rb_config_file(c), path);
  assert_string_equal(rb_config_get(c, "ssh", "user"), "deploy");
  assert_string_equal(rb_config_get(c, "ssh", "known_hosts"), "/etc/ssh/known_hosts");
  assert_string_equal(rb_config_get(c, "flags.checkout", "url"), "https://flags/api#x");
  assert_string_equal(rb_config_get(c, "flags.checkout", "set_body"),
                      "{\"on\": true, \\o/}");
  assert_string_equal(rb_config_get(c, "flags.checkout", "project"), "a#b");
  assert_null(rb_config_get(c, "ssh", "port"));
  assert_null(rb_config_get(c, "nosuch", "user"));
  rb_config_free(c);
}

static void test_typed_getters_return_values_and_defaults(void **state)
{
  (void)state;
  const char *path = conf("[ssh]\nport = 2222\nuse_agent = no\ncommand_timeout = 90s\n");
  char err[256] = "";
  rb_config *c = rb_config_load(path, err, sizeof err);
  assert_non_null(c);
  long l = 0;
  int b = -1;
  int64_t ms = 0;
  assert_int_equal(rb_config_get_int(c, "ssh", "port", &l, err, sizeof err), 0);
  assert_int_equal(l, 2222);
  assert_int_equal(rb_config_get_int(c, "ssh", "parallel", &l, err, sizeof err), 0);
  assert_int_equal(l, 20);
  assert_int_equal(rb_config_get_bool(c, "ssh", "use_agent", &b, err, sizeof err), 0);
  assert_int_equal(b, 0);
  assert_int_equal(
      rb_config_get_bool(c, "ssh", "trust_on_first_use", &b, err, sizeof err), 0);
  assert_int_equal(b, 0);
  assert_int_equal(
      rb_config_get_duration(c, "ssh", "command_timeout", &ms, err, sizeof err), 0);
  assert_int_equal(ms, 90000);
  assert_int_equal(
      rb_config_get_duration(c, "ssh", "connect_timeout", &ms, err, sizeof err), 0);
  assert_int_equal(ms, 10000);
  rb_config_free(c);
}

static void test_set_overrides_and_bad_override_is_reported_on_read(void **state)
{
  (void)state;
  rb_config *c = rb_config_new_empty();
  assert_non_null(c);
  assert_null(rb_config_file(c));
  assert_int_equal(rb_config_set(c, "ssh", "inventory", "/tmp/inv"), 0);
  assert_int_equal(rb_config_set(c, "ssh", "inventory", "/tmp/inv2"), 0);
  assert_string_equal(rb_config_get(c, "ssh", "inventory"), "/tmp/inv2");
  assert_int_equal(rb_config_set(c, "ssh", "port", "twenty"), 0);
  long l = 0;
  char err[256] = "";
  assert_int_equal(rb_config_get_int(c, "ssh", "port", &l, err, sizeof err), -1);
  assert_non_null(strstr(err, "'port' must be a whole number"));
  rb_config_free(c);
  rb_config_free(NULL);
}

static void test_unknown_key_names_line_and_suggests_closest(void **state)
{
  (void)state;
  assert_string_equal(load_error("[ssh]\nuser = x\nknwon_hosts = /k\n", 3),
                      "unknown key 'knwon_hosts' in [ssh]; did you mean 'known_hosts'?");
  assert_string_equal(load_error("[ssh]\nfrobnicate = 1\n", 2),
                      "unknown key 'frobnicate' in [ssh]");
  assert_string_equal(load_error("[prom]\ntoken_evn = X\n", 2),
                      "unknown key 'token_evn' in [prom]; did you mean 'token_env'?");
}

static void test_unknown_section_is_an_error_with_suggestion(void **state)
{
  (void)state;
  assert_string_equal(load_error("\n[shh]\n", 2),
                      "unknown section [shh]; did you mean [ssh]?");
  assert_string_equal(load_error("[flag.checkout]\n", 1),
                      "unknown section [flag.checkout]; did you mean [flags.checkout]?");
  assert_string_equal(load_error("[flags.]\n", 1), "unknown section [flags.]");
  assert_string_equal(
      load_error("[bad name]\n", 1),
      "bad section name 'bad name' (letters, digits, '_', '-' and '.' only)");
}

static void test_key_outside_section_points_at_its_section(void **state)
{
  (void)state;
  assert_string_equal(load_error("state_dir = /x\n", 1),
                      "'state_dir' must be inside a section; did you mean [core]?");
  assert_string_equal(load_error("nonsense = 1\n", 1),
                      "unknown key 'nonsense' outside any section");
}

static void test_literal_secret_is_refused(void **state)
{
  (void)state;
  const char *e = load_error("[prom]\nurl = http://p\ntoken = abc\n", 3);
  assert_string_equal(e, "'token' is a secret: set token_env (an environment variable "
                         "name) or token_file (a path), never the value");
  assert_null(strstr(e, "abc"));
}

static void test_secret_value_in_env_key_is_refused_without_echoing_it(void **state)
{
  (void)state;
  const char *e = load_error("[serve]\ntoken_env = ghp_abc-123.xyz\n", 2);
  assert_non_null(strstr(e, "must be the name of an environment variable"));
  assert_null(strstr(e, "ghp_abc"));
}

static void test_duplicate_key_names_both_lines(void **state)
{
  (void)state;
  assert_string_equal(load_error("[ssh]\nport = 22\n[http]\n[ssh]\nport = 23\n", 5),
                      "duplicate key 'port' in [ssh], first set on line 2");
}

static void test_bad_int_bool_and_duration_name_the_line(void **state)
{
  (void)state;
  assert_string_equal(load_error("[ssh]\nport = 22x\n", 2),
                      "'port' must be a whole number >= 0, not '22x'");
  assert_string_equal(load_error("[sandbox]\nmemory_mb = -5\n", 2),
                      "'memory_mb' must be a whole number >= 0, not '-5'");
  assert_string_equal(load_error("[http]\n\ninsecure = maybe\n", 3),
                      "'insecure' must be true or false, not 'maybe'");
  const char *e = load_error("[cmd]\ntimeout = 5 minutes\n", 2);
  assert_true(strncmp(e, "'timeout': bad duration", 23) == 0);
}

static void test_malformed_lines_are_errors(void **state)
{
  (void)state;
  assert_string_equal(load_error("[ssh]\njust words\n", 2),
                      "expected 'key = value', '[section]' or a comment");
  assert_string_equal(load_error("[ssh]\nuser = \"open\n", 2),
                      "unterminated quoted value");
  assert_string_equal(load_error("[ssh]\nuser = \"a\" b\n", 2),
                      "unexpected text after the closing quote");
  assert_string_equal(load_error("[ssh\n", 1), "a section header looks like [name]");
}

static void test_secret_is_read_from_the_environment(void **state)
{
  (void)state;
  const char *path = conf("[prom]\ntoken_env = RB_TEST_PROM_TOKEN\n");
  char err[256] = "";
  rb_config *c = rb_config_load(path, err, sizeof err);
  assert_non_null(c);
  setenv("RB_TEST_PROM_TOKEN", "prom-secret-42", 1);
  int absent = -1;
  char *v = rb_config_secret(c, "prom", "token", &absent, err, sizeof err);
  assert_non_null(v);
  assert_string_equal(v, "prom-secret-42");
  assert_int_equal(absent, 0);
  char *scrubbed = rb_redact_str("Bearer prom-secret-42");
  assert_string_equal(scrubbed, "Bearer [REDACTED]");
  free(scrubbed);
  explicit_bzero(v, strlen(v));
  free(v);
  unsetenv("RB_TEST_PROM_TOKEN");
  rb_config_free(c);
}

static void test_missing_env_var_error_names_the_variable(void **state)
{
  (void)state;
  const char *path = conf("[flags.checkout]\ntoken_env = RB_TEST_UNSET_VAR\n");
  char err[256] = "";
  rb_config *c = rb_config_load(path, err, sizeof err);
  assert_non_null(c);
  unsetenv("RB_TEST_UNSET_VAR");
  int absent = -1;
  assert_null(rb_config_secret(c, "flags.checkout", "token", &absent, err, sizeof err));
  assert_int_equal(absent, 0);
  assert_string_equal(err,
                      "[flags.checkout] token: environment variable RB_TEST_UNSET_VAR "
                      "(named by token_env) is not set");
  rb_config_free(c);
}

static void test_unconfigured_secret_is_reported_absent(void **state)
{
  (void)state;
  rb_config *c = rb_config_new_empty();
  int absent = 0;
  char err[256] = "";
  assert_null(rb_config_secret(c, "serve", "token", &absent, err, sizeof err));
  assert_int_equal(absent, 1);
  rb_config_free(c);
}

/* Writes a secret file with mode; returns a static path. */
static const char *secret_file(const char *content, mode_t mode)
{
  static char path[4200];
  snprintf(path, sizeof path, "%s/secret%d", scratch, ++seq);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

static rb_config *config_with_file_secret(const char *secret_path)
{
  char text[4400];
  snprintf(text, sizeof text, "[serve]\nhmac_key_file = %s\n", secret_path);
  char err[256] = "";
  rb_config *c = rb_config_load(conf(text), err, sizeof err);
  assert_non_null(c);
  return c;
}

static void test_secret_is_read_from_a_private_file_without_trailing_newline(void **state)
{
  (void)state;
  rb_config *c = config_with_file_secret(secret_file("file-secret-99\n\n", 0600));
  char err[256] = "";
  int absent = -1;
  char *v = rb_config_secret(c, "serve", "hmac_key", &absent, err, sizeof err);
  assert_non_null(v);
  assert_string_equal(v, "file-secret-99");
  char *scrubbed = rb_redact_str("key=file-secret-99");
  assert_string_equal(scrubbed, "key=[REDACTED]");
  free(scrubbed);
  explicit_bzero(v, strlen(v));
  free(v);
  rb_config_free(c);
}

static void test_world_readable_secret_file_is_refused(void **state)
{
  (void)state;
  const char *path = secret_file("leaky-secret\n", 0644);
  rb_config *c = config_with_file_secret(path);
  char err[512] = "";
  assert_null(rb_config_secret(c, "serve", "hmac_key", NULL, err, sizeof err));
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "chmod 600"));
  assert_null(strstr(err, "leaky-secret"));
  rb_config_free(c);
}

static void test_empty_or_missing_secret_file_is_an_error(void **state)
{
  (void)state;
  rb_config *c = config_with_file_secret(secret_file("\n", 0600));
  char err[512] = "";
  assert_null(rb_config_secret(c, "serve", "hmac_key", NULL, err, sizeof err));
  assert_non_null(strstr(err, "is empty"));
  rb_config_free(c);

  char missing[4200];
  snprintf(missing, sizeof missing, "%s/nope", scratch);
  c = config_with_file_secret(missing);
  assert_null(rb_config_secret(c, "serve", "hmac_key", NULL, err, sizeof err));
  assert_non_null(strstr(err, missing));
  rb_config_free(c);
}

static void append(const char *section, void *arg)
{
  strcat((char *)arg, section);
  strcat((char *)arg, ",");
}

static void test_each_section_visits_matching_sections_once(void **state)
{
  (void)state;
  const char *path =
      conf("[flags.a]\nurl = x\nproject = p\n[ssh]\nuser = u\n[flags.b]\nurl = y\n");
  char err[256] = "";
  rb_config *c = rb_config_load(path, err, sizeof err);
  assert_non_null(c);
  char seen[128] = "";
  rb_config_each_section(c, "flags.", append, seen);
  assert_string_equal(seen, "flags.a,flags.b,");
  rb_config_free(c);
}

static void test_explicit_missing_path_is_an_error(void **state)
{
  (void)state;
  char path[4200], err[4400] = "";
  snprintf(path, sizeof path, "%s/does-not-exist.conf", scratch);
  assert_null(rb_config_load(path, err, sizeof err));
  assert_non_null(strstr(err, path));
}

/* Makes dir/sub and returns it in a static buffer. */
static const char *mkdir_in_scratch(const char *sub)
{
  static char path[4200];
  snprintf(path, sizeof path, "%s/%s", scratch, sub);
  assert_int_equal(rb_mkdirs(path), 0);
  return path;
}

static void write_at(const char *dir, const char *name, const char *content)
{
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

static void test_search_order_is_cwd_then_xdg_then_home(void **state)
{
  (void)state;
  char cwd[4200], xdg[4200], home[4200];
  snprintf(cwd, sizeof cwd, "%s", mkdir_in_scratch("search/cwd"));
  snprintf(xdg, sizeof xdg, "%s", mkdir_in_scratch("search/xdg/runbook"));
  snprintf(home, sizeof home, "%s", mkdir_in_scratch("search/home/.config/runbook"));
  write_at(xdg, "runbook.conf", "[core]\nactor = from-xdg\n");
  write_at(home, "runbook.conf", "[core]\nactor = from-home\n");
  char xdg_root[4200], home_root[4200];
  snprintf(xdg_root, sizeof xdg_root, "%s/search/xdg", scratch);
  snprintf(home_root, sizeof home_root, "%s/search/home", scratch);
  assert_int_equal(chdir(cwd), 0);
  setenv("HOME", home_root, 1);
  char err[256] = "";

  setenv("XDG_CONFIG_HOME", xdg_root, 1);
  rb_config *c = rb_config_load(NULL, err, sizeof err);
  assert_string_equal(rb_config_get(c, "core", "actor"), "from-xdg");
  rb_config_free(c);

  unsetenv("XDG_CONFIG_HOME");
  c = rb_config_load(NULL, err, sizeof err);
  assert_string_equal(rb_config_get(c, "core", "actor"), "from-home");
  rb_config_free(c);

  write_at(cwd, "runbook.conf", "[core]\nactor = from-cwd\n");
  c = rb_config_load(NULL, err, sizeof err);
  assert_string_equal(rb_config_get(c, "core", "actor"), "from-cwd");
  assert_string_equal(rb_config_file(c), "runbook.conf");
  rb_config_free(c);
}

static void test_no_config_anywhere_gives_an_empty_config(void **state)
{
  (void)state;
  assert_int_equal(chdir(mkdir_in_scratch("empty/cwd")), 0);
  char home[4200];
  snprintf(home, sizeof home, "%s/empty", scratch);
  setenv("HOME", home, 1);
  unsetenv("XDG_CONFIG_HOME");
  char err[256] = "";
  rb_config *c = rb_config_load(NULL, err, sizeof err);
  assert_non_null(c);
  assert_null(rb_config_file(c));
  assert_null(rb_config_get(c, "core", "actor"));
  rb_config_free(c);
}

static void test_getters_take_bounds_from_the_table(void **state)
{
  (void)state;
  rb_config *c = rb_config_new_empty();
  long l = 0;
  char err[256] = "";
  assert_int_equal(rb_config_set(c, "ssh", "port", "70000"), 0);
  assert_int_equal(rb_config_get_int(c, "ssh", "port", &l, err, sizeof err), -1);
  assert_non_null(strstr(err, "'port' must be 1..65535, not 70000"));
  assert_int_equal(rb_config_set(c, "sandbox", "memory_mb", "2"), 0);
  assert_int_equal(rb_config_get_int(c, "sandbox", "memory_mb", &l, err, sizeof err), -1);
  assert_non_null(strstr(err, "'memory_mb' must be at least 4, not 2"));
  /* a key that is not in the table, or asked as the wrong type, is refused */
  assert_int_equal(rb_config_get_int(c, "ssh", "nosuch", &l, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a key of that type"));
  assert_int_equal(rb_config_get_int(c, "ssh", "user", &l, err, sizeof err), -1);
  rb_config_free(c);
}

static void test_every_default_parses_and_is_in_bounds(void **state)
{
  (void)state;
  rb_config *c = rb_config_new_empty();
  char err[256] = "";
  for (size_t i = 0; rb_config_sections[i]; i++) {
    const rb_config_section *sec = rb_config_sections[i];
    char name[160];
    snprintf(name, sizeof name, "%s", sec->name);
    char *star = strchr(name, '*');
    if (star != NULL)
      snprintf(star, sizeof name - (size_t)(star - name), "x");
    for (const rb_config_key *k = sec->keys; k->key; k++) {
      long l;
      int b;
      int64_t ms;
      int rc = 0;
      assert_non_null(k->doc);
      if (k->type == RB_CFG_INT)
        rc = rb_config_get_int(c, name, k->key, &l, err, sizeof err);
      else if (k->type == RB_CFG_BOOL)
        rc = rb_config_get_bool(c, name, k->key, &b, err, sizeof err);
      else if (k->type == RB_CFG_DURATION)
        rc = rb_config_get_duration(c, name, k->key, &ms, err, sizeof err);
      if (rc != 0)
        fail_msg("[%s] %s: %s", name, k->key, err);
    }
  }
  rb_config_free(c);
}

/* The text of docs/config.md between the two generated-section markers. */
static char *docs_reference(void)
{
  const char *src = getenv("RB_SOURCE_DIR");
  char path[4200];
  snprintf(path, sizeof path, "%s/docs/config.md", src ? src : ".");
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return NULL;
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *a = strstr(text, "<!-- BEGIN config reference");
  char *b = a ? strstr(a, "<!-- END config reference") : NULL;
  if (a == NULL || b == NULL || (a = strstr(a, "-->\n")) == NULL)
    return NULL;
  a += 4;
  *b = '\0';
  return a;
}

/* docs/config.md holds the reference generated from the table; to refresh
 * it run this test with RB_WRITE_REFERENCE=FILE and paste FILE in. */
static void test_docs_reference_matches_the_table(void **state)
{
  (void)state;
  char *gen = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&gen, &len);
  assert_non_null(m);
  rb_config_reference(m);
  fclose(m);
  const char *out = getenv("RB_WRITE_REFERENCE");
  if (out != NULL) {
    FILE *w = fopen(out, "we");
    assert_non_null(w);
    fputs(gen, w);
    fclose(w);
  }
  char *doc = docs_reference();
  assert_non_null(doc);
  if (strcmp(doc, gen) != 0) {
    size_t i = 0;
    while (doc[i] && doc[i] == gen[i])
      i++;
    fail_msg("docs/config.md differs from the key table at byte %zu of the reference:\n"
             "docs: %.120s\ntable: %.120s",
             i, doc + i, gen + i);
  }
  free(gen);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_comments_quotes_and_sections_are_parsed),
      cmocka_unit_test(test_typed_getters_return_values_and_defaults),
      cmocka_unit_test(test_set_overrides_and_bad_override_is_reported_on_read),
      cmocka_unit_test(test_unknown_key_names_line_and_suggests_closest),
      cmocka_unit_test(test_unknown_section_is_an_error_with_suggestion),
      cmocka_unit_test(test_key_outside_section_points_at_its_section),
      cmocka_unit_test(test_literal_secret_is_refused),
      cmocka_unit_test(test_secret_value_in_env_key_is_refused_without_echoing_it),
      cmocka_unit_test(test_duplicate_key_names_both_lines),
      cmocka_unit_test(test_bad_int_bool_and_duration_name_the_line),
      cmocka_unit_test(test_malformed_lines_are_errors),
      cmocka_unit_test_teardown(test_secret_is_read_from_the_environment, teardown),
      cmocka_unit_test(test_missing_env_var_error_names_the_variable),
      cmocka_unit_test(test_unconfigured_secret_is_reported_absent),
      cmocka_unit_test_teardown(
          test_secret_is_read_from_a_private_file_without_trailing_newline, teardown),
      cmocka_unit_test(test_world_readable_secret_file_is_refused),
      cmocka_unit_test(test_empty_or_missing_secret_file_is_an_error),
      cmocka_unit_test(test_each_section_visits_matching_sections_once),
      cmocka_unit_test(test_explicit_missing_path_is_an_error),
      cmocka_unit_test(test_getters_take_bounds_from_the_table),
      cmocka_unit_test(test_every_default_parses_and_is_in_bounds),
      cmocka_unit_test(test_docs_reference_matches_the_table),
      cmocka_unit_test_teardown(test_search_order_is_cwd_then_xdg_then_home, teardown),
      cmocka_unit_test_teardown(test_no_config_anywhere_gives_an_empty_config, teardown),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
