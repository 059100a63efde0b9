/* rb_host.h: the host interface, everything a stdlib module or a plugin may
 * ask of the binary that loaded it (gates, deadline, config, redaction,
 * Lua<->JSON, timeline, approvals, run stats), and the descriptor a plugin exports.
 *
 * This is the only header from outside runner/base/ that stdlib/ and the
 * plugins include. The binary exports exactly the functions declared here
 * (the dynamic list is generated from this file by CMakeLists.txt), so a
 * plugin links against nothing else. Changing a declaration, a struct
 * layout or an enum value here changes the ABI: bump RB_HOST_ABI_VERSION,
 * and the loader refuses plugins built against another version. */
#ifndef RB_HOST_H
#define RB_HOST_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stdlib/policy.h"

/* Covers this header and the vocabulary it includes (stdlib/policy.h).
 * 4: rb_host gained `status`, the updating line a fan-out keeps on screen
 * (a plugin built for 3 would read priv where status now is).
 * 5: rb_host_stats, the run figures the listener exports on /metrics.
 * 6: rb_approval_answer.confirm, rb_host_approval_refuse and _status (the
 * Slack and HTTP answers of a confirm gate). */
#define RB_HOST_ABI_VERSION 6

/* The exit codes of the runbook command (docs/cli.md), also returned by the
 * command a plugin provides. */
enum {
  RB_EXIT_OK = 0,         /* resolved (or the command succeeded) */
  RB_EXIT_FAILED = 1,     /* a step failed and nothing handled it */
  RB_EXIT_USAGE = 2,      /* bad command line: unknown option, missing --var */
  RB_EXIT_INVALID = 3,    /* the runbook or scenario is invalid */
  RB_EXIT_ABORTED = 4,    /* an approval was denied or the run was aborted */
  RB_EXIT_ESCALATED = 5,  /* the run handed the incident to a human team */
  RB_EXIT_MISMATCH = 6,   /* drill: the path differs from the scenario's expect */
  RB_EXIT_WOULD_FAIL = 7, /* dry-run: a write's preflight failed */
  RB_EXIT_BUSY = 8        /* refused: a live process owns the run or its exec lock */
};

/* Opaque to modules and plugins: read through the rb_host_config_* calls. */
typedef struct rb_config rb_config;
typedef struct rb_timeline rb_timeline;

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
  /* The state of a long operation ("3/5 hosts done, 1 failed"): on a
   * terminal one line rewritten in place, the last one left on screen;
   * otherwise a plain line, and for a heartbeat (only time passed) one
   * every 30 s at most. Not on the timeline. */
  void (*status)(rb_host *h, const char *line, int heartbeat);
  void *priv;
};

/* -- the run and its gates ------------------------------------------------- */

/* The host of the run that owns L, stored in the registry by the executor. */
rb_host *rb_host_get(lua_State *L);

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
/* drill: the scenario's call-level answer for one call of module ("prom":
 * {"query": ...}, "cmd": {"argv": [...]}, "http": {"method", "url"}, "ssh":
 * {"host", "command"}, "flags": {"op", "flag"}, "deploy": {"op", "service"};
 * docs/drills.md). Returns 1 with *out (new reference), or -1 with err naming
 * the call and the closest answer when none covers it (the caller raises
 * once it has cleaned up; the drill then ends invalid whatever the runbook
 * does with the error). A call with "optional": true (a write) that no entry
 * covers returns 0 instead. call NULL asks whether the scenario answers
 * module at all (1, *out true). Module "inventory" with {"target": name}
 * gives {"hosts": [...]} when the scenario's inventory names the group.
 * Returns 0 outside drills and in a drill that answers no call of module,
 * whose read then goes to rb_host_check_read as before. Never raises. */
int rb_host_drill_answer(lua_State *L, const char *module, const json_t *call,
                         json_t **out, char *err, size_t errlen);
/* dry-run with --record: keeps what one read of module answered (call as
 * for rb_host_drill_answer, answer in the scenario's form) for the scenario
 * file the run writes at its end; the runner redacts both. Ignored outside
 * a recording run and while the Lua registry's "rb.drill.quiet" is set (a
 * read inside a recorded prom, flags or deploy call). Never raises. */
void rb_host_drill_record(lua_State *L, const char *module, const json_t *call,
                          const json_t *answer);
/* Milliseconds left before the step's deadline (at least 1), or def_ms when
 * the step has none; min(def_ms, left) otherwise. */
