/* opts.h: the one option check of the stdlib modules (docs/design.md,
 * "Stdlib bindings"): unknown and unnamed options refused, types worded once. */
#ifndef RB_STDLIB_OPTS_H
#define RB_STDLIB_OPTS_H

#include <lua.h>
#include <stdint.h>

/* An option that no longer exists, and what to write instead. */
typedef struct {
  const char *name;
  const char *hint; /* "use allow_fail = true" */
} rb_opt_retired;

/* Raises unless every key of the table at idx is a string in known (ends
 * with NULL): "cmd.run: unknown option 'timout' (did you mean 'timeout'?)".
 * A key in retired (may be NULL; ends with a NULL name) is refused with its
 * hint. fn names the function as the runbook calls it. */
void rb_opts_check(lua_State *L, int idx, const char *fn, const char *const *known,
                   const rb_opt_retired *retired);

/* Raises "fn: option 'name' must be <want>, not a <type of the value at top>";
 * want carries its article ("an integer", "a duration (\"30s\") or seconds"). */
int rb_opts_type_error(lua_State *L, const char *fn, const char *name, const char *want);

/* Pushes field name of the table at idx and returns 1 when it is set (and
 * of Lua type `type`); returns 0 and pushes nothing when it is nil. */
int rb_opts_field(lua_State *L, int idx, const char *fn, const char *name, int type);
/* A boolean option, def when unset. */
int rb_opts_bool(lua_State *L, int idx, const char *fn, const char *name, int def);
/* A string option (kept alive by the table), def when unset. */
const char *rb_opts_string(lua_State *L, int idx, const char *fn, const char *name,
                           const char *def);
/* An integer option within [lo, hi], def when unset. */
lua_Integer rb_opts_int(lua_State *L, int idx, const char *fn, const char *name,
                        lua_Integer lo, lua_Integer hi, lua_Integer def);
/* A duration option in milliseconds: "30s" or a number of seconds; def
 * when unset. */
int64_t rb_opts_duration(lua_State *L, int idx, const char *fn, const char *name,
                         int64_t def);

#endif
