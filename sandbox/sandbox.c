/* sandbox.c: the Lua state a runbook runs in. Only allow-listed libraries,
 * strict globals, text-only chunks, a capped allocator, and a count hook that
 * enforces instruction and wall-clock budgets and re-arms after a kill so a
 * pcall inside the runbook cannot swallow it. CPU burnt inside one C call is
 * the supervisor's job (runner/supervise.c), not this file's. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

#define SB_HOOK_EVERY 1000
#define SB_KILL_SLACK (1u << 20) /* room to unwind after the memory cap */
/* Room for the host between runbook calls: a runbook can read its usage
 * with collectgarbage("count") and stop a few bytes short of the cap, and
 * the host's next allocation may be outside a protected call (a refusal
 * there would hit the panic handler). */
#define SB_HOST_RESERVE (1u << 20)
#define SB_MAX_SOURCE (4u << 20)

struct sb_state {
  lua_State *L;
  sb_limits lim;
  size_t mem_used;
  size_t mem_limit;
  int64_t instr_used;
  int64_t deadline_ms;
  volatile sig_atomic_t killed;
  volatile sig_atomic_t interrupted;
  int kill_fatal;
  char kill_reason[320];
  char deadline_why[256];
  size_t printed;
  char warn_buf[1024]; /* a warning arrives in pieces (tocont) */
  size_t warn_len;
  int print_truncated;
  int closing;
  int kill_located; /* kill_reason already names file:line */
  int in_runbook;   /* depth of sb_pcall: runbook code may be running */
};

/* The allocator's cap: the budget, plus slack to unwind once killed, plus
 * the host's reserve while no runbook code runs. */
static void sb_update_limit(sb_state *sb)
{
  size_t lim = sb->lim.memory_bytes;
  if (sb->killed)
    lim += SB_KILL_SLACK;
  if (sb->in_runbook == 0)
    lim += SB_HOST_RESERVE;
  sb->mem_limit = lim;
}

static const char *const sb_removed_base[] = {"dofile", "loadfile", "require", NULL};
/* Globals a runbook may expect from stock Lua; naming them gives a clearer
 * message than "undeclared global". */
static const char *const sb_removed_globals[] = {"debug",    "dofile",  "io",
                                                 "loadfile", "package", NULL};
#define SB_REMOVED "sb.removed" /* registry: "os.execute" -> true, ... */
static const char *const sb_os_allowed[] = {"clock", "date", "difftime", "time", NULL};

static void sb_mark_killed_thread(lua_State *L);
static void sb_check_removed(lua_State *L, const char *what);

/* -- allocator ------------------------------------------------------------ */

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  sb_state *sb = ud;
  size_t old = ptr != NULL ? osize : 0;
  if (nsize == 0) {
    sb->mem_used -= old;
    free(ptr);
    return NULL;
  }
  if (nsize > old && sb->mem_used + (nsize - old) > sb->mem_limit) {
    if (!sb->killed) {
      snprintf(sb->kill_reason, sizeof sb->kill_reason,
               "memory budget exceeded (%zu MiB): the runbook allocated too much",
               sb->lim.memory_bytes >> 20);
      sb->killed = 1;
      sb->kill_fatal = 1;
      sb_update_limit(sb);
    }
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p != NULL)
    sb->mem_used = sb->mem_used - old + nsize;
  return p;
}

/* -- the hook ------------------------------------------------------------- */

static sb_state *sb_of(lua_State *L)
{
  return *(sb_state **)lua_getextraspace(L);
}

sb_state *sb_from_lua(lua_State *L)
{
  return sb_of(L);
}

/* Replaces each byte that is not part of valid UTF-8 with '?', in place:
 * messages end up in JSON, which cannot hold them otherwise. */
