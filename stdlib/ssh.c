/* ssh.c: the `ssh` module: ssh.run (a write: exec only, would_run in dry-run
 * and drill), ssh.read (a read: exec and dry-run) and ssh.hosts, over the
 * engine in stdlib/ssh/, with one session per host kept for the whole run. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"
#include "stdlib/box.h"
#include "stdlib/rb_host.h"
#include "stdlib/modules.h"
#include "stdlib/opts.h"
#include "stdlib/preflight.h"
#include "stdlib/ssh/common.h"
#include "stdlib/ssh/preflight.h"

#define SSH_POOL_KEY "rb.ssh.pool.instance"
#define SSH_POOL_MT "rb.ssh.pool"
#define SSH_TARGET_MAX 65536

/* The run's sessions and inventory, in a userdata kept in the registry so
 * that __gc (the Lua state closing at the end of the run) disconnects them. */
typedef struct {
  rb_ssh_config cfg;
  rb_ssh_pool *pool;
  rb_ssh_inventory *inv;
  rb_ssh_pf_cache *pf; /* dry-run: each host preflighted once */
  int no_inventory;
} ssh_state;

static int ssh_state_gc(lua_State *L)
{
  /* not luaL_checkudata: while the state closes, the registry's metatable
   * entry may already be gone; only our metatable carries this __gc */
  ssh_state *st = lua_touserdata(L, 1);
  if (st == NULL)
    return 0;
  rb_ssh_pool_free(st->pool);
  rb_ssh_inventory_free(st->inv);
  rb_ssh_pf_cache_free(st->pf);
  st->pool = NULL;
  st->inv = NULL;
  st->pf = NULL;
  return 0;
}

/* The run's state, created on first use. Raises on a bad [ssh] config or an
 * unreadable inventory: nothing can be targeted without them. */
static ssh_state *ssh_get_state(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, SSH_POOL_KEY);
  ssh_state *st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (st != NULL)
    return st;
  rb_host *h = rb_host_get(L);
  char err[1024];
  st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  if (luaL_newmetatable(L, SSH_POOL_MT)) {
    lua_pushcfunction(L, ssh_state_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ssh_state_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  if (rb_ssh_config_read(h->config, &st->cfg, err, sizeof err) < 0)
    luaL_error(L, "ssh: %s", err);
  st->inv = rb_ssh_config_inventory(&st->cfg, &st->no_inventory, err, sizeof err);
  if (st->inv == NULL && !st->no_inventory)
    luaL_error(L, "ssh: %s", err);
  st->pool = rb_ssh_pool_new(&st->cfg.settings, err, sizeof err);
  if (st->pool == NULL)
    luaL_error(L, "ssh: %s", err);
  lua_setfield(L, LUA_REGISTRYINDEX, SSH_POOL_KEY);
  return st;
}

/* Target as a string: "app", "app-1,app-2", or a list of names (or of host
 * tables from ssh.hosts) joined with commas. Pushes it and returns it. */
static const char *ssh_check_target(lua_State *L, int idx)
{
  if (lua_type(L, idx) == LUA_TSTRING)
    return lua_tostring(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = luaL_len(L, idx);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "name");
      lua_remove(L, -2);
    }
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, idx, "target list must hold host or group names");
    if (i > 1)
      luaL_addchar(&b, ',');
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_replace(L, idx);
  return lua_tostring(L, idx);
}

/* Misuse is refused first, before any mode, inventory or host is looked at,
 * so a dry-run and a drill word a bad option as a real run does. */
static void ssh_check_names(lua_State *L, int opts, const char *fn)
{
  static const char *const known[] = {"allow_fail", "batch",   "max_fail", "output_kb",
                                      "parallel",   "timeout", NULL};
  if (lua_isnoneornil(L, opts))
    return;
  luaL_checktype(L, opts, LUA_TTABLE);
  rb_opts_check(L, opts, fn, known, NULL);
}

