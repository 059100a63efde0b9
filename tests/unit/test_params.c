/* test_params.c: --var parsing and the merge of vars, scenario vars and
 * defaults, with the usage errors that name the parameter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"
#include "runner/params.h"

static rb_model *model(void)
{
  rb_model *m = rb_model_new("p.lua");
  m->name = strdup("p");
  rb_param *p = rb_model_add_param(m, "service");
  p->def = strdup("checkout");
  p = rb_model_add_param(m, "env");
  p->is_required = 1;
  p->description = strdup("where to act");
  rb_model_add_param(m, "note");
  return m;
}

static void test_var_is_split_at_first_equals(void **state)
{
  (void)state;
  char *k = NULL, *v = NULL, err[256];
  assert_int_equal(rb_params_parse_var("query=a=b", &k, &v, err, sizeof err), 0);
  assert_string_equal(k, "query");
  assert_string_equal(v, "a=b");
  free(k);
  free(v);
  assert_int_equal(rb_params_parse_var("empty=", &k, &v, err, sizeof err), 0);
  assert_string_equal(v, "");
  free(k);
  free(v);
}

static void test_var_without_equals_is_a_usage_error(void **state)
{
  (void)state;
  char *k = NULL, *v = NULL, err[256];
  assert_int_equal(rb_params_parse_var("service", &k, &v, err, sizeof err), -1);
  assert_non_null(strstr(err, "--var 'service': expected name=value"));
  assert_int_equal(rb_params_parse_var("=x", &k, &v, err, sizeof err), -1);
  assert_int_equal(rb_params_parse_var("a b=x", &k, &v, err, sizeof err), -1);
  assert_non_null(strstr(err, "is not a valid name"));
}

static void test_defaults_fill_unset_params(void **state)
{
  (void)state;
  rb_model *m = model();
  json_t *vars = json_pack("{s:s}", "env", "staging");
  char err[256];
  json_t *p = rb_params_resolve(m, vars, NULL, err, sizeof err);
  assert_non_null(p);
  assert_string_equal(json_string_value(json_object_get(p, "service")), "checkout");
  assert_string_equal(json_string_value(json_object_get(p, "env")), "staging");
  assert_null(json_object_get(p, "note")); /* no default, not required: absent */
  json_decref(p);
  json_decref(vars);
  rb_model_free(m);
}

static void test_var_beats_scenario_beats_default(void **state)
{
  (void)state;
  rb_model *m = model();
  json_t *vars = json_pack("{s:s}", "env", "prod");
  json_t *fallback = json_pack("{s:s, s:s}", "env", "drill-env", "service", "cart");
  char err[256];
  json_t *p = rb_params_resolve(m, vars, fallback, err, sizeof err);
  assert_string_equal(json_string_value(json_object_get(p, "env")), "prod");
  assert_string_equal(json_string_value(json_object_get(p, "service")), "cart");
  json_decref(p);
  json_decref(vars);
  json_decref(fallback);
  rb_model_free(m);
}

static void test_unknown_var_is_named_with_the_known_ones(void **state)
{
  (void)state;
  rb_model *m = model();
  json_t *vars = json_pack("{s:s, s:s}", "env", "x", "sevice", "y");
  char err[256];
  assert_null(rb_params_resolve(m, vars, NULL, err, sizeof err));
  assert_string_equal(err,
                      "unknown --var 'sevice': runbook 'p' takes service, env, note");
  json_decref(vars);
  rb_model_free(m);
}

static void test_missing_required_param_is_named(void **state)
{
  (void)state;
  rb_model *m = model();
  json_t *vars = json_object();
  char err[256];
  assert_null(rb_params_resolve(m, vars, NULL, err, sizeof err));
  assert_string_equal(
      err, "missing required parameter 'env' (where to act): pass --var env=VALUE");
  json_decref(vars);
  rb_model_free(m);
}