static void sb_scrub_utf8(char *s)
{
  unsigned char *p = (unsigned char *)s;
  while (*p) {
    int n = *p < 0x80             ? 0
            : (*p & 0xE0) == 0xC0 ? 1
            : (*p & 0xF0) == 0xE0 ? 2
            : (*p & 0xF8) == 0xF0 ? 3
                                  : -1;
    int ok = n >= 0;
    for (int i = 1; ok && i <= n; i++)
      ok = (p[i] & 0xC0) == 0x80;
    if (ok && n == 1 && *p < 0xC2)
      ok = 0; /* overlong */
    if (ok && n == 2 && ((*p == 0xE0 && p[1] < 0xA0) || (*p == 0xED && p[1] >= 0xA0)))
      ok = 0; /* overlong, or a UTF-16 surrogate */
    if (ok && n == 3 &&
        ((*p == 0xF0 && p[1] < 0x90) || *p > 0xF4 || (*p == 0xF4 && p[1] >= 0x90)))
      ok = 0; /* overlong, or beyond U+10FFFF */
    if (!ok) {
      *p++ = '?';
      continue;
    }
    p += n + 1;
  }
}

/* Prefixes the kill reason with the Lua line running when the hook first
 * saw the kill, so every budget message names file:line. */
static void sb_locate_kill(lua_State *L, sb_state *sb)
{
  if (sb->kill_located || sb->closing)
    return;
  sb->kill_located = 1;
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
    return;
  char tmp[sizeof sb->kill_reason + LUA_IDSIZE + 24];
  snprintf(tmp, sizeof tmp, "%s:%d: %s", ar.short_src, ar.currentline, sb->kill_reason);
  snprintf(sb->kill_reason, sizeof sb->kill_reason, "%.*s",
           (int)sizeof sb->kill_reason - 1, tmp);
  sb_scrub_utf8(sb->kill_reason);
}

static void sb_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  sb_state *sb = sb_of(L);
  int every = lua_gethookcount(L);
  sb->instr_used += every > 0 ? every : 1;
  if (sb->interrupted && !sb->killed) {
    snprintf(sb->kill_reason, sizeof sb->kill_reason, "interrupted by the operator");
    sb->killed = 1;
    sb->kill_fatal = 1;
  }
  if (!sb->killed && sb->lim.instructions > 0 && sb->instr_used > sb->lim.instructions) {
    snprintf(sb->kill_reason, sizeof sb->kill_reason,
             "instruction budget exceeded (%lld instructions)",
             (long long)sb->lim.instructions);
    sb->killed = 1;
    sb->kill_fatal = 1;
  }
  if (!sb->killed && sb->deadline_ms > 0 && rb_now_mono_ms() > sb->deadline_ms) {
    snprintf(sb->kill_reason, sizeof sb->kill_reason, "%s", sb->deadline_why);
    sb->killed = 1;
  }
  if (!sb->killed) {
    /* A coroutine re-armed to 1 by an earlier (non-fatal) kill goes back to
     * the normal rate. */
    if (every != SB_HOOK_EVERY)
      lua_sethook(L, sb_hook, LUA_MASKCOUNT, SB_HOOK_EVERY);
    return;
  }
  /* Re-arm on every instruction of this thread: whatever pcall caught the
   * last raise, the next instruction raises again. */
  lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
  if (sb->closing)
    luaL_error(L, "finalizer stopped: the run is over");
  sb_locate_kill(L, sb);
  sb_mark_killed_thread(L);
  lua_pushstring(L, sb->kill_reason);
  lua_error(L);
}

void sb_set_deadline(sb_state *sb, int64_t deadline_ms, const char *why)
{
  sb->deadline_ms = deadline_ms;
  snprintf(sb->deadline_why, sizeof sb->deadline_why, "%s",
           why ? why : "deadline passed");
}

void sb_interrupt(sb_state *sb)
{
  sb->interrupted = 1;
  lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, 1);
}

int sb_kill_is_fatal(const sb_state *sb)
{
  return sb->killed && sb->kill_fatal;
}