static rb_ssh_count ssh_opt_count(lua_State *L, int opts, const char *fn, const char *key,
                                  int def)
{
  rb_ssh_count c = {def, 0};
  lua_getfield(L, opts, key);
  if (lua_isinteger(L, -1)) {
    c.value = (int)rb_opts_int(L, opts, fn, key, 0, 1000000, def);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    char err[200], what[80];
    snprintf(what, sizeof what, "'%s'", key);
    if (rb_ssh_parse_count(lua_tostring(L, -1), what, &c, err, sizeof err) < 0)
      luaL_error(L, "%s: option %s", fn, err);
  } else if (!lua_isnil(L, -1)) {
    rb_opts_type_error(L, fn, key, "a count or a percentage string");
  }
  lua_pop(L, 1);
  return c;
}

typedef struct {
  rb_ssh_opts o;
  int allow_fail;
} ssh_call;

static void ssh_check_opts(lua_State *L, int opts, const ssh_state *st, int is_write,
                           ssh_call *c)
{
  const char *fn = is_write ? "ssh.run" : "ssh.read";
  memset(c, 0, sizeof *c);
  c->o.parallel = st->cfg.parallel;
  c->o.output_max = st->cfg.output_max;
  c->o.batch.value = -1;
  int64_t timeout = st->cfg.command_ms;
  /* a write stops at its first failure unless told otherwise; a read looks
   * at every host */
  c->o.max_fail = (rb_ssh_count){is_write ? 0 : -1, 0};
  if (lua_isnoneornil(L, opts)) {
    c->o.timeout_ms = rb_host_time_left(L, timeout);
    return;
  }
  luaL_checktype(L, opts, LUA_TTABLE);
  c->o.parallel = (int)rb_opts_int(L, opts, fn, "parallel", 1, 10000, c->o.parallel);
  c->o.batch = ssh_opt_count(L, opts, fn, "batch", -1);
  c->o.max_fail = ssh_opt_count(L, opts, fn, "max_fail", c->o.max_fail.value);
  timeout = rb_opts_duration(L, opts, fn, "timeout", timeout);
  lua_Integer kb = rb_opts_int(L, opts, fn, "output_kb", 1, 1024 * 1024, 0);
  if (kb > 0)
    c->o.output_max = (size_t)kb * 1024;
  c->allow_fail = rb_opts_bool(L, opts, fn, "allow_fail", 0);
  c->o.timeout_ms = rb_host_time_left(L, timeout);
}

/* Callbacks from the engine: timeline events and progress lines. */
typedef struct {
  rb_host *h;
  const char *command;
  int64_t last_progress_ms;
  int changed; /* a host finished since the last status line */
} ssh_cb;

static void ssh_on_result(void *arg, const rb_ssh_result *r)
{
  ssh_cb *cb = arg;
  json_t *d = rb_ssh_result_json(r, cb->command);
  if (d != NULL)
    cb->h->emit(cb->h, rb_ssh_result_event(r), d);
}

static void ssh_on_note(void *arg, const char *host, const char *msg)
{
  ssh_cb *cb = arg;
  cb->h->emit(cb->h, "note",
              json_pack("{s:s, s:s, s:s}", "op", "ssh", "host", host, "message", msg));
}

/* Hosts done of total and failures so far, at most once a second (and at
 * the end), as the host's updating status line. */
static void ssh_on_progress(void *arg, const rb_ssh_progress *p)
{
  ssh_cb *cb = arg;
  int64_t now = rb_now_mono_ms();
  int last = p->done == p->total;
  cb->changed |= !p->heartbeat;
  if (cb->h->status == NULL || p->total < 2 ||
      (!last && now - cb->last_progress_ms < 1000))
    return;
  cb->last_progress_ms = now;
  char line[300];
  rb_ssh_progress_line(p, line, sizeof line);
  cb->h->status(cb->h, line, !cb->changed && !last);
  cb->changed = 0;
}

