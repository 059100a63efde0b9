/* test_buf.c: unit tests of the capped growable buffer (runner/base/buf.c):
 * growth, the cap, partial appends, formatting, reset and hand-over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runner/base/buf.h"

static void test_empty_buffer_reads_as_empty_string(void **state)
{
  (void)state;
  rb_buf b;
  rb_buf_init(&b, 16);
  assert_string_equal(rb_buf_str(&b), "");
  assert_int_equal(b.len, 0);
  char *s = rb_buf_take(&b);
  assert_string_equal(s, "");
  free(s);
  rb_buf_free(&b);
  rb_buf_free(NULL);
}

static void test_appends_grow_and_stay_terminated(void **state)
{
  (void)state;
  rb_buf b;
  rb_buf_init(&b, SIZE_MAX);
  for (int i = 0; i < 10000; i++)
    assert_int_equal(rb_buf_add(&b, "ab", 2), RB_BUF_OK);
  assert_int_equal(b.len, 20000);
  assert_int_equal(strlen(rb_buf_str(&b)), 20000);
  assert_memory_equal(b.data + 19996, "abab", 4);
  assert_int_equal(rb_buf_adds(&b, "!"), RB_BUF_OK);
  assert_int_equal(b.data[b.len - 1], '!');
  /* binary content is kept, NUL bytes included */
  assert_int_equal(rb_buf_add(&b, "\0x", 2), RB_BUF_OK);
  assert_int_equal(b.len, 20003);
  rb_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
}

static void test_cap_refuses_whole_append(void **state)
{
  (void)state;
  rb_buf b;
  rb_buf_init(&b, 5);
  assert_int_equal(rb_buf_add(&b, "abc", 3), RB_BUF_OK);
  assert_int_equal(rb_buf_add(&b, "def", 3), RB_BUF_ETOOBIG);
  assert_string_equal(rb_buf_str(&b), "abc"); /* nothing of it was added */
  assert_int_equal(rb_buf_add(&b, "de", 2), RB_BUF_OK);
  assert_string_equal(rb_buf_str(&b), "abcde");
  assert_int_equal(rb_buf_add(&b, "", 0), RB_BUF_OK);
  assert_int_equal(rb_buf_add(&b, "f", 1), RB_BUF_ETOOBIG);
  assert_true(b.alloc <= 6 + 256); /* never allocates far past the cap */
  rb_buf_free(&b);
}

static void test_add_upto_keeps_what_fits(void **state)
{
  (void)state;
  rb_buf b;
  rb_buf_init(&b, 4);
  assert_int_equal(rb_buf_add_upto(&b, "ab", 2), RB_BUF_OK);
  assert_int_equal(rb_buf_add_upto(&b, "cdef", 4), RB_BUF_ETOOBIG);
  assert_string_equal(rb_buf_str(&b), "abcd");
  assert_int_equal(rb_buf_add_upto(&b, "g", 1), RB_BUF_ETOOBIG);
  assert_int_equal(b.len, 4);
  rb_buf_free(&b);
  /* a zero cap keeps nothing */
  rb_buf_init(&b, 0);
  assert_int_equal(rb_buf_add_upto(&b, "x", 1), RB_BUF_ETOOBIG);
  assert_int_equal(b.len, 0);
  rb_buf_free(&b);
}

static void test_addf_formats_and_respects_cap(void **state)
{
  (void)state;
  rb_buf b;
  rb_buf_init(&b, 13);
  assert_int_equal(rb_buf_addf(&b, "%s=%d", "n", 42), RB_BUF_OK);
  assert_string_equal(rb_buf_str(&b), "n=42");
  assert_int_equal(rb_buf_addf(&b, ";%08d", 7), RB_BUF_OK);
  assert_string_equal(rb_buf_str(&b), "n=42;00000007");
  assert_int_equal(b.len, 13);
  assert_int_equal(rb_buf_addf(&b, "%c", 'z'), RB_BUF_ETOOBIG);
  assert_string_equal(rb_buf_str(&b), "n=42;00000007");
  rb_buf_free(&b);
  /* long output grows the buffer in one step */
  rb_buf_init(&b, SIZE_MAX);
  assert_int_equal(rb_buf_addf(&b, "%5000s", "end"), RB_BUF_OK);
  assert_int_equal(b.len, 5000);
  assert_string_equal(b.data + 4997, "end");
  rb_buf_free(&b);
}

static void test_reset_keeps_memory_and_take_hands_over(void **state)
{
  (void)state;
  rb_buf b;
  rb_buf_init(&b, 100);
  assert_int_equal(rb_buf_adds(&b, "hello"), RB_BUF_OK);
  char *mem = b.data;
  rb_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(rb_buf_str(&b), "");
  assert_ptr_equal(b.data, mem);
  assert_int_equal(rb_buf_adds(&b, "again"), RB_BUF_OK);
  char *s = rb_buf_take(&b);
  assert_string_equal(s, "again");
  assert_null(b.data);
  assert_int_equal(b.max, 100); /* the cap survives take and free */
  free(s);
  assert_int_equal(rb_buf_adds(&b, "x"), RB_BUF_OK);
  rb_buf_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_buffer_reads_as_empty_string),
      cmocka_unit_test(test_appends_grow_and_stay_terminated),
      cmocka_unit_test(test_cap_refuses_whole_append),
      cmocka_unit_test(test_add_upto_keeps_what_fits),
      cmocka_unit_test(test_addf_formats_and_respects_cap),
      cmocka_unit_test(test_reset_keeps_memory_and_take_hands_over),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
