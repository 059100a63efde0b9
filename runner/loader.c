/* loader.c: the runbook DSL and the conversion of a runbook's table into the
 * plain-C model. Every field is read raw, so a runbook's metatables cannot
 * run code while the host inspects it. */
#include "runner/loader.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/params.h"
#include "runner/base/util.h"

#define RB_KIND_FIELD "__rb_kind"
#define RB_LINE_FIELD "__rb_line"
/* Limits that keep loading and validation (n log n with the id index) well
 * under a second; a real decision tree is far smaller. */
#define RB_MAX_STEPS 20000
#define RB_MAX_BRANCHES 256

static const char *const dsl_kinds[] = {"check",   "action",   "wait",     "approval",
                                        "notify",  "escalate", "resolved", "escalated",
                                        "aborted", NULL};

/* check { ... } and friends: tag the table with its kind and the line of the
 * call so the validator can name file:line. */
static int dsl_step(lua_State *L)
{
  const char *kind = lua_tostring(L, lua_upvalueindex(1));
  if (lua_type(L, 1) == LUA_TSTRING) {
    /* resolved "Mitigated" is shorthand for resolved { title = ... } */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "title");
    lua_replace(L, 1);
  }
  if (lua_type(L, 1) != LUA_TTABLE)
    return luaL_error(L, "%s expects a table: %s { title = \"...\", ... }", kind, kind);
  lua_Debug ar;
  int line = 0;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
    line = ar.currentline;
  lua_pushstring(L, kind);
  lua_setfield(L, 1, RB_KIND_FIELD);
  lua_pushinteger(L, line);
  lua_setfield(L, 1, RB_LINE_FIELD);
  lua_settop(L, 1);
  return 1;
}

void rb_loader_install_dsl(sb_state *sb)
{
  lua_State *L = sb_lua(sb);
  for (const char *const *k = dsl_kinds; *k; k++) {
    lua_pushstring(L, *k);
    lua_pushcclosure(L, dsl_step, 1);
    lua_setglobal(L, *k);
  }
  lua_pushliteral(L, "runbook");
  lua_pushcclosure(L, dsl_step, 1);
  lua_setglobal(L, "runbook");
  sb_lock_globals(sb);
}

/* -- reading fields -------------------------------------------------------- */

typedef struct {
  const char *file;
  char *err;
  size_t errlen, used;
  int problems;
} lctx;

