/* loader.c: the runbook DSL and the conversion of a runbook's table into the
 * plain-C model. Every field is read raw, so a runbook's metatables cannot
 * run code while the host inspects it. */
#include "runner/loader.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/util.h"

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

static void lproblem(lctx *c, int line, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lproblem(lctx *c, int line, const char *step, const char *fmt, ...)
{
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char buf[1024];
  if (step)
    snprintf(buf, sizeof buf, "%s:%d: step '%s': %s\n", c->file, line, step, what);
  else
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

/* A string field copied, or NULL when absent; a problem when mistyped. */
static char *strfield(lctx *c, lua_State *L, int t, const char *k, int line,
                      const char *step)
{
  char *out = NULL;
  int ty = rawfield(L, t, k);
  if (ty == LUA_TSTRING)
    out = strdup(lua_tostring(L, -1));
  else if (ty != LUA_TNIL)
    lproblem(c, line, step, "field '%s' must be a string, not a %s", k,
             lua_typename(L, ty));
  lua_pop(L, 1);
  return out;
}

static int64_t durfield(lctx *c, lua_State *L, int t, const char *k, int line,
                        const char *step)
{
  int64_t ms = 0;
  int ty = rawfield(L, t, k);
  char err[160];
  if (ty == LUA_TNUMBER) {
    double v = lua_tonumber(L, -1);
    if (v < 0 || v > 365.0 * 86400)
      lproblem(c, line, step, "field '%s': %g seconds is out of range", k, v);
    else
      ms = (int64_t)(v * 1000);
  } else if (ty == LUA_TSTRING) {
    if (rb_parse_duration(lua_tostring(L, -1), &ms, err, sizeof err) != 0)
      lproblem(c, line, step, "field '%s': %s", k, err);
  } else if (ty != LUA_TNIL) {
    lproblem(c, line, step, "field '%s' must be a duration such as \"30s\", not a %s", k,
             lua_typename(L, ty));
  }
  lua_pop(L, 1);
  return ms;
}

static void branches(lctx *c, lua_State *L, int t, rb_step *s)
{
  int ty = rawfield(L, t, "on");
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (ty != LUA_TTABLE) {
    lproblem(c, s->line, s->id, "field 'on' must be a table of branches");
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
      lproblem(c, s->line, s->id, "branch keys must be true, false, strings or integers");
    else if (lua_type(L, -1) != LUA_TSTRING)
      lproblem(c, s->line, s->id, "branch '%s' must name a step (a string)", key);
    else if (s->nbranches >= RB_MAX_BRANCHES) {
      lproblem(c, s->line, s->id, "more than %d branches", RB_MAX_BRANCHES);
      lua_pop(L, 2);
      break;
    } else
      rb_step_add_branch(s, key, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int has_function(lua_State *L, int t, const char *k)
{
  int ty = rawfield(L, t, k);
  lua_pop(L, 1);
  return ty == LUA_TFUNCTION;
}

static void load_step(lctx *c, lua_State *L, int t, rb_model *m, const char *id)
{
  rb_step *s = rb_model_add_step(m, id);
  if (s == NULL) {
    lproblem(c, m->line, id, "out of memory");
    return;
  }
  if (rawfield(L, t, RB_LINE_FIELD) == LUA_TNUMBER)
    s->line = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (s->line == 0)
    s->line = m->line;
  char *kind = strfield(c, L, t, RB_KIND_FIELD, s->line, id);
  if (kind == NULL)
    kind = strfield(c, L, t, "kind", s->line, id);
  s->kind = rb_step_kind_parse(kind);
  free(kind);
  s->title = strfield(c, L, t, "title", s->line, id);
  s->next = strfield(c, L, t, "next", s->line, id);
  s->on_error = strfield(c, L, t, "on_error", s->line, id);
  s->timeout_ms = durfield(c, L, t, "timeout", s->line, id);
  s->every_ms = durfield(c, L, t, "every", s->line, id);
  branches(c, L, t, s);
  if (s->kind == RB_STEP_WAIT)
    s->has_run = has_function(L, t, "until_") || has_function(L, t, "condition");
  else
    s->has_run = has_function(L, t, "run");
  int ty = rawfield(L, t, "run");
  if (ty != LUA_TNIL && ty != LUA_TFUNCTION)
    lproblem(c, s->line, id, "field 'run' must be a function");
  lua_pop(L, 1);
  ty = rawfield(L, t, "approval");
  if (ty == LUA_TBOOLEAN) {
    s->approval = lua_toboolean(L, -1);
  } else if (ty == LUA_TTABLE) {
    rawfield(L, -1, "required");
    s->approval = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (ty != LUA_TNIL) {
    lproblem(c, s->line, id,
             "field 'approval' must be true or a table { required = true }");
  }
  lua_pop(L, 1);
  rawfield(L, t, "idempotent");
  s->idempotent = lua_toboolean(L, -1);
  lua_pop(L, 1);
}

static void load_params(lctx *c, lua_State *L, int t, rb_model *m)
{
  int ty = rawfield(L, t, "params");
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (ty != LUA_TTABLE) {
    lproblem(c, m->line, NULL, "params must be a table");
    lua_pop(L, 1);
    return;
  }
  int pt = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, pt) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lproblem(c, m->line, NULL, "params: names must be strings");
      lua_pop(L, 1);
      continue;
    }
    const char *name = lua_tostring(L, -2);
    rb_param *p = rb_model_add_param(m, name);
    if (p == NULL) {
      lua_pop(L, 1);
      continue;
    }
    int vt = lua_type(L, -1);
    if (vt == LUA_TSTRING || vt == LUA_TNUMBER) {
      p->def = strdup(lua_tostring(L, -1));
    } else if (vt == LUA_TTABLE) {
      int v = lua_gettop(L);
      int dt = rawfield(L, v, "default");
      if (dt == LUA_TSTRING || dt == LUA_TNUMBER)
        p->def = strdup(lua_tostring(L, -1));
      else if (dt == LUA_TBOOLEAN)
        p->def = strdup(lua_toboolean(L, -1) ? "true" : "false");
      lua_pop(L, 1);
      rawfield(L, v, "required");
      p->is_required = lua_toboolean(L, -1);
      lua_pop(L, 1);
      p->description = strfield(c, L, v, "description", m->line, NULL);
    } else {
      lproblem(c, m->line, NULL, "param '%s' must be a default value or a table", name);
    }
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
  m->name = strfield(c, L, t, "name", m->line, NULL);
  m->title = strfield(c, L, t, "title", m->line, NULL);
  m->description = strfield(c, L, t, "description", m->line, NULL);
  m->start = strfield(c, L, t, "start", m->line, NULL);
  load_params(c, L, t, m);
  if (rawfield(L, t, "steps") != LUA_TTABLE) {
    lproblem(c, m->line, NULL, "runbook has no steps table");
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
      lproblem(c, m->line, NULL, "more than %d steps", RB_MAX_STEPS);
      return 0;
    }
  }
  lua_pushnil(L);
  while (lua_next(L, st) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lproblem(c, m->line, NULL, "steps: every step needs a string id as its key");
    } else if (lua_type(L, -1) != LUA_TTABLE) {
      lproblem(c, m->line, lua_tostring(L, -2),
               "a step must be a table such as check { }");
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