int64_t rb_host_time_left(lua_State *L, int64_t def_ms);
/* The sandbox's memory budget in bytes; C code that allocates outside the
 * Lua state on a runbook's behalf (json.decode) holds itself to it too. */
size_t rb_host_memory_limit(lua_State *L);

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

/* -- typed config reads (docs/config.md) ----------------------------------- */

/* The path the config was read from, or NULL for the built-in defaults. */
const char *rb_host_config_file(const rb_config *c);
/* Typed reads. The default and the bounds come from the key table (the row
 * of section/key that the owning module contributes); there are no defaults
 * at call sites. Return 0, or -1 with err naming file:line (or the section
 * and key) when the value does not parse, is out of bounds, or the key is
 * not in the table. */
int rb_host_config_int(const rb_config *c, const char *section, const char *key,
                       long *out, char *err, size_t errlen);
int rb_host_config_bool(const rb_config *c, const char *section, const char *key,
                        int *out, char *err, size_t errlen);
int rb_host_config_duration(const rb_config *c, const char *section, const char *key,
                            int64_t *out_ms, char *err, size_t errlen);
/* A string or path key: the value, else the table default (often NULL, when
 * the module computes the default, like $USER). */
const char *rb_host_config_string(const rb_config *c, const char *section,
                                  const char *key);
/* A secret (KEY_env or KEY_file), registered with the redactor. Returns a
 * malloc'd string the caller wipes and frees, or NULL with err; *absent is
 * 1 when neither form is configured. */
char *rb_host_config_secret(const rb_config *c, const char *section, const char *key,
                            int *absent, char *err, size_t errlen);
/* 1 when some section's secret is read from environment variable var
 * (`token_env = VAR`), naming it in where ("[serve] token_env"); else 0. */
int rb_host_config_secret_env(const rb_config *c, const char *var, char *where,
                              size_t len);
/* Calls fn for each section name that starts with prefix ("flags."). */
void rb_host_config_each_section(const rb_config *c, const char *prefix,
                                 void (*fn)(const char *section, void *arg), void *arg);

/* The key table (docs/config.md): every key the file accepts, with its type,
 * default, bounds and one-line doc. Each module contributes the sections it
 * owns; they are built into the binary, which checks the file at start, and
 * listed in runner/config_keys.c. */
typedef enum {
  RB_CFG_STRING,
  RB_CFG_INT,
  RB_CFG_BOOL,
  RB_CFG_DURATION,
  RB_CFG_PATH,
  RB_CFG_SECRET, /* only accepted as KEY_env or KEY_file */
} rb_config_type;

typedef struct {
  const char *key;
  rb_config_type type;
  /* The default in the file's own syntax ("10s", "22", "false"), parsed by
   * the same code as a value; NULL when there is none or it is computed. */
  const char *def;
  /* How the docs show a NULL def ("`$USER`", "the system store"); NULL
   * means "none": the feature needing the key is off until it is set. */
  const char *def_doc;
  long min, max; /* int: inclusive bounds; both 0 means ">= 0" */
  const char *doc;
} rb_config_key;

/* A section ending in ".*" matches user-named sections ("flags.*" matches
 * [flags.checkout]). keys ends with a row whose key is NULL. */
typedef struct {
  const char *name;
  const char *title; /* the heading's text after the name, or "" */
  const rb_config_key *keys;
} rb_config_section;

/* -- redaction, JSON, timeline, approvals ---------------------------------- */

/* A malloc'd copy of s with every registered secret and the credentials of
 * URLs replaced by "[REDACTED]" (the one registry of the process). */
char *rb_host_redact(const char *s);

/* Converts the Lua value at idx to JSON. Refuses (returns NULL with err)
 * functions, userdata, cycles, nesting deeper than 64, non-string keys in
 * maps, and non-finite numbers. Never raises. Caller owns the result. */
json_t *rb_lua_to_json(lua_State *L, int idx, char *err, size_t errlen);
/* Pushes v as a Lua value (null becomes nil in objects, json.null sentinel
 * in arrays is lightuserdata NULL). Checks stack space; raises on depth > 64. */
void rb_json_to_lua(lua_State *L, const json_t *v);
/* The same pair for ctx as the journal keeps it (docs/timeline.md): NaN and
 * the infinities are {"$float": "NaN" | "Infinity" | "-Infinity"}, and a
 * table whose only key is "$float" is refused as reserved. */
