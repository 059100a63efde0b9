/* cmd.c: the `cmd` module: local commands from an argv list (never a shell
 * string), with a timeout, capped output, a minimal environment, and a
 * timeline record; a command dies with the executor that started it.
 * cmd.read is for looking (runs in exec and dry-run), cmd.run is for
 * changing things (runs only in exec; dry-run and drill record it as
 * would_run). */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "runner/base/redact.h"
#include "runner/base/util.h"
#include "stdlib/box.h"
#include "stdlib/cmd_engine.h"
#include "stdlib/cmd_env.h"
#include "stdlib/preflight.h"
#include "stdlib/rb_host.h"
#include "stdlib/modules.h"
#include "stdlib/opts.h"

extern char **environ;

/* The [cmd] config section this module owns (registered in config_keys.c). */
static const rb_config_key cmd_keys[] = {
    {"timeout", RB_CFG_DURATION, "60s", NULL, 0, 0, "default timeout of a local command"},
    {"output_kb", RB_CFG_INT, "256", NULL, 0, LONG_MAX,
     "stdout/stderr kept per command, in KiB (the rest is cut)"},
    {"env_allow", RB_CFG_STRING, NULL, NULL, 0, 0,
     "comma-separated names of environment variables commands inherit besides PATH, "
     "HOME, LANG, LC_*, TZ (a variable a `*_env` secret names is refused)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_cmd = {"cmd", "local commands", cmd_keys};
#define CMD_TAIL 2048 /* bytes of output kept on the timeline */

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A secret variable: env = { NAME = { section = "s", key = "k" } }. With r,
 * resolves it into r->env (registered for redaction by rb_host_config_secret). */
static void cmd_env_secret(lua_State *L, const char *name, rb_cmd_result *r)
{
  int v = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if ((strcmp(k, "section") != 0 && strcmp(k, "key") != 0) ||
        lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L,
                 "cmd: option 'env': %s takes { section = \"...\", key = \"...\" } "
                 "naming a config secret (got field '%s')",
                 name, k);
    lua_pop(L, 1);
  }
  lua_getfield(L, v, "section");
  lua_getfield(L, v, "key");
  const char *section = lua_tostring(L, -2), *key = lua_tostring(L, -1);
  if (section == NULL || key == NULL)
    luaL_error(L, "cmd: option 'env': %s needs both section= and key=", name);
  if (r != NULL) {
    char err[512];
    rb_host *h = rb_host_get(L);
    char *value = rb_host_config_secret(h->config, section, key, NULL, err, sizeof err);
    if (value == NULL)
      luaL_error(L, "cmd: option 'env': %s: %s", name, err);
    int rc = rb_cmd_env_set(&r->env, name, value);
    explicit_bzero(value, strlen(value));
    free(value);
    if (rc != 0)
      luaL_error(L, "cmd: out of memory");
  }
  lua_pop(L, 2);
}

/* Walks opts.env (at index t): checks every name and value and lists the
 * names in s; with r, also puts each variable into r->env. */
static void cmd_env_walk(lua_State *L, int t, rb_cmd_spec *s, rb_cmd_result *r)
{
  s->envc = 0;
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || !rb_cmd_env_name_ok(lua_tostring(L, -2)))
      luaL_error(L,
                 "cmd: option 'env': the keys are variable names (letters, digits, _)");
    const char *name = lua_tostring(L, -2);
    if (s->envc == CMD_MAX_ENV)
      luaL_error(L, "cmd: option 'env': more than %d variables", CMD_MAX_ENV);
    s->env_names[s->envc++] = name;
    size_t len = 0;
    if (lua_type(L, -1) == LUA_TTABLE) {
      cmd_env_secret(L, name, r);
    } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
      const char *value = lua_tolstring(L, -1, &len);
      if (strlen(value) != len)
        luaL_error(L, "cmd: option 'env': %s holds a NUL byte", name);
      if (r != NULL && rb_cmd_env_set(&r->env, name, value) != 0)
        luaL_error(L, "cmd: out of memory");
    } else {
      luaL_error(L,
                 "cmd: option 'env': %s is a %s; want a string or { section = ..., "
                 "key = ... } naming a config secret",
                 name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  qsort(s->env_names, (size_t)s->envc, sizeof s->env_names[0], name_cmp);
}

static json_t *cmd_env_json(const rb_cmd_spec *s)
{
  json_t *a = json_array();
  for (int i = 0; i < s->envc; i++)
    json_array_append_new(a, json_string(s->env_names[i]));
  return a;
}

static void cmd_parse(lua_State *L, const char *what, rb_cmd_spec *s)
{
  rb_host *h = rb_host_get(L);
  if (lua_type(L, 1) == LUA_TSTRING)
    luaL_argerror(L, 1,
                  "want an argv list such as {\"kubectl\", \"get\", \"pods\"}, "
                  "not a shell string");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1 || n > CMD_MAX_ARGS)
    luaL_argerror(L, 1, "argv must hold 1 to 256 strings");
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING && !lua_isnumber(L, -1))
      luaL_error(L, "bad argument #1: argv[%d] is a %s, not a string", (int)i,
                 luaL_typename(L, -1));
    s->argv[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the string stays alive: it is referenced by the table */
  }
  s->argc = (int)n;
  s->argv[n] = NULL;
  /* set by the getters; zero only because clang does not know that
   * luaL_error never returns (the fuzz build is clang's) */
  int64_t def_timeout = 0;
  long out_kb = 0;
  char err[256];
  if (rb_host_config_duration(h->config, "cmd", "timeout", &def_timeout, err,
                              sizeof err) != 0 ||
      rb_host_config_int(h->config, "cmd", "output_kb", &out_kb, err, sizeof err) != 0)
    luaL_error(L, "%s", err);
  s->timeout_ms = def_timeout;
  s->output_limit = (size_t)out_kb * 1024;
  if (lua_istable(L, 2)) {
    static const char *const known[] = {"allow_fail", "cwd",     "env",
                                        "stdin",      "timeout", NULL};
    rb_opts_check(L, 2, what, known, NULL);
    s->timeout_ms = rb_opts_duration(L, 2, what, "timeout", s->timeout_ms);
    s->allow_fail = rb_opts_bool(L, 2, what, "allow_fail", 0);
    if (rb_opts_field(L, 2, what, "stdin", LUA_TSTRING)) {
      s->stdin_data = lua_tolstring(L, -1, &s->stdin_len);
      lua_pop(L, 1); /* the option table keeps the string alive */
    }
    s->cwd = rb_opts_string(L, 2, what, "cwd", NULL);
    if (rb_opts_field(L, 2, what, "env", LUA_TTABLE)) {
      s->env_idx = 1;
      cmd_env_walk(L, lua_gettop(L), s, NULL);
      lua_pop(L, 1);
    }
  } else if (!lua_isnoneornil(L, 2)) {
    luaL_argerror(L, 2, "options must be a table");
  }
  s->timeout_ms = rb_host_time_left(L, s->timeout_ms);
}