static void test_runbook_without_params_rejects_any_var(void **state)
{
  (void)state;
  rb_model *m = rb_model_new("n.lua");
  m->name = strdup("n");
  json_t *vars = json_pack("{s:s}", "x", "1");
  char err[256];
  assert_null(rb_params_resolve(m, vars, NULL, err, sizeof err));
  assert_string_equal(err, "unknown --var 'x': runbook 'n' takes no parameters");
  json_decref(vars);
  rb_model_free(m);
}

static void test_values_are_typed_and_checked(void **state)
{
  (void)state;
  rb_model *m = rb_model_new("p.lua");
  m->name = strdup("p");
  rb_param *n = rb_model_add_param(m, "n");
  n->type = RB_PARAM_NUMBER;
  rb_param *i = rb_model_add_param(m, "i");
  i->type = RB_PARAM_INTEGER;
  rb_param *b = rb_model_add_param(m, "b");
  b->type = RB_PARAM_BOOLEAN;
  json_t *vars = json_pack("{s:s, s:s, s:s}", "n", "0.25", "i", "12", "b", "false");
  char err[256];
  json_t *p = rb_params_resolve(m, vars, NULL, err, sizeof err);
  assert_non_null(p);
  assert_true(json_is_real(json_object_get(p, "n")));
  assert_int_equal(json_integer_value(json_object_get(p, "i")), 12);
  assert_true(json_is_false(json_object_get(p, "b")));
  /* a resumed run hands back the typed values its journal holds */
  json_t *again = rb_params_resolve(m, p, NULL, err, sizeof err);
  assert_true(json_equal(again, p));
  json_decref(again);
  json_decref(p);
  json_decref(vars);
  vars = json_pack("{s:s}", "i", "12x");
  assert_null(rb_params_resolve(m, vars, NULL, err, sizeof err));
  assert_string_equal(err, "--var i=12x: parameter 'i' must be an integer, not '12x'");
  json_decref(vars);
  rb_model_free(m);
}

static void test_enum_and_pattern(void **state)
{
  (void)state;
  rb_param p;
  memset(&p, 0, sizeof p);
  char *choices[] = {"a", "b"};
  p.type = RB_PARAM_ENUM;
  p.choices = choices;
  p.nchoices = 2;
  char err[256];
  assert_int_equal(rb_param_check(&p, "b", NULL, err, sizeof err), 0);
  assert_int_equal(rb_param_check(&p, "c", NULL, err, sizeof err), -1);
  assert_string_equal(err, "must be one of a, b, not 'c'");
  p.type = RB_PARAM_STRING;
  p.pattern = "[0-9]+";
  assert_int_equal(rb_param_check(&p, "123", NULL, err, sizeof err), 0);
  assert_int_equal(rb_param_check(&p, "12a", NULL, err, sizeof err), -1);
  assert_string_equal(err, "must match [0-9]+, not '12a'");
}

static void test_suggestions_stay_close(void **state)
{
  (void)state;
  const char *const known[] = {"approval", "timeout", "idempotent", "on", NULL};
  assert_string_equal(rb_suggest("aproval", known), "approval");
  assert_string_equal(rb_suggest("timeot", known), "timeout");
  assert_string_equal(rb_suggest("idempotnet", known), "idempotent");
  assert_null(rb_suggest("xyz", known));
  assert_null(rb_suggest("no", known)); /* two letters away from "on" is not a typo */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_var_is_split_at_first_equals),
      cmocka_unit_test(test_var_without_equals_is_a_usage_error),
      cmocka_unit_test(test_defaults_fill_unset_params),
      cmocka_unit_test(test_var_beats_scenario_beats_default),
      cmocka_unit_test(test_unknown_var_is_named_with_the_known_ones),
      cmocka_unit_test(test_missing_required_param_is_named),
      cmocka_unit_test(test_runbook_without_params_rejects_any_var),
      cmocka_unit_test(test_values_are_typed_and_checked),
      cmocka_unit_test(test_enum_and_pattern),
      cmocka_unit_test(test_suggestions_stay_close),
  };
  return cmocka_run_group_tests_name("params", tests, NULL, NULL);
}