static void ssh_push_host(lua_State *L, const rb_ssh_host *h, int port)
{
  lua_createtable(L, 0, 4);
  lua_pushstring(L, h->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, h->address);
  lua_setfield(L, -2, "address");
  lua_pushinteger(L, h->port > 0 ? h->port : port);
  lua_setfield(L, -2, "port");
  if (h->user != NULL) {
    lua_pushstring(L, h->user);
    lua_setfield(L, -2, "user");
  }
}

static void ssh_push_result(lua_State *L, const rb_ssh_result *r)
{
  lua_createtable(L, 0, 14);
  lua_pushstring(L, r->host);
  lua_setfield(L, -2, "host");
  lua_pushstring(L, r->address);
  lua_setfield(L, -2, "address");
  lua_pushboolean(L, r->ok);
  lua_setfield(L, -2, "ok");
  if (r->exit_code >= 0) {
    lua_pushinteger(L, r->exit_code);
    lua_setfield(L, -2, "exit_code");
  }
  if (r->signal != NULL) {
    lua_pushstring(L, r->signal);
    lua_setfield(L, -2, "signal");
  }
  lua_pushlstring(L, r->out ? r->out : "", r->out_len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, r->errout ? r->errout : "", r->err_len);
  lua_setfield(L, -2, "stderr");
  lua_pushinteger(L, r->duration_ms);
  lua_setfield(L, -2, "duration_ms");
  if (r->error != NULL) {
    lua_pushstring(L, r->error);
    lua_setfield(L, -2, "error");
  }
  lua_pushboolean(L, r->truncated);
  lua_setfield(L, -2, "truncated");
  lua_pushboolean(L, r->skipped);
  lua_setfield(L, -2, "skipped");
  lua_pushboolean(L, r->timed_out);
  lua_setfield(L, -2, "timed_out");
}

/* Pushes {ok, hosts, failed, succeeded, skipped}; returns failures. */
static size_t ssh_push_summary(lua_State *L, const rb_ssh_result *r, size_t n)
{
  size_t failed = 0, ok = 0, skipped = 0;
  lua_createtable(L, 0, 5);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    ssh_push_result(L, &r[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    if (r[i].skipped)
      skipped++;
    else if (r[i].ok)
      ok++;
    else
      failed++;
  }
  lua_setfield(L, -2, "hosts");
  lua_pushboolean(L, failed == 0 && skipped == 0);
  lua_setfield(L, -2, "ok");
  lua_pushinteger(L, (lua_Integer)failed);
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, (lua_Integer)ok);
  lua_setfield(L, -2, "succeeded");
  lua_pushinteger(L, (lua_Integer)skipped);
  lua_setfield(L, -2, "skipped");
  return failed;
}