static json_t *cmd_argv_json(const rb_cmd_spec *s)
{
  json_t *a = json_array();
  for (int i = 0; i < s->argc; i++)
    json_array_append_new(a, json_string(s->argv[i]));
  return a;
}

static json_t *cmd_tail(const rb_cmd_buf *b)
{
  size_t off = b->b.len > CMD_TAIL ? b->b.len - CMD_TAIL : 0;
  /* Do not start inside a UTF-8 sequence. */
  while (off < b->b.len && ((unsigned char)b->b.data[off] & 0xC0) == 0x80)
    off++;
  json_t *j = json_stringn(rb_buf_str(&b->b) + off, b->b.len - off);
  return j ? j : json_string("(output is not UTF-8)");
}

static void cmd_push_result(lua_State *L, const rb_cmd_result *r, int simulated)
{
  lua_createtable(L, 0, 9);
  lua_pushboolean(L, r->exit_code == 0);
  lua_setfield(L, -2, "ok");
  lua_pushinteger(L, r->exit_code);
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, r->signal);
  lua_setfield(L, -2, "signal");
  lua_pushlstring(L, rb_buf_str(&r->out.b), r->out.b.len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, rb_buf_str(&r->err.b), r->err.b.len);
  lua_setfield(L, -2, "stderr");
  lua_pushinteger(L, r->duration_ms);
  lua_setfield(L, -2, "duration_ms");
  lua_pushboolean(L, r->timed_out);
  lua_setfield(L, -2, "timed_out");
  lua_pushboolean(L, r->out.truncated || r->err.truncated);
  lua_setfield(L, -2, "truncated");
  lua_pushboolean(L, simulated);
  lua_setfield(L, -2, "simulated");
}

/* The would_run detail; a dry-run adds whether argv[0] can be found. */
static json_t *cmd_would_run(const rb_host *h, const rb_cmd_spec *s)
{
  json_t *d =
      json_pack("{s:s, s:o, s:b}", "op", "cmd", "command", cmd_argv_json(s), "write", 1);
  if (s->envc)
    json_object_set_new(d, "env", cmd_env_json(s));
  if (h->mode == RB_MODE_DRY_RUN) {
    char why[600];
    json_object_set_new(
        d, "preflight",
        rb_preflight_json("local",
                          rb_preflight_command(s->argv[0], s->cwd, why, sizeof why)));
  }
  return d;
}