void sb_kill(sb_state *sb, const char *reason)
{
  if (!sb->killed) {
    snprintf(sb->kill_reason, sizeof sb->kill_reason, "%s", reason);
    sb->killed = 1;
    sb->kill_fatal = 1;
  }
  lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, 1);
}

const char *sb_killed(const sb_state *sb)
{
  return sb->killed ? sb->kill_reason : NULL;
}

void sb_reset_kill(sb_state *sb)
{
  if (sb->kill_fatal)
    return; /* a budget kill lasts for the rest of the run */
  sb->killed = 0;
  sb->kill_located = 0;
  sb->kill_reason[0] = '\0';
  sb_update_limit(sb);
  lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, SB_HOOK_EVERY);
}

size_t sb_memory_used(const sb_state *sb)
{
  return sb->mem_used;
}

size_t sb_memory_limit(const sb_state *sb)
{
  return sb->lim.memory_bytes;
}

int64_t sb_instructions_used(const sb_state *sb)
{
  return sb->instr_used;
}

/* -- print and warn ------------------------------------------------------- */

static void sb_emit_text(sb_state *sb, const char *text, int is_warning)
{
  if (sb->closing)
    return; /* the run's log may already be closed */
  size_t n = strlen(text);
  if (sb->printed + n > sb->lim.print_bytes) {
    if (!sb->print_truncated && sb->lim.print)
      sb->lim.print(sb->lim.print_arg, "[print output truncated: budget reached]", 1);
    sb->print_truncated = 1;
    return;
  }
  sb->printed += n;
  if (sb->lim.print)
    sb->lim.print(sb->lim.print_arg, text, is_warning);
}

/* Builds the line in a C buffer: a luaL_Buffer must not share the stack
 * with the strings luaL_tolstring pushes (it resizes the wrong slot). */
#define SB_PRINT_ARG_MAX 4096
#define SB_PRINT_LINE_MAX 16384

static int sb_print(lua_State *L)
{
  sb_state *sb = sb_of(L);
  int n = lua_gettop(L);
  char line[SB_PRINT_LINE_MAX];
  size_t used = 0;
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len); /* may run __tostring: Lua code */
    if (len > SB_PRINT_ARG_MAX)
      len = SB_PRINT_ARG_MAX;
    if (i > 1 && used + 1 < sizeof line)
      line[used++] = '\t';
    size_t room = sizeof line - 1 - used;
    memcpy(line + used, s, len < room ? len : room);
    used += len < room ? len : room;
    lua_pop(L, 1);
  }
  line[used] = '\0';
  sb_emit_text(sb, line, 0);
  return 0;
}

static void sb_warnf(void *ud, const char *msg, int tocont)
{
  sb_state *sb = ud;
  if (sb->warn_len == 0 && !tocont && msg[0] == '@') /* control messages ("@on") */
    return;
  size_t n = strlen(msg), room = sizeof sb->warn_buf - 1 - sb->warn_len;
  memcpy(sb->warn_buf + sb->warn_len, msg, n < room ? n : room);
  sb->warn_len += n < room ? n : room;
  sb->warn_buf[sb->warn_len] = '\0';
  if (tocont)
    return;
  sb_emit_text(sb, sb->warn_buf, 1);
  sb->warn_len = 0;
}

/* -- replacements for unsafe base functions -------------------------------- */

static int sb_load(lua_State *L)
{
  /* Call the original load with mode forced to "t"; with no env given the
   * chunk gets the sandbox's globals, which is all there is. */
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  if (n >= 2)
    lua_pushvalue(L, 2);
  else
    lua_pushnil(L);
  lua_pushliteral(L, "t");
  if (n >= 4) {
    lua_pushvalue(L, 4);
    lua_call(L, 4, LUA_MULTRET);
  } else {
    lua_call(L, 3, LUA_MULTRET);
  }
  return lua_gettop(L) - n;
}

static int sb_collectgarbage(lua_State *L)
{
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage('%s') is not allowed in runbooks (only 'count')",
                      opt);
  lua_pushnumber(L, (lua_Number)sb_of(L)->mem_used / 1024.0);
  return 1;
}