/* "ssh: 2 of 5 hosts failed (max_fail 0): app-2: ...; app-4: ..." */
static void ssh_push_failure(lua_State *L, const rb_ssh_result *r, size_t n,
                             size_t failed, size_t limit, size_t skipped)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "ssh: %d of %d hosts failed (max_fail %d)", (int)failed, (int)n,
                  (int)limit);
  luaL_addvalue(&b);
  if (skipped > 0) {
    lua_pushfstring(L, ", %d not started", (int)skipped);
    luaL_addvalue(&b);
  }
  int shown = 0;
  for (size_t i = 0; i < n; i++) {
    if (r[i].ok || r[i].skipped)
      continue;
    if (shown++ == 5) {
      luaL_addstring(&b, "; ...");
      break;
    }
    luaL_addstring(&b, shown == 1 ? ": " : "; ");
    if (r[i].error != NULL)
      luaL_addstring(&b, r[i].error);
    else {
      lua_pushfstring(L, "ssh %s: exit code %d", r[i].host, r[i].exit_code);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
}

/* One would_run per host; reasons: each host's preflight result (NULL = ok),
 * or NULL in a drill. */
static void ssh_would_run(rb_host *h, const rb_ssh_host *hosts, size_t n,
                          const char *command, int port, const char **reasons)
{
  for (size_t i = 0; i < n; i++) {
    json_t *d = json_pack("{s:s, s:s, s:s, s:i, s:s, s:b}", "op", "ssh", "host",
                          hosts[i].name, "address", hosts[i].address, "port",
                          hosts[i].port > 0 ? hosts[i].port : port, "command", command,
                          "write", 1);
    if (reasons != NULL)
      json_object_set_new(d, "preflight", rb_preflight_json(hosts[i].name, reasons[i]));
    h->emit(h, "would_run", d);
  }
}

static int ssh_simulate(lua_State *L, rb_host *h, const rb_ssh_host *hosts, size_t n,
                        const char *command, int port, const char **reasons)
{
  ssh_would_run(h, hosts, n, command, port, reasons);
  lua_createtable(L, 0, 6);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    ssh_push_host(L, &hosts[i], port);
    lua_pushstring(L, hosts[i].name);
    lua_setfield(L, -2, "host");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "ok");
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "exit_code");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "stdout");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "stderr");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "simulated");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "hosts");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "ok");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, "succeeded");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "skipped");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "simulated");
  return 1;
}

/* Resolves the target; returns hosts the caller frees, or raises (nothing is
 * allocated when it does). */
static rb_ssh_host *ssh_resolve(lua_State *L, ssh_state *st, const char *target,
                                size_t *n)
{
  rb_ssh_host *hosts = NULL;
  char err[1024];
  if (strlen(target) > SSH_TARGET_MAX)
    luaL_error(L, "ssh: target is too long");
  if (rb_ssh_inventory_resolve(st->inv, target, &hosts, n, err, sizeof err) < 0)
    luaL_error(L, "%s", err);
  return hosts;
}

static void hosts_free(void *p, size_t n)
{
  rb_ssh_hosts_free(p, n);
}

static void results_free(void *p, size_t n)
{
  rb_ssh_results_free(p, n);
}

/* The resolved hosts, owned by a box on the stack (see stdlib/box.h). */
static rb_ssh_host *ssh_resolve_boxed(lua_State *L, ssh_state *st, const char *target,
                                      size_t *n)
{
  rb_box *box = rb_box_push(L, hosts_free);
  rb_ssh_host *hosts = ssh_resolve(L, st, target, n);
  rb_box_hold(box, hosts, *n);
  return hosts;
}

static void reasons_free(void *p, size_t n)
{
  (void)n;
  free(p);
}

/* A write not performed: a dry-run preflights its hosts first (a drill
 * touches nothing). hosts stay owned by the caller's box. */
static int ssh_dry(lua_State *L, rb_host *h, ssh_state *st, rb_ssh_host *hosts, size_t n,
                   const char *command)
{
  int port = st->cfg.settings.port;
  const char **reasons = NULL;
  char err[1024] = "";
  if (h->mode == RB_MODE_DRY_RUN) {
    int64_t cms = st->cfg.settings.connect_timeout_ms;
    rb_box *box = rb_box_push(L, reasons_free);
    reasons = calloc(n, sizeof *reasons);
    rb_box_hold(box, reasons, n);
    if (reasons == NULL)
      snprintf(err, sizeof err, "ssh: out of memory");
    else
      rb_ssh_preflight(st->pool, &st->pf, hosts, n, port,
                       rb_host_time_left(L, cms > 0 ? cms : 10000), reasons, err,
                       sizeof err);
  }
  if (err[0] != '\0')
    return luaL_error(L, "%s", err);
  ssh_simulate(L, h, hosts, n, command, port, reasons);
  return rb_host_result(L, "ssh.run", "simulated");
}

/* -- drills and recordings (docs/drills.md) ------------------------------ */