static void result_free(void *p, size_t n)
{
  (void)n;
  rb_cmd_result *r = p;
  rb_buf_free(&r->out.b);
  rb_buf_free(&r->err.b);
  rb_cmd_env_free(&r->env);
  free(r);
}

/* drill: a read (or a write, optionally) answered by the scenario's
 * calls.cmd (exit, stdout, stderr) instead of run. Returns 1 when it was (r
 * filled), 0 when the read goes to the gate (a write: succeeds as before);
 * raises when the scenario answers cmd but not this read's argv. */
static int cmd_drill_answer(lua_State *L, const rb_cmd_spec *s, rb_cmd_result *r,
                            int is_write)
{
  json_t *call = json_pack("{s:o, s:b}", "argv", cmd_argv_json(s), "optional", is_write),
         *a = NULL;
  char err[1024];
  int rc = rb_host_drill_answer(L, "cmd", call, &a, err, sizeof err);
  json_decref(call);
  if (rc < 0)
    return luaL_error(L, "cmd.read: %s", err);
  if (rc == 0)
    return 0;
  const char *fail = json_string_value(json_object_get(a, "fail"));
  if (fail != NULL) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", s->argv[0], fail);
    json_decref(a);
    return luaL_error(L, "%s", msg);
  }
  const char *out = json_string_value(json_object_get(a, "stdout"));
  const char *er = json_string_value(json_object_get(a, "stderr"));
  rb_buf_init(&r->out.b, s->output_limit);
  rb_buf_init(&r->err.b, s->output_limit);
  r->exit_code = (int)json_integer_value(json_object_get(a, "exit"));
  int bad = rb_buf_adds(&r->out.b, out ? out : "") != 0 ||
            rb_buf_adds(&r->err.b, er ? er : "") != 0;
  json_decref(a);
  if (bad)
    return luaL_error(L, "cmd.read: the scenario's answer is over the output limit");
  return 1;
}

/* dry-run --record: a read's exit, stdout and stderr, as calls.cmd takes it. */
static void cmd_record(lua_State *L, const rb_cmd_spec *s, const rb_cmd_result *r)
{
  json_t *call = json_pack("{s:o}", "argv", cmd_argv_json(s));
  json_t *a = json_pack("{s:i, s:s%, s:s%}", "exit", r->exit_code, "stdout",
                        rb_buf_str(&r->out.b), r->out.b.len, "stderr",
                        rb_buf_str(&r->err.b), r->err.b.len);
  rb_host_drill_record(L, "cmd", call, a);
  json_decref(call);
  json_decref(a);
}

typedef struct {
  rb_host *h;
  const rb_cmd_spec *s;
} cmd_waiting;

/* "waiting for `kubectl rollout status deploy/x`: 12 s of 10m" as the
 * host's status line, then "`kubectl rollout status deploy/x` ran for 62 s". */
static void cmd_on_wait(void *arg, int64_t elapsed_ms, int done)
{
  cmd_waiting *w = arg;
  if (w->h->status == NULL)
    return;
  char line[300], el[32], to[32], argv[160];
  size_t used = 0;
  argv[0] = '\0';
  for (int i = 0; i < w->s->argc && used + 4 < sizeof argv; i++) {
    int n =
        snprintf(argv + used, sizeof argv - used, "%s%s", i ? " " : "", w->s->argv[i]);
    used += n > 0 ? (size_t)n : 0;
  }
  if (used >= sizeof argv - 4)
    memcpy(argv + sizeof argv - 4, "...", 4);
  rb_format_elapsed(elapsed_ms * 1000, el, sizeof el);
  rb_format_elapsed(w->s->timeout_ms * 1000, to, sizeof to);
  if (done)
    snprintf(line, sizeof line, "`%s` ran for %s", argv, el);
  else
    snprintf(line, sizeof line, "waiting for `%s`: %s of %s", argv, el, to);
  w->h->status(w->h, line, !done);
}