/* -- code the hook cannot see ------------------------------------------------
 * Lua runs a hook with hooks disabled, so when our hook raises a kill the
 * thread it raised in keeps hooks off until a pcall boundary restores them.
 * Runbook code that Lua would run in that window (an xpcall message
 * handler, the __close methods coroutine.wrap and coroutine.close run on a
 * dead coroutine) could loop forever; so could a __gc finalizer, which Lua
 * always runs with hooks off. The wrappers below never run runbook code
 * there. */

#define SB_KILLED_THREADS "sb.killed_threads"

/* Marks a coroutine the hook raised a kill in (weak keys). */
static void sb_mark_killed_thread(lua_State *L)
{
  if (lua_pushthread(L)) {
    lua_pop(L, 1);
    return; /* the main thread: sb_pcall restores its hooks */
  }
  if (lua_getfield(L, LUA_REGISTRYINDEX, SB_KILLED_THREADS) == LUA_TTABLE) {
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
  lua_pop(L, 2);
}

static int sb_thread_was_killed(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, SB_KILLED_THREADS);
  lua_pushvalue(L, idx);
  int killed = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return killed;
}

/* setmetatable as in lbaselib.c, refusing a metatable with __gc: Lua
 * registers a finalizer only if __gc is there when the metatable is set. */
static int sb_setmetatable(lua_State *L)
{
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc finalizers are not allowed in runbooks (Lua runs them "
                           "where the sandbox cannot stop them); use a <close> variable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* The message handler given to xpcall, called through this guard: after a
 * kill the error object passes through untouched. */
static int sb_xpcall_guard(lua_State *L)
{
  if (sb_of(L)->killed) {
    lua_settop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int sb_xpcall_k(lua_State *L, int status, lua_KContext ctx)
{
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

static int sb_xpcall(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checkstack(L, n + 2, "too many arguments");
  lua_pushvalue(L, lua_upvalueindex(1)); /* the real xpcall */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, sb_xpcall_guard, 1);
  for (int i = 3; i <= n; i++)
    lua_pushvalue(L, i);
  lua_callk(L, n, LUA_MULTRET, n, sb_xpcall_k);
  return sb_xpcall_k(L, LUA_OK, n);
}

static int sb_coclose(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTHREAD);
  if (sb_thread_was_killed(L, 1)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "the coroutine was stopped by the sandbox; its <close> "
                       "variables are not run");
    return 2;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* coroutine.wrap as in lcorolib.c, except that a coroutine stopped by a
 * kill does not get its <close> variables run. */
static int sb_auxwrap(lua_State *L)
{
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int narg = lua_gettop(L), nres = 0;
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pushliteral(L, "cannot resume dead coroutine");
    goto fail;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    goto fail;
  }
  lua_xmove(L, co, narg);
  int st = lua_resume(co, L, narg, &nres);
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      goto fail;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); /* the error */
  if (!sb_of(L)->killed && !sb_thread_was_killed(L, lua_upvalueindex(1))) {
    if (lua_resetthread(co) != LUA_OK) { /* close its <close> variables */
      lua_pop(L, 1);
      lua_xmove(co, L, 1);
    }
  }
  if (lua_type(L, -1) == LUA_TSTRING) {
    /* Unlike lcorolib, a position already leading the message is not added
     * again: nested wraps on one line would bury the error under it. */
    luaL_where(L, 1);
    size_t wl, ml;
    const char *w = lua_tolstring(L, -1, &wl), *m = lua_tolstring(L, -2, &ml);
    if (wl > 0 && (ml < wl || memcmp(w, m, wl) != 0)) {
      lua_insert(L, -2);
      lua_concat(L, 2);
    } else {
      lua_pop(L, 1);
    }
  }
fail:
  return lua_error(L);
}

static int sb_cowrap(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, sb_auxwrap, 1);
  return 1;
}

/* -- require --------------------------------------------------------------- */

/* The module tables this state was created with (sb_limits.modules). */
static const sb_module *const *sb_module_tables(lua_State *L)
{
  sb_state *sb = sb_from_lua(L);
  static const sb_module *const none[] = {NULL};
  return sb && sb->lim.modules ? sb->lim.modules : none;
}

static void sb_push_known_modules(lua_State *L)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int first = 1;
  for (const sb_module *const *t = sb_module_tables(L); *t; t++) {
    for (const sb_module *m = *t; m->name; m++) {
      if (!first)
        luaL_addstring(&b, ", ");
      luaL_addstring(&b, m->name);
      first = 0;
    }
  }
  luaL_pushresult(&b);
}

