/* test_sandbox.c: the sandbox's budgets and walls from C: memory,
 * instructions, the deadline, the kill switch, locked globals and text-only
 * chunks. The attack battery (tests/sandbox) covers hostile runbooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "sandbox/sandbox.h"

static sb_state *fresh(size_t mem, int64_t instr)
{
  sb_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.memory_bytes = mem;
  lim.instructions = instr;
  lim.print_bytes = 4096;
  char err[256];
  sb_state *sb = sb_new(&lim, err, sizeof err);
  assert_non_null(sb);
  return sb;
}

/* Runs chunk; returns the lua status and the message in err. */
static int run(sb_state *sb, const char *chunk, char *err, size_t len)
{
  lua_State *L = sb_lua(sb);
  err[0] = '\0';
  if (luaL_loadbufferx(L, chunk, strlen(chunk), "=t", "t") != LUA_OK) {
    snprintf(err, len, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LUA_ERRSYNTAX;
  }
  return sb_pcall(sb, 0, 0, err, len, NULL, 0);
}

static void test_memory_budget_stops_a_growing_table(void **state)
{
  (void)state;
  sb_state *sb = fresh(8u << 20, 0);
  char err[512];
  int st = run(sb, "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 64) .. i end",
               err, sizeof err);
  assert_int_not_equal(st, LUA_OK);
  assert_non_null(sb_killed(sb));
  assert_true(sb_kill_is_fatal(sb));
  assert_true(sb_memory_used(sb) <= sb_memory_limit(sb));
  sb_free(sb);
}

static void test_instruction_budget_stops_a_loop_that_pcall_cannot_catch(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 100000);
  char err[512];
  int st = run(sb, "while true do pcall(function() while true do end end) end", err,
               sizeof err);
  assert_int_not_equal(st, LUA_OK);
  assert_non_null(sb_killed(sb));
  assert_true(sb_kill_is_fatal(sb));
  assert_true(sb_instructions_used(sb) >= 100000);
  sb_free(sb);
}

static void test_deadline_is_not_fatal_and_resets(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 0);
  char err[512];
  sb_set_deadline(sb, rb_now_mono_ms() + 50, "step 'x' exceeded its timeout");
  int st = run(sb, "while true do end", err, sizeof err);
  assert_int_not_equal(st, LUA_OK);
  assert_non_null(strstr(sb_killed(sb), "exceeded its timeout"));
  assert_false(sb_kill_is_fatal(sb));
  sb_set_deadline(sb, 0, NULL);
  sb_reset_kill(sb);
  assert_null(sb_killed(sb));
  assert_int_equal(run(sb, "local x = 1 + 1", err, sizeof err), LUA_OK);
  sb_free(sb);
}

static void test_kill_switch_unwinds_pcall(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 0);
  char err[512];
  sb_kill(sb, "stopped by test");
  int st = run(sb, "for i = 1, 10 do pcall(function() for j = 1, 1e6 do end end) end",
               err, sizeof err);
  assert_int_not_equal(st, LUA_OK);
  assert_non_null(strstr(sb_killed(sb), "stopped by test"));
  sb_free(sb);
}

static void test_dangerous_globals_are_absent(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 0);
  char err[512];
  const char *absent[] = {"debug", "dofile", "io", "loadfile", "package"};
  for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
    char chunk[128];
    snprintf(chunk, sizeof chunk, "assert(%s == nil, '%s is there')", absent[i],
             absent[i]);
    if (run(sb, chunk, err, sizeof err) != LUA_OK)
      fail_msg("%s", err);
  }
  sb_free(sb);
}

static void test_locked_globals_name_the_undeclared_one(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 0);
  char err[512];
  sb_lock_globals(sb);
  assert_int_not_equal(run(sb, "local x = not_declared_here", err, sizeof err), LUA_OK);
  assert_non_null(strstr(err, "not_declared_here"));
  assert_int_not_equal(run(sb, "new_global = 1", err, sizeof err), LUA_OK);
  assert_non_null(strstr(err, "new_global"));
  sb_free(sb);
}

static void test_binary_chunks_are_refused(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 0);
  const char *base = getenv("RB_TEST_TMP");
  char path[512];
  snprintf(path, sizeof path, "%s/sb-binary-%d.lua", base ? base : "/tmp", (int)getpid());
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("\033Lua\x54", f);
  fclose(f);
  char err[512];
  assert_int_not_equal(sb_load_file(sb, path, err, sizeof err), 0);
  remove(path);
  sb_free(sb);
}

static int open_answer(lua_State *L)
{
  lua_pushinteger(L, 42);
  return 1;
}

/* The sandbox knows no module: require finds what the tables it was handed
 * hold (a C opener, Lua text) and names exactly those when it finds none. */
static void test_require_knows_only_the_tables_it_was_given(void **state)
{
  (void)state;
  static const char src[] = "return { twice = function(x) return 2 * x end }";
  static const sb_module c_mods[] = {{"answer", open_answer, NULL, 0},
                                     {NULL, NULL, NULL, 0}};
  static const sb_module lua_mods[] = {{"twice", NULL, src, sizeof src - 1},
                                       {NULL, NULL, NULL, 0}};
  static const sb_module *const tables[] = {c_mods, lua_mods, NULL};
  sb_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.modules = tables;
  char err[512];
  sb_state *sb = sb_new(&lim, err, sizeof err);
  assert_non_null(sb);
  assert_int_equal(run(sb,
                       "assert(require('answer') == 42) "
                       "assert(require('twice').twice(4) == 8)",
                       err, sizeof err),
                   LUA_OK);
  assert_int_not_equal(run(sb, "require('json')", err, sizeof err), LUA_OK);
  assert_non_null(strstr(err, "runbooks can require only answer, twice"));
  sb_free(sb);
}

static void test_safe_tostring_runs_no_metamethod(void **state)
{
  (void)state;
  sb_state *sb = fresh(16u << 20, 0);
  lua_State *L = sb_lua(sb);
  char err[512];
  assert_int_equal(run(sb,
                       "hostile = setmetatable({}, { __tostring = function() "
                       "error('ran') end })",
                       err, sizeof err),
                   LUA_OK);
  lua_getglobal(L, "hostile");
  char buf[64];
  const char *s = sb_safe_tostring(L, -1, buf, sizeof buf);
  assert_non_null(s);
  assert_null(strstr(s, "ran"));
  lua_pop(L, 1);
  sb_free(sb);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_budget_stops_a_growing_table),
      cmocka_unit_test(test_instruction_budget_stops_a_loop_that_pcall_cannot_catch),
      cmocka_unit_test(test_deadline_is_not_fatal_and_resets),
      cmocka_unit_test(test_kill_switch_unwinds_pcall),
      cmocka_unit_test(test_dangerous_globals_are_absent),
      cmocka_unit_test(test_locked_globals_name_the_undeclared_one),
      cmocka_unit_test(test_binary_chunks_are_refused),
      cmocka_unit_test(test_require_knows_only_the_tables_it_was_given),
      cmocka_unit_test(test_safe_tostring_runs_no_metamethod),
  };
  return cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
}