static int ssh_drill_answers(lua_State *L)
{
  json_t *a = NULL;
  char err[16];
  int rc = rb_host_drill_answer(L, "ssh", NULL, &a, err, sizeof err);
  json_decref(a);
  return rc == 1;
}

/* drill: each name the scenario's inventory lists as a group stands for its
 * hosts; the rest are hosts as written. Returns hosts, or a boxed copy. */
static rb_ssh_host *ssh_drill_expand(lua_State *L, rb_ssh_host *hosts, size_t *n)
{
  json_t *names = json_array();
  int any = 0;
  for (size_t i = 0; i < *n; i++) {
    json_t *call = json_pack("{s:s}", "target", hosts[i].name), *a = NULL;
    char err[16];
    if (rb_host_drill_answer(L, "inventory", call, &a, err, sizeof err) == 1) {
      json_array_extend(names, json_object_get(a, "hosts"));
      any = 1;
    } else {
      json_array_append_new(names, json_string(hosts[i].name));
    }
    json_decref(call);
    json_decref(a);
  }
  if (!any) {
    json_decref(names);
    return hosts;
  }
  size_t m = json_array_size(names);
  rb_box *box = rb_box_push(L, hosts_free);
  rb_ssh_host *out = calloc(m ? m : 1, sizeof *out);
  rb_box_hold(box, out, out ? m : 0);
  for (size_t i = 0; out && i < m; i++) {
    out[i].name = strdup(json_string_value(json_array_get(names, i)));
    out[i].address = strdup(json_string_value(json_array_get(names, i)));
  }
  json_decref(names);
  if (out == NULL)
    luaL_error(L, "ssh: out of memory");
  *n = m;
  return out;
}

/* One host's answer (exit, stdout, stderr, fail) as its result. */
static void ssh_drill_result(rb_ssh_result *r, const json_t *a)
{
  const char *fail = json_string_value(json_object_get(a, "fail"));
  r->exit_code = fail ? -1 : (int)json_integer_value(json_object_get(a, "exit"));
  r->out = strdup(json_string_value(json_object_get(a, "stdout")));
  r->errout = strdup(json_string_value(json_object_get(a, "stderr")));
  r->out_len = r->out ? strlen(r->out) : 0;
  r->err_len = r->errout ? strlen(r->errout) : 0;
  r->ok = !fail && r->exit_code == 0;
  if (fail != NULL) {
    size_t len = strlen(fail) + strlen(r->host ? r->host : "?") + 8;
    r->error = malloc(len);
    if (r->error)
      snprintf(r->error, len, "ssh %s: %s", r->host ? r->host : "?", fail);
  }
}

/* drill: the answer of one host; 0 when a write's host has none (it
 * succeeds), raises when a read's has none. */
static void ssh_drill_host(lua_State *L, rb_host *h, rb_ssh_result *r,
                           const char *command, int is_write)
{
  json_t *call = json_pack("{s:s, s:s, s:b}", "host", r->host ? r->host : "", "command",
                           command, "optional", is_write),
         *a = NULL;
  char err[1024];
  int rc = rb_host_drill_answer(L, "ssh", call, &a, err, sizeof err);
  json_decref(call);
  if (rc < 0)
    luaL_error(L, "%s: %s", is_write ? "ssh.run" : "ssh.read", err);
  r->ok = 1;
  if (rc == 1)
    ssh_drill_result(r, a);
  json_decref(a);
  json_t *d =
      json_pack("{s:s, s:s, s:s, s:i, s:s}", "op", "ssh", "host", r->host ? r->host : "",
                "command", command, "exit_code", r->exit_code, "answered_by",
                rc == 1 ? "scenario" : "none (a write succeeds)");
  if (r->error)
    json_object_set_new(d, "error", json_string(r->error));
  h->emit(h, r->ok ? "finished" : "failed", d);
}

/* drill: ssh.read and ssh.run answered host by host from calls.ssh, batch by
 * batch as the engine goes (max_fail skips the rest); a write is recorded as
 * would_run too. Returns -1 when the scenario answers no ssh call. */