/* 1 when require was called from a chunk of a stdlib Lua module. */
static int sb_called_from_stdlib(lua_State *L)
{
  lua_Debug ar;
  if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "S", &ar))
    return 0;
  return strncmp(ar.source, "@stdlib/", 8) == 0;
}

/* The internal module called name, or NULL (sb_limits.internal). */
static const sb_module *sb_internal_module(lua_State *L, const char *name)
{
  sb_state *sb = sb_from_lua(L);
  for (const sb_module *m = sb ? sb->lim.internal : NULL; m && m->name; m++)
    if (strcmp(m->name, name) == 0)
      return m;
  return NULL;
}

static const sb_module *sb_find_module(lua_State *L, const char *name)
{
  for (const sb_module *const *t = sb_module_tables(L); *t; t++)
    for (const sb_module *m = *t; m->name; m++)
      if (strcmp(m->name, name) == 0)
        return m;
  return sb_internal_module(L, name);
}

/* Runs the module's opener (C) or chunk (Lua text, never bytecode) with its
 * name as the argument, leaving one result. */
static void sb_open_module(lua_State *L, const sb_module *m)
{
  if (m->open != NULL) {
    luaL_requiref(L, m->name, m->open, 0);
    return;
  }
  char chunk[128];
  snprintf(chunk, sizeof chunk, "@stdlib/%s.lua", m->name);
  if (luaL_loadbufferx(L, m->src, m->len, chunk, "t") != LUA_OK)
    lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
}

/* Pushes the module, loading it once per run. Returns 0 when name is not a
 * stdlib module (pushes nothing). */
static int sb_require_known(lua_State *L, const char *name)
{
  /* Before the cache: a stdlib module may have loaded it already. */
  if (sb_internal_module(L, name) && !sb_called_from_stdlib(L))
    return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "sb.loaded");
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 1);
  const sb_module *m = sb_find_module(L, name);
  if (m == NULL) {
    lua_pop(L, 1);
    return 0;
  }
  sb_open_module(L, m);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  lua_remove(L, -2);
  return 1;
}

static int sb_require(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  if (sb_require_known(L, name))
    return 1;
  sb_push_known_modules(L);
  return luaL_error(L, "module '%s' not found: runbooks can require only %s", name,
                    lua_tostring(L, -1));
}

/* -- strict globals -------------------------------------------------------- */

static int sb_global_index(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *name = lua_tostring(L, 2);
    if (sb_require_known(L, name)) {
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
      return 1;
    }
    sb_check_removed(L, name);
    return luaL_error(L, "undeclared global '%s' (a typo? declare it with local)", name);
  }
  return luaL_error(L, "undeclared global of type %s", luaL_typename(L, 2));
}

static int sb_global_newindex(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "assignment to undeclared global '%s' (use local)",
                      lua_tostring(L, 2));
  return luaL_error(L, "assignment to undeclared global of type %s", luaL_typename(L, 2));
}

/* -- assembling the globals ------------------------------------------------ */

