/* host.h: what a stdlib module may ask of the run that loaded it: the mode,
 * the step now running and its deadline, the config, and the timeline. */
#ifndef RB_HOST_H
#define RB_HOST_H

#include <jansson.h>
#include <lua.h>
#include <stdint.h>

#include "../runner/config.h"
#include "policy.h"

typedef struct rb_host rb_host;

/* Filled by the executor; stdlib modules read it and call emit. */
struct rb_host {
  rb_mode mode;
  const char *step_id;      /* the step running now, NULL while loading */
  rb_step_kind step_kind;   /* meaningful while step_id is set */
  int64_t step_deadline_ms; /* monotonic ms (rb_now_mono_ms), 0 = none */
  const rb_config *config;  /* never NULL */
  const char *incident;
  const char *run_id;
  /* Records one event of the current step on the timeline ("would_run",
   * "started", "finished", "failed", "note"); detail is stolen and is
   * scrubbed of secrets before it is written. Returns 0 or -1. */
  int (*emit)(rb_host *h, const char *event, json_t *detail);
  /* Prints one progress line for the operator (not on the timeline). */
  void (*progress)(rb_host *h, const char *line);
  void *priv;
};

/* The host of the run that owns L, stored in the registry by the executor. */
rb_host *rb_host_get(lua_State *L);
void rb_host_set(lua_State *L, rb_host *h);

/* Gate for side effects. Returns 1 when an operation that changes the world
 * may really be performed now (exec mode, inside an action/notify/escalate
 * step). Returns 0 when it must only be recorded as would_run (dry-run or
 * drill). Raises a Lua error when it is not allowed at all: a write from a
 * check or wait step, which must stay read-only. `what` names the operation
 * for the message ("ssh.run", "http POST"). */
int rb_host_may_write(lua_State *L, const char *what);
/* Gate for reads (cmd.read, http GET, prom queries). Returns normally in exec
 * and dry-run. Raises in drill, where nothing touches the network: drills
 * answer checks and waits from the scenario instead of running them. */
void rb_host_check_read(lua_State *L, const char *what);
/* Milliseconds left before the step's deadline (at least 1), or def_ms when
 * the step has none; min(def_ms, left) otherwise. */
int64_t rb_host_time_left(lua_State *L, int64_t def_ms);

/* Makes the table on the stack top a strict result: reading a field it
 * does not have raises "cmd.read: the result has no field 'exit' (it has:
 * code, ok, ...)" at the runbook's line, instead of a silent nil that turns
 * `r.exit == 0` into a wait polling until its timeout. optional names the
 * fields (space separated, may be NULL) that may be absent and then read as
 * nil. The metatable is protected. Returns 1, so a module's return site is
 * `return rb_host_result(L, "cmd.read", NULL);`. */
int rb_host_result(lua_State *L, const char *what, const char *optional);
/* In every such error: a wait does not poll again on a mistake in its code. */
#define RB_HOST_NO_FIELD "the result has no field"
/* The same for stdlib modules written in Lua, as a Lua function:
 * json.strict(t, what [, optional]) returns t (t may be nil). */
int rb_host_result_lua(lua_State *L);

/* Converts the Lua value at idx to JSON. Refuses (returns NULL with err)
 * functions, userdata, cycles, nesting deeper than 64, non-string keys in
 * maps, and non-finite numbers. Never raises. Caller owns the result. */
json_t *rb_lua_to_json(lua_State *L, int idx, char *err, size_t errlen);
/* Pushes v as a Lua value (null becomes nil in objects, json.null sentinel
 * in arrays is lightuserdata NULL). Checks stack space; raises on depth > 64. */
void rb_json_to_lua(lua_State *L, const json_t *v);

#endif
