/* test_stats.c: the quantile math behind `runbook stats` and /metrics:
 * linear interpolation between closest ranks, edges and one sample. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runner/stats.h"

static void median_of_even_and_odd_counts(void **state)
{
  (void)state;
  const double four[] = {1, 2, 3, 4}, three[] = {1, 5, 9};
  assert_float_equal(rb_stats_quantile(four, 4, 0.5), 2.5, 1e-12);
  assert_float_equal(rb_stats_quantile(three, 3, 0.5), 5, 1e-12);
}

static void p90_interpolates_between_ranks(void **state)
{
  (void)state;
  double ten[10];
  for (int i = 0; i < 10; i++)
    ten[i] = i + 1;
  assert_float_equal(rb_stats_quantile(ten, 10, 0.9), 9.1, 1e-12);
  const double two[] = {10, 20};
  assert_float_equal(rb_stats_quantile(two, 2, 0.9), 19, 1e-12);
  const double five[] = {0.2, 0.4, 0.6, 1.0, 3.0};
  assert_float_equal(rb_stats_quantile(five, 5, 0.9), 2.2, 1e-12); /* 1.0 + 0.6 * 2.0 */
}

static void edges_and_single_sample(void **state)
{
  (void)state;
  const double one[] = {7.5}, v[] = {1, 2, 3};
  assert_float_equal(rb_stats_quantile(one, 1, 0.5), 7.5, 0);
  assert_float_equal(rb_stats_quantile(one, 1, 0.9), 7.5, 0);
  assert_float_equal(rb_stats_quantile(v, 3, 0), 1, 0);
  assert_float_equal(rb_stats_quantile(v, 3, 1), 3, 0);
  assert_true(isnan(rb_stats_quantile(v, 0, 0.5)));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(median_of_even_and_odd_counts),
      cmocka_unit_test(p90_interpolates_between_ranks),
      cmocka_unit_test(edges_and_single_sample),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
