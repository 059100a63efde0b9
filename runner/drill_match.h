/* drill_match.h: the call-level answers of a drill scenario: each module's
 * fields, its patterns (exact strings or {"glob": ...}), and matching. */
#ifndef RB_DRILL_MATCH_H
#define RB_DRILL_MATCH_H

#include <jansson.h>
#include <stddef.h>

/* 1 when module has call-level answers (prom, cmd, http, ssh, flags, deploy). */
int rb_drill_module_known(const char *module);
/* The modules, NULL-terminated, for suggestions. */
const char *const *rb_drill_modules(void);
/* Checks one entry of calls.<module> (where: "calls.http[2]"): its fields,
 * their types and patterns. Returns 0, or -1 with err naming where. */
int rb_drill_entry_check(const char *path, const char *module, const char *where,
                         const json_t *entry, char *err, size_t errlen);
/* A pattern: an exact string, or {"glob": "..."} where * matches any run of
 * characters and \* a star. Returns 0, or -1 with why. */
int rb_pattern_check(const json_t *p, char *why, size_t len);
int rb_pattern_match(const json_t *p, const char *s);
/* 1 when entry answers call (every matcher field of module matches). */
int rb_drill_entry_matches(const char *module, const json_t *entry, const json_t *call);
/* The call (or, with names = 0 for a one-field module, an entry) as text:
 * `query "up"`, `method "GET" url "https://x"`, argv as JSON. malloc'd. */
char *rb_drill_describe(const char *module, const json_t *v, int names);

#endif
