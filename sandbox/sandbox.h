/* sandbox.h: creation of the Lua state a runbook runs in: allow-listed
 * libraries, strict globals, text-only chunks, and memory, instruction and
 * wall-clock budgets that a pcall inside the runbook cannot swallow. */
#ifndef SB_SANDBOX_H
#define SB_SANDBOX_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* One module `require` can return: a C opener, or Lua source text (loaded
 * as text only, under the name "@stdlib/<name>.lua"). */
typedef struct {
  const char *name;
  lua_CFunction open; /* NULL for a Lua module */
  const char *src;
  size_t len;
} sb_module;

typedef struct {
  /* The modules require finds, and nothing else: a NULL-terminated list of
   * tables, each ended by an entry whose name is NULL. NULL = none. */
  const sb_module *const *modules;
  /* Modules only the stdlib's own Lua chunks ("@stdlib/...") can require;
   * a runbook neither finds nor sees them. Ended by a NULL name; NULL = none. */
  const sb_module *internal;
  size_t memory_bytes;  /* cap on the Lua allocator */
  int64_t instructions; /* VM instructions for the whole run; 0 = none */
  size_t print_bytes;   /* cap on print/warn output per run */
  void (*print)(void *arg, const char *text, int is_warning); /* run's log */
  void *print_arg;
} sb_limits;

typedef struct sb_state sb_state;

/* A fresh state with the sandbox's globals, or NULL with err. Caller frees
 * with sb_free. */
sb_state *sb_new(const sb_limits *limits, char *err, size_t errlen);
/* Runs pending finalizers under the kill switch, then closes. NULL-safe. */
void sb_free(sb_state *sb);
lua_State *sb_lua(sb_state *sb);
sb_state *sb_from_lua(lua_State *L);

/* Locks the globals: from now on reading or writing an undeclared global
 * raises an error naming it (stdlib module names resolve lazily). */
void sb_lock_globals(sb_state *sb);

/* Sets the monotonic deadline (ms) the hook enforces and the words used when
 * it passes ("step 'verify' exceeded its timeout of 5m"). 0 = none. */
void sb_set_deadline(sb_state *sb, int64_t deadline_ms, const char *why);
/* Arms the kill switch: every later hook call raises `reason`, so the
 * runbook unwinds whatever it catches. Safe from a signal handler only for
 * the static reasons below. */
void sb_kill(sb_state *sb, const char *reason);
/* Async-signal-safe: marks the run interrupted (SIGINT/SIGTERM); the next
 * hook call kills it with "interrupted by the operator". */
void sb_interrupt(sb_state *sb);
/* 1 when the kill ends the run (memory, instructions, interrupt, explicit
 * sb_kill); 0 when it was the step's deadline, which a step's on_error may
 * handle. */
int sb_kill_is_fatal(const sb_state *sb);

/* Non-NULL once a budget was hit or sb_kill was called: why. */
const char *sb_killed(const sb_state *sb);
/* Clears the kill switch (between steps, after the executor recorded it). */
void sb_reset_kill(sb_state *sb);
size_t sb_memory_used(const sb_state *sb);
/* The memory budget in bytes; C code that allocates outside the Lua state
 * on a runbook's behalf (json.decode) holds itself to it too. */
size_t sb_memory_limit(const sb_state *sb);
int64_t sb_instructions_used(const sb_state *sb);

/* Loads a runbook file as a text chunk with the sandbox's globals. On
 * failure pushes nothing and fills err with "file:line: message". */
int sb_load_file(sb_state *sb, const char *path, char *err, size_t errlen);
/* lua_pcall with a traceback handler; on error fills err with the message
 * (made safe: a hostile error object never runs code here) and, when tb is
 * not NULL, the traceback. Returns the lua status. */
int sb_pcall(sb_state *sb, int nargs, int nresults, char *err, size_t errlen, char *tb,
             size_t tblen);
/* A string for the value at idx that runs no metamethod (for messages). */
const char *sb_safe_tostring(lua_State *L, int idx, char *buf, size_t len);

#endif