static void lproblem(lctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lproblem(lctx *c, int line, const char *fmt, ...)
{
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char buf[1024];
  snprintf(buf, sizeof buf, "%s:%d: %s\n", c->file, line, what);
  size_t n = strlen(buf);
  if (c->err && c->used + n < c->errlen) {
    memcpy(c->err + c->used, buf, n + 1);
    c->used += n;
  }
  c->problems++;
}

/* Raw field read; returns its type, value on the stack top. */
static int rawfield(lua_State *L, int t, const char *k)
{
  lua_pushstring(L, k);
  return lua_rawget(L, t < 0 ? t - 1 : t);
}

/* Fields each table accepts. A name not listed is a typo until proven
 * otherwise: `aproval = true` must never silently drop a gate. */
static const char *const runbook_fields[] = {"name",     "title",           "description",
                                             "params",   "start",           "steps",
                                             "severity", "approval_policy", NULL};
static const char *const param_fields[] = {"default", "required", "description", "type",
                                           "choices", "pattern",  NULL};
#define POLICY_FIELDS "min", "from", "not_self", "timeout", "confirm", "allow_as"
static const char *const approval_fields[] = {"required", POLICY_FIELDS, NULL};
static const char *const policy_fields[] = {POLICY_FIELDS, NULL};
#define STEP_COMMON "title", "kind", "timeout", "on_error"
static const char *const kind_fields[][14] = {
    [RB_STEP_CHECK] = {STEP_COMMON, "run", "on", NULL},
    [RB_STEP_ACTION] = {STEP_COMMON, "run", "on", "next", "approval", "idempotent", NULL},
    [RB_STEP_WAIT] = {STEP_COMMON, "until_", "condition", "every", "on", NULL},
    [RB_STEP_APPROVAL] = {STEP_COMMON, "question", "approval", "next", "on", NULL},
    [RB_STEP_NOTIFY] = {STEP_COMMON, "phase", "message", "impact", "run", "next", "on",
                        NULL},
    [RB_STEP_ESCALATE] = {STEP_COMMON, "to", "message", "impact", "run", "next", "on",
                          NULL},
    [RB_STEP_RESOLVED] = {"title", "kind", NULL},
    [RB_STEP_ESCALATED] = {"title", "kind", NULL},
    [RB_STEP_ABORTED] = {"title", "kind", NULL},
};

static int listed(const char *k, const char *const *known)
{
  for (; *known; known++)
    if (strcmp(*known, k) == 0)
      return 1;
  return 0;
}

/* Every key of table t must be in known; where names the table. */
static void only_fields(lctx *c, lua_State *L, int t, const char *const *known, int line,
                        const char *where)
{
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      char tmp[64];
      lproblem(c, line, "unexpected entry [%s] in %s: fields have names",
               sb_safe_tostring(L, -1, tmp, sizeof tmp), where);
      continue;
    }
    const char *k = lua_tostring(L, -1);
    if (strncmp(k, "__rb_", 5) == 0 || listed(k, known))
      continue;
    const char *near = rb_suggest(k, known);
    lproblem(c, line, "unknown field '%s' in %s%s%s%s", k, where,
             near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
  }
}

/* A string field copied, or NULL when absent; a problem when mistyped. */
static char *strfield(lctx *c, lua_State *L, int t, const char *k, int line,
                      const char *where)
{
  char *out = NULL;
  int ty = rawfield(L, t, k);
  if (ty == LUA_TSTRING)
    out = strdup(lua_tostring(L, -1));
  else if (ty != LUA_TNIL)
    lproblem(c, line, "field '%s' in %s must be a string, not a %s", k, where,
             lua_typename(L, ty));
  lua_pop(L, 1);
  return out;
}

/* A field that is text or a function of ctx returning text. */
static void textfield(lctx *c, lua_State *L, int t, const char *k, int line,
                      const char *where)
{
  int ty = rawfield(L, t, k);
  if (ty != LUA_TNIL && ty != LUA_TSTRING && ty != LUA_TFUNCTION)
    lproblem(c, line, "field '%s' in %s must be a string or a function, not a %s", k,
             where, lua_typename(L, ty));
  lua_pop(L, 1);
}

/* A boolean field: 1, 0, or 0 with a problem when mistyped. */
static int boolfield(lctx *c, lua_State *L, int t, const char *k, int line,
                     const char *where)
{
  int ty = rawfield(L, t, k), v = ty == LUA_TBOOLEAN && lua_toboolean(L, -1);
  if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
    lproblem(c, line, "field '%s' in %s must be true or false, not a %s", k, where,
             lua_typename(L, ty));
  lua_pop(L, 1);
  return v;
}

/* Durations are strings with a unit: a bare 5 could mean seconds or
 * minutes, and guessing is how a gate waits for the wrong time. */
static int64_t durfield(lctx *c, lua_State *L, int t, const char *k, int line,
                        const char *where)
{
  int64_t ms = 0;
  int ty = rawfield(L, t, k);
  char err[160];
  if (ty == LUA_TSTRING) {
    if (rb_parse_duration(lua_tostring(L, -1), &ms, err, sizeof err) != 0)
      lproblem(c, line, "field '%s' in %s: %s", k, where, err);
  } else if (ty != LUA_TNIL) {
    lproblem(c, line, "field '%s' in %s must be a duration such as \"30s\", not a %s", k,
             where, lua_typename(L, ty));
  }
  lua_pop(L, 1);
  return ms;
}