static void sb_note_removed(lua_State *L, const char *lib, const char *name)
{
  lua_getfield(L, LUA_REGISTRYINDEX, SB_REMOVED);
  if (lib)
    lua_pushfstring(L, "%s.%s", lib, name);
  else
    lua_pushstring(L, name);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Raises "<what> is not available in runbooks" when `what` was removed by
 * the sandbox; returns otherwise. */
static void sb_check_removed(lua_State *L, const char *what)
{
  lua_getfield(L, LUA_REGISTRYINDEX, SB_REMOVED);
  int removed = lua_getfield(L, -1, what) != LUA_TNIL;
  lua_pop(L, 2);
  if (removed)
    luaL_error(L, "%s is not available in runbooks (removed by the sandbox)", what);
}

/* __index of the library copies: a removed function is an error naming it,
 * any other missing field is nil as usual. */
static int sb_lib_index(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushfstring(L, "%s.%s", lua_tostring(L, lua_upvalueindex(1)), lua_tostring(L, 2));
    sb_check_removed(L, lua_tostring(L, -1));
  }
  return 0;
}

static void sb_set_lib_meta(lua_State *L, int t, const char *lib)
{
  t = lua_absindex(L, t);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, lib);
  lua_pushcclosure(L, sb_lib_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, t);
}

/* Replaces global `lib` by a shallow copy holding only `keep` (all when
 * NULL) so the runbook can not alter the tables the stdlib and the string
 * metatable use. What is left out is noted as removed. */
static void sb_copy_lib(lua_State *L, const char *lib, const char *const *keep)
{
  lua_getglobal(L, lib);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3) != 0) {
    int ok = keep == NULL;
    for (const char *const *k = keep; k && *k && !ok; k++)
      ok = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), *k) == 0;
    if (ok) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    } else {
      if (lua_type(L, -2) == LUA_TSTRING)
        sb_note_removed(L, lib, lua_tostring(L, -2));
      lua_pop(L, 1);
    }
  }
  sb_set_lib_meta(L, -1, lib);
  lua_setglobal(L, lib);
  lua_pop(L, 1);
}

/* Replaces global `name` by a C closure over the original. */
static void sb_wrap_global(lua_State *L, const char *name, lua_CFunction f)
{
  lua_getglobal(L, name);
  lua_pushcclosure(L, f, 1);
  lua_setglobal(L, name);
}

static int sb_setup(lua_State *L)
{
  static const luaL_Reg libs[] = {
      {LUA_GNAME, luaopen_base},        {LUA_COLIBNAME, luaopen_coroutine},
      {LUA_MATHLIBNAME, luaopen_math},  {LUA_OSLIBNAME, luaopen_os},
      {LUA_STRLIBNAME, luaopen_string}, {LUA_TABLIBNAME, luaopen_table},
      {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, SB_REMOVED);
  lua_newtable(L); /* weak keys: coroutines the hook raised a kill in */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, SB_KILLED_THREADS);
  for (const char *const *n = sb_removed_base; *n; n++) {
    lua_pushnil(L);
    lua_setglobal(L, *n);
  }
  for (const char *const *n = sb_removed_globals; *n; n++)
    sb_note_removed(L, NULL, *n);
  /* string.dump is reachable through ("").dump, so it leaves the real
   * table, which also gets the removed-name __index; the string metatable
   * is hidden from getmetatable. */
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  sb_note_removed(L, LUA_STRLIBNAME, "dump");
  sb_set_lib_meta(L, -1, LUA_STRLIBNAME);
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  sb_copy_lib(L, LUA_OSLIBNAME, sb_os_allowed);
  sb_copy_lib(L, LUA_STRLIBNAME, NULL);
  sb_copy_lib(L, LUA_TABLIBNAME, NULL);
  sb_copy_lib(L, LUA_MATHLIBNAME, NULL);
  sb_copy_lib(L, LUA_UTF8LIBNAME, NULL);
  sb_copy_lib(L, LUA_COLIBNAME, NULL);

  sb_wrap_global(L, "load", sb_load);
  lua_pushcfunction(L, sb_setmetatable);
  lua_setglobal(L, "setmetatable");
  sb_wrap_global(L, "xpcall", sb_xpcall);
  lua_getglobal(L, LUA_COLIBNAME);
  lua_pushcfunction(L, sb_cowrap);
  lua_setfield(L, -2, "wrap");
  lua_getfield(L, -1, "close");
  lua_pushcclosure(L, sb_coclose, 1);
  lua_setfield(L, -2, "close");
  lua_pop(L, 1);
  lua_pushcfunction(L, sb_collectgarbage);
  lua_setglobal(L, "collectgarbage");
  lua_pushcfunction(L, sb_print);
  lua_setglobal(L, "print");
  lua_pushcfunction(L, sb_require);
  lua_setglobal(L, "require");

  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "sb.loaded");
  return 0;
}