static int ssh_drill(lua_State *L, rb_host *h, const ssh_call *c, int port,
                     rb_ssh_host *hosts, size_t n, const char *command, int is_write)
{
  if (!ssh_drill_answers(L))
    return -1;
  if (is_write)
    ssh_would_run(h, hosts, n, command, port, NULL);
  rb_box *rbox = rb_box_push(L, results_free);
  rb_ssh_result *res = calloc(n ? n : 1, sizeof *res);
  rb_box_hold(rbox, res, res ? n : 0);
  if (res == NULL)
    return luaL_error(L, "ssh: out of memory");
  size_t batch = rb_ssh_batch_size(c->o.batch, n),
         limit = rb_ssh_fail_limit(c->o.max_fail, n);
  size_t failed = 0, skipped = 0;
  for (size_t i = 0; i < n; i++) {
    res[i].host = strdup(hosts[i].name);
    res[i].address = strdup(hosts[i].address ? hosts[i].address : hosts[i].name);
    if (skipped || (i % batch == 0 && failed > limit)) {
      res[i].skipped = 1;
      res[i].exit_code = -1;
      skipped++;
      continue;
    }
    ssh_drill_host(L, h, &res[i], command, is_write);
    failed += !res[i].ok;
  }
  ssh_push_summary(L, res, n);
  if (failed > limit && !c->allow_fail) {
    ssh_push_failure(L, res, n, failed, limit, skipped);
    return lua_error(L);
  }
  return rb_host_result(L, is_write ? "ssh.run" : "ssh.read", "simulated");
}

/* dry-run --record: each host's answer to a read, as calls.ssh takes it. */
static void ssh_record(lua_State *L, const rb_ssh_result *res, size_t n,
                       const char *command)
{
  for (size_t i = 0; i < n; i++) {
    if (res[i].skipped)
      continue;
    json_t *call = json_pack("{s:s, s:s}", "host", res[i].host, "command", command);
    json_t *a = res[i].error && res[i].exit_code < 0
                    ? json_pack("{s:s}", "fail", res[i].error)
                    : json_pack("{s:i, s:s%, s:s%}", "exit", res[i].exit_code, "stdout",
                                res[i].out ? res[i].out : "", res[i].out_len, "stderr",
                                res[i].errout ? res[i].errout : "", res[i].err_len);
    rb_host_drill_record(L, "ssh", call, a);
    json_decref(call);
    json_decref(a);
  }
}

/* dry-run --record: the hosts a group target stood for, as the scenario's
 * inventory takes it (a list of targets is left as written). */
static void ssh_record_target(lua_State *L, const char *target, const rb_ssh_host *hosts,
                              size_t n)
{
  if (strchr(target, ',') != NULL || (n == 1 && strcmp(hosts[0].name, target) == 0))
    return;
  json_t *names = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(names, json_string(hosts[i].name));
  json_t *call = json_pack("{s:s}", "target", target),
         *a = json_pack("{s:o}", "hosts", names);
  rb_host_drill_record(L, "inventory", call, a);
  json_decref(call);
  json_decref(a);
}