static void branches(lctx *c, lua_State *L, int t, rb_step *s, const char *where)
{
  int ty = rawfield(L, t, "on");
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (ty != LUA_TTABLE) {
    lproblem(c, s->line, "field 'on' in %s must be a table of branches", where);
    lua_pop(L, 1);
    return;
  }
  int on = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, on) != 0) {
    char key[128];
    int kt = lua_type(L, -2);
    if (kt == LUA_TBOOLEAN)
      snprintf(key, sizeof key, "%s", lua_toboolean(L, -2) ? "true" : "false");
    else if (kt == LUA_TSTRING)
      snprintf(key, sizeof key, "%s", lua_tostring(L, -2));
    else if (kt == LUA_TNUMBER && lua_isinteger(L, -2))
      snprintf(key, sizeof key, "%lld", (long long)lua_tointeger(L, -2));
    else
      key[0] = '\0';
    if (key[0] == '\0')
      lproblem(c, s->line,
               "step '%s': branch keys must be true, false, strings or integers", s->id);
    else if (lua_type(L, -1) != LUA_TSTRING)
      lproblem(c, s->line, "step '%s': branch '%s' must name a step (a string)", s->id,
               key);
    else if (s->nbranches >= RB_MAX_BRANCHES) {
      lproblem(c, s->line, "step '%s': more than %d branches", s->id, RB_MAX_BRANCHES);
      lua_pop(L, 2);
      break;
    } else
      rb_step_add_branch(s, key, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* A function field: 1 when present, a problem when it is something else. */
static int funcfield(lctx *c, lua_State *L, int t, const char *k, int line,
                     const char *where)
{
  int ty = rawfield(L, t, k);
  lua_pop(L, 1);
  if (ty != LUA_TNIL && ty != LUA_TFUNCTION)
    lproblem(c, line, "field '%s' in %s must be a function, not a %s", k, where,
             lua_typename(L, ty));
  return ty == LUA_TFUNCTION;
}

/* from = { "alice", "sre" }: a non-empty list of names. */
static void fromfield(lctx *c, lua_State *L, int t, rb_approval_policy *p, int line,
                      const char *where)
{
  int ty = rawfield(L, t, "from");
  size_t n = ty == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
  if (ty != LUA_TNIL && (ty != LUA_TTABLE || n == 0 || n > 64))
    lproblem(c, line,
             "field 'from' in %s must be a list of 1-64 names (accounts, "
             "approvers or groups), not a %s",
             where, ty == LUA_TTABLE ? "table of that size" : lua_typename(L, ty));
  else if (ty == LUA_TTABLE) {
    p->from = calloc(n, sizeof *p->from);
    for (size_t i = 1; p->from && i <= n; i++) {
      if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
        p->from[p->nfrom++] = strdup(lua_tostring(L, -1));
      else
        lproblem(c, line, "field 'from' in %s: entry %zu must be a name", where, i);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* A tri-state boolean: 0 absent, 1 false, 2 true. */
static int tri(lctx *c, lua_State *L, int t, const char *k, int line, const char *where)
{
  int ty = rawfield(L, t, k);
  lua_pop(L, 1);
  return ty == LUA_TNIL ? 0 : 1 + boolfield(c, L, t, k, line, where);
}

/* The fields of a policy table (approval_policy, or a step's approval). */
static void policy_table(lctx *c, lua_State *L, int t, rb_approval_policy *p, int line,
                         const char *where)
{
  int ty = rawfield(L, t, "min");
  if (ty == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
      lua_tointeger(L, -1) <= 16)
    p->min = (int)lua_tointeger(L, -1);
  else if (ty != LUA_TNIL)
    lproblem(c, line, "field 'min' in %s must be a whole number of approvers, 1-16",
             where);
  lua_pop(L, 1);
  fromfield(c, L, t, p, line, where);
  p->not_self = tri(c, L, t, "not_self", line, where);
  p->allow_as = tri(c, L, t, "allow_as", line, where);
  p->timeout_ms = durfield(c, L, t, "timeout", line, where);
  p->confirm = strfield(c, L, t, "confirm", line, where);
  if (p->confirm && (p->confirm[0] == '\0' || strlen(p->confirm) > 63))
    lproblem(c, line, "field 'confirm' in %s must be a word of 1-63 characters", where);
}

/* approval = true | false | { required = bool, min = n, from = {...}, ... } */
static void approval_field(lctx *c, lua_State *L, int t, rb_step *s, const char *where)
{
  int ty = rawfield(L, t, "approval");
  if (ty == LUA_TBOOLEAN) {
    s->approval = lua_toboolean(L, -1);
  } else if (ty == LUA_TTABLE) {
    char w[300];
    snprintf(w, sizeof w, "the approval of %s", where);
    int a = lua_gettop(L);
    only_fields(c, L, a, approval_fields, s->line, w);
    int rt = rawfield(L, a, "required");
    lua_pop(L, 1);
    s->approval = rt == LUA_TNIL || boolfield(c, L, a, "required", s->line, w);
    policy_table(c, L, a, &s->policy, s->line, w);
  } else if (ty != LUA_TNIL) {
    lproblem(c, s->line,
             "field 'approval' in %s must be true, false or a table { required = true }, "
             "not a %s",
             where, lua_typename(L, ty));
  }
  lua_pop(L, 1);
}

static void load_step(lctx *c, lua_State *L, int t, rb_model *m, const char *id)
{
  rb_step *s = rb_model_add_step(m, id);
  if (s == NULL) {
    lproblem(c, m->line, "step '%s': out of memory", id);
    return;
  }
  if (rawfield(L, t, RB_LINE_FIELD) == LUA_TNUMBER)
    s->line = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (s->line == 0)
    s->line = m->line;
  char where[256];
  snprintf(where, sizeof where, "step '%s'", id);
  char *kind = strfield(c, L, t, RB_KIND_FIELD, s->line, where);
  if (kind == NULL)
    kind = strfield(c, L, t, "kind", s->line, where);
  s->kind = rb_step_kind_parse(kind);
  free(kind);
  /* Without a kind there is no field list to hold it to; the validator
   * says the kind is missing. */
  if (s->kind != RB_STEP_UNKNOWN) {
    snprintf(where, sizeof where, "%s '%s'", rb_step_kind_name(s->kind), id);
    only_fields(c, L, t, kind_fields[s->kind], s->line, where);
  }
  s->title = strfield(c, L, t, "title", s->line, where);
  s->next = strfield(c, L, t, "next", s->line, where);
  s->on_error = strfield(c, L, t, "on_error", s->line, where);
  s->timeout_ms = durfield(c, L, t, "timeout", s->line, where);
  s->every_ms = durfield(c, L, t, "every", s->line, where);
  branches(c, L, t, s, where);
  int run = funcfield(c, L, t, "run", s->line, where);
  int until = funcfield(c, L, t, "until_", s->line, where);
  int cond = funcfield(c, L, t, "condition", s->line, where);
  s->has_run = s->kind == RB_STEP_WAIT ? until || cond : run;
  static const char *const texts[] = {"message", "impact", "to", "question", "phase"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
    textfield(c, L, t, texts[i], s->line, where);
  approval_field(c, L, t, s, where);
  s->idempotent = boolfield(c, L, t, "idempotent", s->line, where);
}

/* Scalar default as text: what --var would have said. */
static char *default_text(lua_State *L, int idx)
{
  int ty = lua_type(L, idx);
  if (ty == LUA_TSTRING || ty == LUA_TNUMBER)
    return strdup(lua_tostring(L, idx));
  if (ty == LUA_TBOOLEAN)
    return strdup(lua_toboolean(L, idx) ? "true" : "false");
  return NULL;
}

static void param_choices(lctx *c, lua_State *L, int v, rb_param *p, int line,
                          const char *where)
{
  int ty = rawfield(L, v, "choices");
  if (ty == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    p->choices = calloc((size_t)n + 1, sizeof *p->choices);
    for (lua_Integer i = 1; p->choices && i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TSTRING)
        p->choices[p->nchoices++] = strdup(lua_tostring(L, -1));
      else
        lproblem(c, line, "field 'choices' in %s must be a list of strings", where);
      lua_pop(L, 1);
    }
  } else if (ty != LUA_TNIL) {
    lproblem(c, line, "field 'choices' in %s must be a list of strings, not a %s", where,
             lua_typename(L, ty));
  }
  lua_pop(L, 1);
  if (p->type == RB_PARAM_ENUM && p->nchoices == 0)
    lproblem(c, line, "%s is an enum: list its choices = { \"a\", \"b\" }", where);
  if (p->type != RB_PARAM_ENUM && ty != LUA_TNIL)
    lproblem(c, line, "%s has choices but is not type = \"enum\"", where);
}

static void load_param_table(lctx *c, lua_State *L, int v, rb_param *p, int line,
                             const char *where)
{
  only_fields(c, L, v, param_fields, line, where);
  int dt = rawfield(L, v, "default");
  p->def = default_text(L, -1);
  if (dt != LUA_TNIL && p->def == NULL)
    lproblem(c, line, "field 'default' in %s must be a string, number or boolean", where);
  lua_pop(L, 1);
  p->is_required = boolfield(c, L, v, "required", line, where);
  p->description = strfield(c, L, v, "description", line, where);
  p->pattern = strfield(c, L, v, "pattern", line, where);
  char *type = strfield(c, L, v, "type", line, where);
  if (type && rb_param_type_parse(type, &p->type) != 0)
    lproblem(c, line,
             "field 'type' in %s: unknown type '%s' (string, number, integer, boolean, "
             "duration or enum)",
             where, type);
  free(type);
  param_choices(c, L, v, p, line, where);
}

static void load_params(lctx *c, lua_State *L, int t, rb_model *m)
{
  int ty = rawfield(L, t, "params");
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (ty != LUA_TTABLE) {
    lproblem(c, m->line, "params must be a table");
    lua_pop(L, 1);
    return;
  }
  int pt = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, pt) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lproblem(c, m->line, "params: names must be strings");
      lua_pop(L, 1);
      continue;
    }
    const char *name = lua_tostring(L, -2);
    char where[256];
    snprintf(where, sizeof where, "param '%s'", name);
    rb_param *p = rb_model_add_param(m, name);
    if (p == NULL) {
      lua_pop(L, 1);
      continue;
    }
    int vt = lua_type(L, -1);
    if (vt == LUA_TSTRING || vt == LUA_TNUMBER)
      p->def = strdup(lua_tostring(L, -1));
    else if (vt == LUA_TTABLE)
      load_param_table(c, L, lua_gettop(L), p, m->line, where);
    else
      lproblem(c, m->line, "param '%s' must be a default value or a table", name);
    char err[512];
    if (p->def && rb_param_check(p, p->def, NULL, err, sizeof err) != 0)
      lproblem(c, m->line, "default of %s: %s", where, err);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int cmp_steps(const void *a, const void *b)
{
  const rb_step *x = a, *y = b;
  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* Runs inside lua_pcall: the runbook table is at index 1. */
static int load_protected(lua_State *L)
{
  lctx *c = lua_touserdata(L, 2);
  rb_model *m = lua_touserdata(L, 3);
  int t = 1;
  if (rawfield(L, t, RB_LINE_FIELD) == LUA_TNUMBER)
    m->line = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (m->line == 0)
    m->line = 1; /* a plain table: no call to take the line from */
  only_fields(c, L, t, runbook_fields, m->line, "the runbook");
  m->name = strfield(c, L, t, "name", m->line, "the runbook");
  m->title = strfield(c, L, t, "title", m->line, "the runbook");
  m->description = strfield(c, L, t, "description", m->line, "the runbook");
  m->start = strfield(c, L, t, "start", m->line, "the runbook");
  m->severity = strfield(c, L, t, "severity", m->line, "the runbook");
  int pt = rawfield(L, t, "approval_policy");
  if (pt == LUA_TTABLE) {
    only_fields(c, L, -1, policy_fields, m->line, "approval_policy");
    policy_table(c, L, lua_gettop(L), &m->policy, m->line, "approval_policy");
  } else if (pt != LUA_TNIL)
    lproblem(c, m->line,
             "field 'approval_policy' in the runbook must be a table, not a %s",
             lua_typename(L, pt));
  lua_pop(L, 1);
  load_params(c, L, t, m);
  if (rawfield(L, t, "steps") != LUA_TTABLE) {
    lproblem(c, m->line, "runbook has no steps table");
    lua_pop(L, 1);
    return 0;
  }
  int st = lua_gettop(L);
  /* Count first: refusing a huge graph must not cost converting it. */
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, st) != 0) {
    lua_pop(L, 1);
    if (++count > RB_MAX_STEPS) {
      lua_pop(L, 2);
      lproblem(c, m->line, "more than %d steps", RB_MAX_STEPS);
      return 0;
    }
  }
  lua_pushnil(L);
  while (lua_next(L, st) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lproblem(c, m->line, "steps: every step needs a string id as its key");
    } else if (lua_type(L, -1) != LUA_TTABLE) {
      lproblem(c, m->line, "step '%s': a step must be a table such as check { }",
               lua_tostring(L, -2));
    } else {
      load_step(c, L, lua_gettop(L), m, lua_tostring(L, -2));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (m->nsteps > 1) /* qsort(NULL, 0, ...) is undefined */
    qsort(m->steps, m->nsteps, sizeof *m->steps, cmp_steps);
  rb_model_index(m);
  return 0;
}

int rb_loader_load(sb_state *sb, const char *path, rb_model **out, char *err,
                   size_t errlen)
{
  lua_State *L = sb_lua(sb);
  *out = NULL;
  if (sb_load_file(sb, path, err, errlen) != 0)
    return -1;
  char msg[1024];
  if (sb_pcall(sb, 0, 1, msg, sizeof msg, NULL, 0) != LUA_OK)
    return rb_err(err, errlen, "%s", msg);
  if (lua_type(L, -1) != LUA_TTABLE) {
    const char *tn = luaL_typename(L, -1);
    rb_err(err, errlen, "%s:1: the file must return runbook { ... } (it returned a %s)",
           path, tn);
    lua_pop(L, 1);
    return -1;
  }
  rb_model *m = rb_model_new(path);
  lctx c = {path, err, errlen, 0, 0};
  if (err && errlen)
    err[0] = '\0';
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "rb.runbook");
  lua_pushcfunction(L, load_protected);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, &c);
  lua_pushlightuserdata(L, m);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    char tmp[64];
    rb_err(err, errlen, "%s: %s", path, sb_safe_tostring(L, -1, tmp, sizeof tmp));
    lua_pop(L, 1);
    rb_model_free(m);
    return -1;
  }
  if (c.problems) {
    /* drop the trailing newline */
    size_t n = strlen(err);
    if (n && err[n - 1] == '\n')
      err[n - 1] = '\0';
    rb_model_free(m);
    return -1;
  }
  *out = m;
  return 0;
}

void rb_loader_push_step(sb_state *sb, const char *id)
{
  lua_State *L = sb_lua(sb);
  lua_getfield(L, LUA_REGISTRYINDEX, "rb.runbook");
  rawfield(L, -1, "steps");
  rawfield(L, -1, id);
  lua_replace(L, -3);
  lua_pop(L, 1);
}