json_t *rb_lua_to_json_tagged(lua_State *L, int idx, char *err, size_t errlen);
void rb_json_to_lua_tagged(lua_State *L, const json_t *v);

/* A timeline file opened for appending (docs/timeline.md); *repaired is 1
 * when a torn last line was cut off. Freed with rb_host_timeline_close. */
rb_timeline *rb_host_timeline_open(const char *path, int do_fsync, int *repaired,
                                   char *err, size_t errlen);
/* Appends ev (stolen; stamped and scrubbed of secrets). Returns 0 or -1. */
int rb_host_timeline_append(rb_timeline *tl, json_t *ev, char *err, size_t errlen);
void rb_host_timeline_close(rb_timeline *tl);

/* One answer. identity is who answers, established by the channel (the
 * account of the uid, the name of an HTTP credential), never by the
 * request; label is what `--as` said, shown next to it. */
typedef struct {
  const char *identity;
  const char *label; /* or NULL */
  int approve;
  const char *comment;
  const char *channel; /* "terminal", "cli", "http", "slack" */
  /* The word the answerer typed for a gate whose policy has `confirm`, or
   * NULL; an approval without the right word is refused. */
  const char *confirm;
} rb_approval_answer;

enum {
  RB_APPROVAL_OK = 0,
  RB_APPROVAL_ERROR = -1,     /* cannot write, bad ids */
  RB_APPROVAL_NOT_FOUND = -2, /* no such pending request */
  RB_APPROVAL_REFUSED = -3,   /* the policy does not let this identity answer */
  RB_APPROVAL_CONFLICT = -4,  /* decided already, or this identity answered */
};

/* Records one answer to a pending request, checked against the policy the
 * request carries. Returns RB_APPROVAL_OK with what the gate still needs in
 * msg, or another RB_APPROVAL_* with the reason in msg. */
int rb_host_approval_answer(const char *state_dir, const char *run_id,
                            const char *step_id, const rb_approval_answer *a, char *msg,
                            size_t msglen);
/* The pending approval requests, an array the caller owns, or NULL with err. */
json_t *rb_host_approval_pending(const char *state_dir, char *err, size_t errlen);
/* Puts a refusal the channel made itself (an unknown Slack user, a replayed
 * callback) on the waiting run's timeline, as a policy refusal is: a's
 * identity may be a channel's own id ("slack:U123"). RB_APPROVAL_OK, or
 * NOT_FOUND / CONFLICT (decided) with msg. */
int rb_host_approval_refuse(const char *state_dir, const char *run_id,
                            const char *step_id, const rb_approval_answer *a,
                            const char *why, char *msg, size_t msglen);
/* One gate, pending or decided: the request with "answered", "needs" and,
 * once decided, "decision". NULL with err when there is no such request. */
json_t *rb_host_approval_status(const char *state_dir, const char *run_id,
                                const char *step_id, char *err, size_t errlen);

/* The figures of `runbook stats` over the runs in state_dir that started
 * at or after since_ms (wall-clock ms, 0 for all): the document
 * docs/stats.md describes (schema "runbook.stats/1"), which the caller owns,
 * or NULL with err. The listener's /metrics reads its run figures here, so
 * the journals are read by the one reader `runbook runs` and `stats` use. */
json_t *rb_host_stats(const char *state_dir, int64_t since_ms, char *err, size_t errlen);

/* A local command's process group, for the supervisor that kills it with
 * the run (summary already redacted); nothing outside a supervised child. */
void rb_host_command_started(pid_t pgid, const char *summary);
void rb_host_command_ended(pid_t pgid);

/* -- plugins --------------------------------------------------------------- */

/* What the binary hands a plugin's command. */
typedef struct {
  const rb_config *config;
  const char *state_dir;
  const char *incident; /* --incident, or NULL */
} rb_host_cli;

/* The one symbol a plugin exports, named RB_PLUGIN_SYMBOL. The loader
 * checks abi_version and name before it touches anything else. */
typedef struct {
  int abi_version;    /* RB_HOST_ABI_VERSION the plugin was built against */
  const char *name;   /* "http", "ssh", "serve": runbook-<name>.so */
  lua_CFunction open; /* the stdlib module it provides, or NULL */
  /* The subcommand it provides (argv[0] is its name), or NULL. */
  int (*cli)(const rb_host_cli *host, int argc, char **argv);
} rb_plugin;

#define RB_PLUGIN_SYMBOL "rb_plugin_descriptor"
extern const rb_plugin rb_plugin_descriptor;

#endif