void sb_lock_globals(sb_state *sb)
{
  lua_State *L = sb->L;
  lua_pushglobaltable(L);
  lua_newtable(L);
  lua_pushcfunction(L, sb_global_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sb_global_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
}

static int sb_panic(lua_State *L)
{
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
  fprintf(stderr, "runbook: internal error: unprotected Lua error: %s\n", msg);
  abort();
}

sb_state *sb_new(const sb_limits *limits, char *err, size_t errlen)
{
  sb_state *sb = calloc(1, sizeof *sb);
  if (sb == NULL) {
    rb_err(err, errlen, "out of memory creating the sandbox");
    return NULL;
  }
  sb->lim = *limits;
  if (sb->lim.memory_bytes == 0)
    sb->lim.memory_bytes = 64u << 20;
  if (sb->lim.print_bytes == 0)
    sb->lim.print_bytes = 1u << 20;
  sb->mem_limit = sb->lim.memory_bytes;
  sb->L = lua_newstate(sb_alloc, sb);
  if (sb->L == NULL) {
    rb_err(err, errlen, "cannot create a Lua state within %zu bytes",
           sb->lim.memory_bytes);
    free(sb);
    return NULL;
  }
  *(sb_state **)lua_getextraspace(sb->L) = sb;
  lua_atpanic(sb->L, sb_panic);
  lua_setwarnf(sb->L, sb_warnf, sb);
  lua_pushcfunction(sb->L, sb_setup);
  if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
    rb_err(err, errlen, "sandbox setup failed: %s", lua_tostring(sb->L, -1));
    sb_free(sb);
    return NULL;
  }
  lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, SB_HOOK_EVERY);
  sb_update_limit(sb);
  return sb;
}

void sb_free(sb_state *sb)
{
  if (sb == NULL)
    return;
  /* Finalizers run in lua_close; the kill switch stops any that loops. */
  sb->closing = 1; /* also silences print/warn: the log may be gone */
  sb->killed = 1;
  snprintf(sb->kill_reason, sizeof sb->kill_reason, "the run is over");
  lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, 1);
  lua_close(sb->L);
  free(sb);
}

lua_State *sb_lua(sb_state *sb)
{
  return sb->L;
}

/* -- loading and calling --------------------------------------------------- */

/* 1 when msg starts "chunk:line:" (chunk without spaces, as Lua prints
 * a runbook's path, possibly shortened to "...tail"). */
static int sb_has_position(const char *msg)
{
  const char *c = msg;
  while (*c && *c != ' ') {
    if (c[0] == ':' && c[1] >= '0' && c[1] <= '9') {
      const char *d = c + 1;
      while (*d >= '0' && *d <= '9')
        d++;
      if (*d == ':')
        return 1;
    }
    c++;
  }
  return 0;
}