static int cmd_do(lua_State *L, int is_write)
{
  rb_cmd_spec s;
  memset(&s, 0, sizeof s);
  const char *what = is_write ? "cmd.run" : "cmd.read";
  cmd_parse(L, what, &s);
  rb_host *h = rb_host_get(L);
  int answered = 0;
  lua_settop(L, 2); /* the box goes above the arguments */
  /* The output buffers outlive Lua calls that may raise (the memory budget
   * while pushing stdout), so a box owns them: see stdlib/box.h. */
  rb_box *box = rb_box_push(L, result_free);
  rb_cmd_result *r = calloc(1, sizeof *r);
  if (r == NULL)
    return luaL_error(L, "cmd: out of memory");
  rb_box_hold(box, r, 1);
  char err[512];
  if (rb_cmd_env_base(&r->env, h->config, environ, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  if (is_write) {
    if (!rb_host_may_write(L, what)) {
      h->emit(h, "would_run", cmd_would_run(h, &s));
      if (h->mode == RB_MODE_DRILL && cmd_drill_answer(L, &s, r, 1)) {
        answered = 1;
      } else {
        r->exit_code = 0;
        cmd_push_result(L, r, 1);
        return rb_host_result(L, what, NULL);
      }
    }
  } else if (cmd_drill_answer(L, &s, r, 0)) {
    answered = 1;
  } else {
    rb_host_check_read(L, what);
  }
  /* Secrets are read only for a command that really runs, and before its
   * started event: a secret that cannot be read means nothing was sent. */
  if (s.env_idx && !answered) {
    lua_getfield(L, 2, "env");
    if (!lua_istable(L, -1))
      return luaL_error(L, "cmd: option 'env' must be a table of NAME = value");
    cmd_env_walk(L, lua_gettop(L), &s, r);
    lua_pop(L, 1);
  }
  if (is_write && !answered) {
    /* The intent is on disk before the command starts, or it does not. */
    json_t *d = json_pack("{s:s, s:s, s:o}", "op", "cmd", "host", "local", "command",
                          cmd_argv_json(&s));
    if (s.envc)
      json_object_set_new(d, "env", cmd_env_json(&s));
    if (h->emit(h, "started", d) != 0)
      return luaL_error(
          L, "cmd.run %s: not run: the run refused it (its plan) or could not record it",
          s.argv[0]);
  }
  cmd_waiting waiting = {h, &s};
  s.on_wait = cmd_on_wait;
  s.wait_arg = &waiting;
  int rc = answered ? 0 : rb_cmd_execute(&s, r);
  json_t *d =
      json_pack("{s:s, s:o, s:i, s:I}", "op", "cmd", "command", cmd_argv_json(&s),
                "exit_code", r->exit_code, "duration_ms", (json_int_t)r->duration_ms);
  if (r->signal)
    json_object_set_new(d, "signal", json_integer(r->signal));
  if (r->timed_out)
    json_object_set_new(d, "timed_out", json_true());
  if (r->interrupted)
    json_object_set_new(d, "interrupted", json_true());
  if (r->out.truncated || r->err.truncated)
    json_object_set_new(d, "truncated", json_true());
  if (answered)
    json_object_set_new(d, "answered_by", json_string("scenario"));
  json_object_set_new(d, "stdout_tail", cmd_tail(&r->out));
  json_object_set_new(d, "stderr_tail", cmd_tail(&r->err));
  char msg[512] = "";
  if (rc != 0)
    snprintf(msg, sizeof msg, "%s", r->error);
  else if (r->interrupted)
    snprintf(msg, sizeof msg,
             "command '%s' was killed after %lld ms: the run was asked to stop",
             s.argv[0], (long long)r->duration_ms);
  else if (r->timed_out)
    snprintf(msg, sizeof msg, "command '%s' timed out after %lld ms and was killed",
             s.argv[0], (long long)r->duration_ms);
  else if (r->signal)
    snprintf(msg, sizeof msg, "command '%s' was killed by signal %d", s.argv[0],
             r->signal);
  else if (r->exit_code != 0)
    snprintf(msg, sizeof msg, "command '%s' exited with code %d%s%.*s", s.argv[0],
             r->exit_code, r->err.b.len ? ": " : "",
             (int)(r->err.b.len > 300 ? 300 : r->err.b.len), rb_buf_str(&r->err.b));
  if (msg[0])
    json_object_set_new(d, "error", json_string(msg));
  int failed = msg[0] != '\0';
  h->emit(h, failed ? "failed" : "finished", d);
  if (!is_write && h->mode == RB_MODE_DRY_RUN && rc == 0)
    cmd_record(L, &s, r);
  if (failed && (rc != 0 || !s.allow_fail || r->timed_out || r->interrupted)) {
    lua_pushstring(L, msg);
    return lua_error(L);
  }
  cmd_push_result(L, r, answered);
  return rb_host_result(L, what, NULL);
}

static int cmd_read(lua_State *L)
{
  return cmd_do(L, 0);
}

static int cmd_run(lua_State *L)
{
  return cmd_do(L, 1);
}

int luaopen_runbook_cmd(lua_State *L)
{
  static const luaL_Reg fns[] = {{"read", cmd_read}, {"run", cmd_run}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
