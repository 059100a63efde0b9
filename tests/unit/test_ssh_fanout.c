/* test_ssh_fanout.c: the fan-out engine's arithmetic (counts, batches,
 * failure limits) and its pool against loopback ports where nothing
 * listens: every host becomes a result naming it, max_fail stops starting
 * hosts, and no handshake is counted. No SSH server is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stdlib/ssh/fanout.h"

static void test_counts_parse_numbers_and_percentages(void **state)
{
  (void)state;
  rb_ssh_count c;
  char err[200];
  assert_int_equal(rb_ssh_parse_count("3", "batch", &c, err, sizeof err), 0);
  assert_int_equal(c.value, 3);
  assert_int_equal(c.pct, 0);
  assert_int_equal(rb_ssh_parse_count("25%", "batch", &c, err, sizeof err), 0);
  assert_int_equal(c.value, 25);
  assert_int_equal(c.pct, 1);
  const char *bad[] = {"101%", "-1", "abc", "", "3x", NULL};
  for (int i = 0; bad[i] != NULL; i++) {
    err[0] = '\0';
    assert_int_not_equal(rb_ssh_parse_count(bad[i], "max_fail", &c, err, sizeof err), 0);
    if (strstr(err, "max_fail") == NULL)
      fail_msg("'%s': the error does not name the option: %s", bad[i], err);
  }
}

static void test_batches_round_up_and_stay_within_the_hosts(void **state)
{
  (void)state;
  rb_ssh_count unset = {-1, 0}, two = {2, 0}, quarter = {25, 1}, tiny = {1, 1};
  rb_ssh_count many = {50, 0};
  assert_int_equal(rb_ssh_batch_size(unset, 8), 8);
  assert_int_equal(rb_ssh_batch_size(two, 8), 2);
  assert_int_equal(rb_ssh_batch_size(quarter, 8), 2);
  assert_int_equal(rb_ssh_batch_size(quarter, 5), 2); /* 1.25 rounds up */
  assert_int_equal(rb_ssh_batch_size(tiny, 3), 1);    /* never zero */
  assert_int_equal(rb_ssh_batch_size(many, 3), 3);    /* never more than the hosts */
}

static void test_failure_limits(void **state)
{
  (void)state;
  rb_ssh_count unset = {-1, 0}, none = {0, 0}, half = {50, 1}, one = {1, 0};
  assert_true(rb_ssh_fail_limit(unset, 4) == SIZE_MAX);
  assert_int_equal(rb_ssh_fail_limit(none, 4), 0);
  assert_int_equal(rb_ssh_fail_limit(half, 4), 2);
  assert_int_equal(rb_ssh_fail_limit(half, 3), 1); /* rounds down: stricter */
  assert_int_equal(rb_ssh_fail_limit(one, 10), 1);
}

/* A loopback port nobody listens on: bound, then closed. */
static int closed_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void run_on_closed_ports(int max_fail, int parallel, rb_ssh_result **res,
                                rb_ssh_pool **pool, size_t n)
{
  rb_ssh_settings s;
  memset(&s, 0, sizeof s);
  s.known_hosts = "/dev/null";
  s.identity = "/nonexistent/id_ed25519";
  s.user = "nobody";
  s.connect_timeout_ms = 2000;
  char err[300];
  *pool = rb_ssh_pool_new(&s, err, sizeof err);
  assert_non_null(*pool);
  rb_ssh_host hosts[4];
  char names[4][32];
  for (size_t i = 0; i < n; i++) {
    snprintf(names[i], sizeof names[i], "app-%zu", i + 1);
    hosts[i] = (rb_ssh_host){names[i], "127.0.0.1", closed_port(), NULL, NULL};
  }
  rb_ssh_opts o;
  memset(&o, 0, sizeof o);
  o.parallel = parallel;
  o.batch = (rb_ssh_count){-1, 0};
  o.max_fail = (rb_ssh_count){max_fail, 0};
  o.timeout_ms = 5000;
  assert_int_equal(rb_ssh_run(*pool, hosts, n, "true", &o, res, err, sizeof err), 0);
}

static void test_unreachable_hosts_are_results_that_name_the_host(void **state)
{
  (void)state;
  rb_ssh_result *res = NULL;
  rb_ssh_pool *pool = NULL;
  run_on_closed_ports(-1, 4, &res, &pool, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_false(res[i].ok);
    assert_false(res[i].skipped);
    assert_int_equal(res[i].exit_code, -1);
    assert_non_null(res[i].error);
    char want[32];
    snprintf(want, sizeof want, "app-%zu", i + 1);
    if (strstr(res[i].error, want) == NULL || strstr(res[i].error, "refused") == NULL)
      fail_msg("host %zu: %s", i + 1, res[i].error);
  }
  assert_int_equal(rb_ssh_pool_handshakes(pool), 0);
  assert_int_equal(rb_ssh_pool_size(pool), 0);
  rb_ssh_results_free(res, 3);
  rb_ssh_pool_free(pool);
}

static void test_max_fail_stops_starting_hosts(void **state)
{
  (void)state;
  rb_ssh_result *res = NULL;
  rb_ssh_pool *pool = NULL;
  run_on_closed_ports(0, 1, &res, &pool, 4); /* one at a time, no failure allowed */
  assert_false(res[0].ok);
  assert_false(res[0].skipped);
  for (size_t i = 1; i < 4; i++)
    assert_true(res[i].skipped);
  rb_ssh_results_free(res, 4);
  rb_ssh_pool_free(pool);
}

static void test_free_is_null_safe(void **state)
{
  (void)state;
  rb_ssh_pool_free(NULL);
  rb_ssh_results_free(NULL, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counts_parse_numbers_and_percentages),
      cmocka_unit_test(test_batches_round_up_and_stay_within_the_hosts),
      cmocka_unit_test(test_failure_limits),
      cmocka_unit_test(test_unreachable_hosts_are_results_that_name_the_host),
      cmocka_unit_test(test_max_fail_stops_starting_hosts),
      cmocka_unit_test(test_free_is_null_safe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