int sb_load_file(sb_state *sb, const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return rb_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  char *buf = malloc(SB_MAX_SOURCE + 1);
  size_t n = buf ? fread(buf, 1, SB_MAX_SOURCE + 1, f) : 0;
  int rd_err = ferror(f);
  fclose(f);
  if (buf == NULL)
    return rb_err(err, errlen, "%s: out of memory", path);
  if (rd_err || n > SB_MAX_SOURCE) {
    free(buf);
    return rb_err(err, errlen, "%s: %s", path,
                  rd_err ? "read error" : "larger than 4 MiB, refusing to load");
  }
  if (n > 0 && buf[0] == LUA_SIGNATURE[0]) {
    free(buf);
    return rb_err(err, errlen, "%s:1: binary (precompiled) chunks are not allowed", path);
  }
  char chunk[4200];
  snprintf(chunk, sizeof chunk, "@%s", path);
  int st = luaL_loadbufferx(sb->L, buf, n, chunk, "t");
  free(buf);
  if (st != LUA_OK) {
    char tmp[64];
    const char *msg = sb_safe_tostring(sb->L, -1, tmp, sizeof tmp);
    /* The parser names file:line, except for errors such as a C stack
     * overflow from nesting; those get the file at least. */
    if (sb_has_position(msg))
      rb_err(err, errlen, "%s", msg);
    else
      rb_err(err, errlen, "%s: %s", path, msg);
    lua_pop(sb->L, 1);
    return -1;
  }
  return 0;
}

const char *sb_safe_tostring(lua_State *L, int idx, char *buf, size_t len)
{
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    return lua_tostring(L, idx);
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      snprintf(buf, len, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(buf, len, "%.14g", (double)lua_tonumber(L, idx));
    return buf;
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? "true" : "false";
  case LUA_TNIL:
    return "nil";
  default:
    snprintf(buf, len, "(error object is a %s value)", luaL_typename(L, idx));
    return buf;
  }
}

/* The message for an error object that is not a string or number: its type
 * and, for a table, a raw string "message"/"msg"/[1] field if it has one. */
static void sb_describe_error(lua_State *L, int idx, char *buf, size_t len)
{
  if (lua_type(L, idx) == LUA_TTABLE) {
    static const char *const fields[] = {"message", "msg", "error", NULL};
    for (const char *const *f = fields; *f; f++) {
      lua_pushstring(L, *f);
      int ty = lua_rawget(L, idx);
      if (ty == LUA_TSTRING) {
        snprintf(buf, len, "(error object is a table: %s = \"%.200s\")", *f,
                 lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
      }
      lua_pop(L, 1);
    }
  }
  snprintf(buf, len, "(error object is a %s value)", luaL_typename(L, idx));
}

static int sb_msgh(lua_State *L)
{
  char tmp[320];
  const char *msg;
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    msg = sb_safe_tostring(L, 1, tmp, sizeof tmp);
  } else {
    sb_describe_error(L, 1, tmp, sizeof tmp);
    msg = tmp;
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int sb_pcall(sb_state *sb, int nargs, int nresults, char *err, size_t errlen, char *tb,
             size_t tblen)
{
  lua_State *L = sb->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, sb_msgh);
  lua_insert(L, base);
  sb->in_runbook++;
  sb_update_limit(sb);
  int st = lua_pcall(L, nargs, nresults, base);
  sb->in_runbook--;
  sb_update_limit(sb);
  lua_remove(L, base);
  if (st == LUA_OK && sb->killed) {
    /* The budget was hit, the runbook caught the error and returned before
     * the hook came round again: the kill still stands. */
    lua_settop(L, base - 1);
    lua_pushstring(L, sb->kill_reason);
    st = LUA_ERRRUN;
  }
  if (st == LUA_OK)
    return st;
  const char *full = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
  /* The message is the traceback's first line. */
  const char *nl = strstr(full, "\nstack traceback:");
  size_t mlen = nl ? (size_t)(nl - full) : strlen(full);
  if (st == LUA_ERRMEM)
    rb_err(err, errlen, "%s", sb->killed ? sb->kill_reason : "out of memory");
  else if (err && errlen)
    snprintf(err, errlen, "%.*s", (int)(mlen < errlen ? mlen : errlen - 1), full);
  if (err && errlen)
    sb_scrub_utf8(err);
  if (tb && tblen)
    snprintf(tb, tblen, "%s", nl ? nl + 1 : "");
  lua_pop(L, 1);
  return st;
}