static int ssh_do(lua_State *L, int is_write)
{
  const char *target = ssh_check_target(L, 1);
  const char *command = luaL_checkstring(L, 2);
  rb_host *h = rb_host_get(L);
  const char *what = is_write ? "ssh.run" : "ssh.read";
  ssh_check_names(L, 3, what);
  int real = 1;
  if (is_write)
    real = rb_host_may_write(L, what);
  else if (h->mode != RB_MODE_DRILL || !ssh_drill_answers(L))
    rb_host_check_read(L, what);
  /* A drill touches no system: it records the target names as written and
   * loads neither the inventory nor known_hosts. */
  ssh_state drill_st = {0};
  ssh_state *st = &drill_st;
  if (h->mode == RB_MODE_DRILL) {
    char err[1024];
    if (rb_ssh_config_read(h->config, &st->cfg, err, sizeof err) < 0)
      luaL_error(L, "ssh: %s", err);
  } else {
    st = ssh_get_state(L);
  }
  ssh_call c;
  ssh_check_opts(L, 3, st, is_write, &c);
  lua_settop(L, 3); /* the boxes go above the arguments */
  size_t n = 0;
  rb_ssh_host *hosts = ssh_resolve_boxed(L, st, target, &n); /* 4 */
  if (h->mode == RB_MODE_DRY_RUN)
    ssh_record_target(L, target, hosts, n);
  if (h->mode == RB_MODE_DRILL) {
    hosts = ssh_drill_expand(L, hosts, &n);
    int rc = ssh_drill(L, h, &c, st->cfg.settings.port, hosts, n, command, is_write);
    if (rc >= 0)
      return rc;
  }
  if (!real)
    return ssh_dry(L, h, st, hosts, n, command);
  if (is_write) {
    json_t *names = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(names, json_string(hosts[i].name));
    if (h->emit(h, "started",
                json_pack("{s:s, s:s, s:o, s:s}", "op", "ssh", "target", target, "hosts",
                          names, "command", command)) != 0) {
      rb_ssh_hosts_free(hosts, n);
      return luaL_error(
          L, "ssh.run %s: not run: the run refused it (its plan) or could not record it",
          target);
    }
  }
  ssh_cb cb = {h, command, 0, 0};
  c.o.on_result = ssh_on_result;
  c.o.on_progress = ssh_on_progress;
  c.o.on_note = ssh_on_note;
  c.o.arg = &cb;
  rb_ssh_result *res = NULL;
  char err[1024];
  rb_box *rbox = rb_box_push(L, results_free); /* 5 */
  int rc = rb_ssh_run(st->pool, hosts, n, command, &c.o, &res, err, sizeof err);
  rb_box_hold(rbox, res, rc < 0 ? 0 : n);
  if (rc < 0)
    return luaL_error(L, "%s", err);
  if (!is_write && h->mode == RB_MODE_DRY_RUN)
    ssh_record(L, res, n, command);
  size_t failed = ssh_push_summary(L, res, n);
  size_t skipped = 0;
  for (size_t i = 0; i < n; i++)
    skipped += res[i].skipped;
  size_t limit = rb_ssh_fail_limit(c.o.max_fail, n);
  if (failed > limit && !c.allow_fail) {
    ssh_push_failure(L, res, n, failed, limit, skipped);
    return lua_error(L);
  }
  return rb_host_result(L, what, "simulated");
}

static int ssh_hosts(lua_State *L)
{
  const char *target = ssh_check_target(L, 1);
  ssh_state drill_st = {0}; /* a drill resolves no inventory: names as given */
  ssh_state *st = &drill_st;
  rb_host *h = rb_host_get(L);
  if (h->mode != RB_MODE_DRILL) {
    st = ssh_get_state(L);
  } else { /* the [ssh] port, as ssh.run's would_run says */
    char err[1024];
    if (rb_ssh_config_read(h->config, &st->cfg, err, sizeof err) < 0)
      return luaL_error(L, "ssh: %s", err);
  }
  size_t n = 0;
  lua_settop(L, 1);
  rb_ssh_host *hosts = ssh_resolve_boxed(L, st, target, &n);
  if (rb_host_get(L)->mode == RB_MODE_DRILL)
    hosts = ssh_drill_expand(L, hosts, &n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    ssh_push_host(L, &hosts[i], st->cfg.settings.port);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int ssh_read(lua_State *L)
{
  return ssh_do(L, 0);
}

static int ssh_run(lua_State *L)
{
  return ssh_do(L, 1);
}

int luaopen_runbook_ssh(lua_State *L)
{
  static const luaL_Reg fns[] = {
      {"hosts", ssh_hosts}, {"read", ssh_read}, {"run", ssh_run}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
