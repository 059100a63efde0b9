/* http.c: the `http` module runbooks require: request/get/post/put/patch/
 * delete over the engine in stdlib/http/, gated by the run's mode. */
#include <ctype.h>
#include <stdint.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runner/base/buf.h"
#include "runner/base/redact.h"
#include "runner/base/sha256.h"
#include "runner/base/util.h"
#include "stdlib/rb_host.h"
#include "stdlib/http/engine.h"
#include "stdlib/http/preflight.h"
#include "stdlib/modules.h"
#include "stdlib/opts.h"

#define REQ_META "runbook.http.request"
#define MAX_RETRIES 10
/* Bound on one call when the step has no deadline of its own. */
#define DEF_TOTAL_MS (10 * 60 * 1000)
#define ERRLEN 1024

/* Everything one call allocates, owned by a userdata on the Lua stack so that
 * a raised error frees it through __gc. */
typedef struct {
  char method[16];
  char *url;      /* what is sent, query included */
  char *shown;    /* url as shown on the timeline and in messages */
  char *url_from; /* "section.key" when the URL itself is a secret */
  char **lines;   /* "Name: value" header lines sent */
  size_t nlines;
  json_t *shown_headers; /* for would_run: auth masked */
  char *body;
  size_t body_len;
  json_t *body_json; /* the json= body, shown by would_run */
  char *secret;      /* auth token or secret URL; wiped on free */
  int body_secret;   /* json_secret put a secret into body: wipe it too */
  int has_ctype;
  rb_http_resp resp;
  const char *fn;  /* the function as the runbook called it: "http.get" */
  char *snippet;   /* redacted start of an error body, for the message */
  json_t *decoded; /* the JSON response body while it becomes Lua values */
} req_state;

static void wipe_free(char *s)
{
  if (s != NULL) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

static int req_gc(lua_State *L)
{
  req_state *r = luaL_checkudata(L, 1, REQ_META);
  if (r->url_from != NULL)
    wipe_free(r->url); /* the URL is the secret */
  else
    free(r->url);
  free(r->shown);
  free(r->url_from);
  for (size_t i = 0; i < r->nlines; i++)
    wipe_free(r->lines[i]);
  free(r->lines);
  json_decref(r->shown_headers);
  if (r->body_secret)
    wipe_free(r->body);
  else
    free(r->body);
  json_decref(r->body_json);
  wipe_free(r->secret);
  rb_http_resp_clear(&r->resp);
  free(r->snippet);
  json_decref(r->decoded);
  memset(r, 0, sizeof *r);
  return 0;
}

static rb_host *host_of(lua_State *L)
{
  rb_host *h = rb_host_get(L);
  if (h == NULL)
    luaL_error(L, "http: not inside a run");
  return h;
}

static void emit(rb_host *h, const char *event, json_t *detail)
{
  if (h->emit != NULL)
    h->emit(h, event, detail);
  else
    json_decref(detail);
}

static const char *const known_options[] = {
    "allow_fail", "auth",     "body",       "ca_bundle",   "follow_redirects",
    "headers",    "insecure", "json",       "json_secret", "max_body_kb",
    "method",     "query",    "read",       "retries",     "retry_non_idempotent",
    "timeout",    "url",      "url_secret", NULL};
/* check = false was the opt-out before allow_fail (docs/design.md). */
static const rb_opt_retired retired_options[] = {{"check", "use allow_fail = true"},
                                                 {NULL, NULL}};

static void add_line(lua_State *L, req_state *r, const char *name, const char *value)
{
  size_t n = strlen(name) + strlen(value) + 3;
  char *line = malloc(n);
  char **lines = realloc(r->lines, (r->nlines + 1) * sizeof *lines);
  if (line == NULL || lines == NULL) {
    free(line);
    if (lines != NULL)
      r->lines = lines;
    luaL_error(L, "http: out of memory");
  }
  r->lines = lines;
  snprintf(line, n, "%s: %s", name, value);
  r->lines[r->nlines++] = line;
}

static void add_header(lua_State *L, req_state *r, const char *name, const char *value,
                       const char *shown)
{
  if (!rb_http_header_name_ok(name))
    luaL_error(L, "http: bad header name '%s'", name);
  if (!rb_http_header_value_ok(value))
    luaL_error(L, "http: header '%s' contains a line break", name);
  if (strcasecmp(name, "content-type") == 0)
    r->has_ctype = 1;
  add_line(L, r, name, value);
  json_object_set_new(r->shown_headers, name, json_string(shown ? shown : value));
}

/* The value of a secret named by {section=, key=} at the table on top. Raises
 * when it is not configured unless optional; returns NULL then. */
static char *table_secret(lua_State *L, const char *opt, int optional, char *from,
                          size_t fromlen)
{
  lua_getfield(L, -1, "section");
  lua_getfield(L, -2, "key");
  const char *section = lua_tostring(L, -2);
  const char *key = lua_tostring(L, -1);
  if (section == NULL || key == NULL)
    luaL_error(L, "http: option '%s' needs section= and key= naming a config secret",
               opt);
  snprintf(from, fromlen, "%s.%s", section, key);
  if (host_of(L)->mode == RB_MODE_DRILL) {
    /* A drill sends nothing, so it names the secret and never reads it. */
    lua_pop(L, 2);
    char *named = malloc(strlen(from) + 12);
    if (named == NULL)
      luaL_error(L, "http: out of memory");
    sprintf(named, "<secret %s>", from);
    return named;
  }
  char err[ERRLEN];
  int absent = 0;
  char *v =
      rb_host_config_secret(host_of(L)->config, section, key, &absent, err, sizeof err);
  lua_pop(L, 2);
  if (v == NULL && !(absent && optional))
    luaL_error(L, "http: %s", err);
  return v;
}

static void parse_auth(lua_State *L, req_state *r)
{
  if (!rb_opts_field(L, 1, r->fn, "auth", LUA_TTABLE))
    return;
  char from[256];
  int optional = lua_getfield(L, -1, "optional") == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  char *secret = table_secret(L, "auth", optional, from, sizeof from);
  if (secret == NULL) {
    lua_pop(L, 1);
    return;
  }
  r->secret = secret;
  lua_getfield(L, -1, "header");
  lua_getfield(L, -2, "scheme");
  const char *header = lua_isstring(L, -2) ? lua_tostring(L, -2) : "Authorization";
  const char *scheme = lua_tostring(L, -1);
  if (scheme == NULL && strcasecmp(header, "Authorization") == 0)
    scheme = "Bearer";
  if (scheme != NULL && *scheme == '\0')
    scheme = NULL; /* scheme = "": the header carries the bare secret */
  char shown[128];
  snprintf(shown, sizeof shown, "%s%s%s", scheme ? scheme : "", scheme ? " " : "",
           RB_REDACTED);
  size_t n = strlen(secret) + (scheme ? strlen(scheme) + 1 : 0) + 1;
  char *value = malloc(n);
  if (value == NULL) {
    luaL_error(L, "http: out of memory");
    return; /* not reached: said for the compiler, which does not know it */
  }
  snprintf(value, n, "%s%s%s", scheme ? scheme : "", scheme ? " " : "", secret);
  if (!rb_http_header_value_ok(value)) {
    wipe_free(value);
    luaL_error(L, "http: secret %s contains a line break", from);
  }
  add_line(L, r, header, value);
  wipe_free(value);
  json_object_set_new(r->shown_headers, header, json_string(shown));
  lua_pop(L, 3);
}

static void parse_headers(lua_State *L, req_state *r)
{
  if (!rb_opts_field(L, 1, r->fn, "headers", LUA_TTABLE))
    return;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_error(L, "http: headers must map names to strings");
    add_header(L, r, lua_tostring(L, -2), lua_tostring(L, -1), NULL);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void append_query(lua_State *L, req_state *r, const char *name, int idx)
{
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
  } else if (lua_type(L, idx) == LUA_TNUMBER || lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
  } else {
    luaL_error(L, "http: query value of '%s' must be a string, number or boolean", name);
  }
  char *u = rb_http_url_add_query(r->url, name, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (u == NULL)
    luaL_error(L, "http: out of memory");
  free(r->url);
  r->url = u;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Query parameters in name order, so the URL (and the timeline) is stable.
 * The names stay anchored in the query table while they are used. */
static void parse_query(lua_State *L, req_state *r)
{
  if (!rb_opts_field(L, 1, r->fn, "query", LUA_TTABLE))
    return;
  int q = lua_gettop(L);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, q) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "http: query names must be strings");
    n++;
  }
  const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, q) != 0 && i < n) {
    lua_pop(L, 1);
    names[i++] = lua_tostring(L, -1);
  }
  qsort(names, n, sizeof *names, cmp_names);
  for (i = 0; i < n; i++) {
    lua_getfield(L, q, names[i]);
    if (lua_istable(L, -1)) {
      lua_Integer m = luaL_len(L, -1);
      for (lua_Integer j = 1; j <= m; j++) {
        lua_rawgeti(L, -1, j);
        append_query(L, r, names[i], lua_gettop(L));
        lua_pop(L, 1);
      }
    } else {
      append_query(L, r, names[i], lua_gettop(L));
    }
    lua_pop(L, 1);
  }
  lua_settop(L, q - 1);
}

static void parse_body(lua_State *L, req_state *r)
{
  int has_json = lua_getfield(L, 1, "json") != LUA_TNIL;
  int has_body = lua_getfield(L, 1, "body") != LUA_TNIL;
  if (has_json && has_body)
    luaL_error(L, "http: give json= or body=, not both");
  if (has_body) {
    size_t len;
    const char *b = lua_tolstring(L, -1, &len);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "http: option 'body' must be a string");
    r->body = malloc(len + 1);
    if (r->body == NULL)
      luaL_error(L, "http: out of memory");
    memcpy(r->body, b, len + 1);
    r->body_len = len;
  } else if (has_json) {
    char err[256];
    r->body_json = rb_lua_to_json(L, lua_gettop(L) - 1, err, sizeof err);
    if (r->body_json == NULL)
      luaL_error(L, "http: json body: %s", err);
    /* Sorted keys: the same table sends the same bytes every run (Lua's
     * table order is not stable), so a plan's body digest can match. */
    r->body = json_dumps(r->body_json, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (r->body == NULL)
      luaL_error(L, "http: json body cannot be encoded");
    r->body_len = strlen(r->body);
    if (!r->has_ctype)
      add_header(L, r, "Content-Type", "application/json", NULL);
  }
  lua_pop(L, 2);
}

/* json_secret = {field=, section=, key=}: the secret becomes that top-level
 * field of the json= body as sent (PagerDuty's routing_key), "[REDACTED]" in
 * the body that would_run shows. */
static void parse_json_secret(lua_State *L, req_state *r)
{
  if (!rb_opts_field(L, 1, r->fn, "json_secret", LUA_TTABLE))
    return;
  if (r->body_json == NULL || !json_is_object(r->body_json))
    luaL_error(L, "http: json_secret needs a json= table body");
  lua_getfield(L, -1, "field");
  const char *field = lua_tostring(L, -1);
  if (field == NULL)
    luaL_error(L, "http: json_secret needs field= naming the body's member");
  lua_pop(L, 1);
  char from[256];
  char *secret = table_secret(L, "json_secret", 0, from, sizeof from);
  lua_getfield(L, -1, "field");
  field = lua_tostring(L, -1);
  json_t *sent = json_deep_copy(r->body_json);
  if (sent == NULL || json_object_set_new(sent, field, json_string(secret)) != 0) {
    json_decref(sent);
    wipe_free(secret);
    luaL_error(L, "http: secret %s cannot be put into the body", from);
  }
  wipe_free(secret);
  json_object_set_new(r->body_json, field, json_string(RB_REDACTED));
  char *body = json_dumps(sent, JSON_COMPACT | JSON_ENCODE_ANY);
  json_t *v = json_object_get(sent, field);
  if (v != NULL && json_string_length(v) > 0)
    explicit_bzero((char *)json_string_value(v), json_string_length(v));
  json_decref(sent);
  if (body == NULL)
    luaL_error(L, "http: json body cannot be encoded");
  free(r->body);
  r->body = body;
  r->body_len = strlen(body);
  r->body_secret = 1;
  lua_pop(L, 2);
}

static void parse_url(lua_State *L, req_state *r)
{
  int has_url = rb_opts_field(L, 1, r->fn, "url", LUA_TSTRING);
  int has_secret = rb_opts_field(L, 1, r->fn, "url_secret", LUA_TTABLE);
  if (has_url == has_secret)
    luaL_error(L, "http: give url= or url_secret={section=, key=}, exactly one");
  if (has_secret) {
    char from[256];
    r->url = table_secret(L, "url_secret", 0, from, sizeof from);
    r->url_from = strdup(from);
  } else {
    r->url = strdup(lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  if (r->url == NULL)
    luaL_error(L, "http: out of memory");
  if (r->url_from != NULL && host_of(L)->mode == RB_MODE_DRILL)
    return; /* the placeholder that table_secret gave a drill */
  if (strncasecmp(r->url, "http://", 7) != 0 && strncasecmp(r->url, "https://", 8) != 0) {
    if (r->url_from != NULL)
      luaL_error(L, "http: secret %s is not an http:// or https:// URL", r->url_from);
    luaL_error(L, "http: url must start with http:// or https:// (got '%s')", r->url);
  }
}

static void parse_method(lua_State *L, req_state *r, int *is_read)
{
  const char *m = "GET";
  if (rb_opts_field(L, 1, r->fn, "method", LUA_TSTRING)) {
    m = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  size_t n = strlen(m);
  if (n == 0 || n >= sizeof r->method || !rb_http_header_name_ok(m))
    luaL_error(L, "http: bad method '%s'", m);
  for (size_t i = 0; i <= n; i++)
    r->method[i] = (char)toupper((unsigned char)m[i]);
  *is_read = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
             strcmp(r->method, "OPTIONS") == 0;
  *is_read = rb_opts_bool(L, 1, r->fn, "read", *is_read);
}

/* Settings that come from the call, else [http] in the config, else defaults. */
static void parse_limits(lua_State *L, const req_state *r, rb_http_req *q)
{
  const rb_config *c = host_of(L)->config;
  char err[ERRLEN];
  int64_t timeout;
  long retries, kb;
  int insecure;
  /* defaults and bounds: the [http] table in http/keys.c */
  if (rb_host_config_duration(c, "http", "timeout", &timeout, err, sizeof err) ||
      rb_host_config_int(c, "http", "retries", &retries, err, sizeof err) ||
      rb_host_config_int(c, "http", "max_body_kb", &kb, err, sizeof err) ||
      rb_host_config_bool(c, "http", "insecure", &insecure, err, sizeof err))
    luaL_error(L, "http: %s", err);
  timeout = rb_opts_duration(L, 1, r->fn, "timeout", timeout);
  if (timeout <= 0)
    luaL_error(L, "%s: option 'timeout' must be positive", r->fn);
  q->timeout_ms = timeout;
  q->retries = (int)rb_opts_int(L, 1, r->fn, "retries", 0, MAX_RETRIES, retries);
  q->max_body =
      (size_t)rb_opts_int(L, 1, r->fn, "max_body_kb", 1, 1024 * 1024, kb) * 1024;
  q->insecure = rb_opts_bool(L, 1, r->fn, "insecure", insecure);
  q->ca_bundle = rb_host_config_string(c, "http", "ca_bundle");
  if (rb_opts_field(L, 1, r->fn, "ca_bundle", LUA_TSTRING)) {
    q->ca_bundle = lua_tostring(L, -1);
    lua_replace(L, 2); /* keep it alive in the shortcut-free slot */
  }
  q->follow_redirects = rb_opts_bool(L, 1, r->fn, "follow_redirects", 0);
  q->retry_unsafe = rb_opts_bool(L, 1, r->fn, "retry_non_idempotent", 0);
}

static json_t *base_detail(const req_state *r)
{
  json_t *d =
      json_pack("{s:s, s:s, s:s}", "op", "http", "method", r->method, "url", r->shown);
  if (r->url_from != NULL)
    json_object_set_new(d, "url_from", json_string(r->url_from));
  return d;
}

static void push_headers(lua_State *L, const rb_http_resp *resp)
{
  lua_createtable(L, 0, (int)resp->nheaders);
  for (size_t i = 0; i < resp->nheaders; i++) {
    lua_pushstring(L, resp->headers[i].value);
    lua_setfield(L, -2, resp->headers[i].name);
  }
}

/* The body's digests: of the exact bytes, and with the run's own id written
 * as {run} (a page names its run), which plans compare (docs/plans.md). */
static void body_digests(const rb_host *h, const req_state *r, json_t *d)
{
  char hex[65];
  const char *b = r->body ? r->body : "";
  rb_sha256_hex(b, r->body_len, hex);
  json_object_set_new(d, "body_sha256", json_string(hex));
  size_t idlen = h->run_id ? strlen(h->run_id) : 0, left = r->body_len;
  rb_buf nb;
  rb_buf_init(&nb, SIZE_MAX);
  int bad = 0;
  while (left > 0 && !bad) {
    const char *hit = idlen ? memmem(b, left, h->run_id, idlen) : NULL;
    size_t n = hit ? (size_t)(hit - b) : left;
    bad = rb_buf_add(&nb, b, n) != 0 || (hit && rb_buf_add(&nb, "{run}", 5) != 0);
    n += hit ? idlen : 0;
    b += n;
    left -= n;
  }
  rb_sha256_hex(nb.data ? nb.data : "", nb.len, hex);
  rb_buf_free(&nb);
  if (bad) /* out of memory: a digest no plan has, so the write is refused */
    snprintf(hex, sizeof hex, "unavailable");
  json_object_set_new(d, "body_plan_sha256", json_string(hex));
}

/* The would_run of a write: method, URL, the headers and body it carries,
 * and the body's digests. */
static json_t *write_detail(const rb_host *h, const req_state *r)
{
  json_t *d = base_detail(r);
  json_object_set(d, "headers", r->shown_headers);
  body_digests(h, r, d); /* the intent's, for plans (docs/plans.md) */
  if (r->body_json != NULL)
    json_object_set(d, "body", r->body_json);
  else if (r->body != NULL)
    json_object_set_new(d, "body", json_stringn(r->body, r->body_len));
  return d;
}

static int push_simulated(lua_State *L, rb_host *h, req_state *r, const rb_http_req *q)
{
  json_t *d = base_detail(r);
  if (h->mode == RB_MODE_DRY_RUN) /* a drill touches no network */
    json_object_set_new(d, "preflight",
                        rb_http_preflight(L, r->url, q->ca_bundle, q->insecure,
                                          rb_host_time_left(L, q->timeout_ms),
                                          r->url_from != NULL));
  json_t *w = write_detail(h, r);
  json_object_update_missing(d, w);
  json_decref(w);
  emit(h, "would_run", d);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "status");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "simulated");
  lua_newtable(L);
  lua_setfield(L, -2, "headers");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "body");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "attempts");
  return rb_host_result(L, "http", "json");
}

static void on_retry(void *arg, int attempt, const char *why, int64_t wait_ms)
{
  req_state *r = ((void **)arg)[0];
  rb_host *h = ((void **)arg)[1];
  if (h->progress == NULL)
    return;
  char line[1024];
  snprintf(line, sizeof line, "http %s %s: %s; retrying in %.1f s (attempt %d failed)",
           r->method, r->shown, why, wait_ms / 1000.0, attempt);
  char *safe = rb_host_redact(line);
  h->progress(h, safe ? safe : line);
  free(safe);
}

/* The first bytes of a body, for error messages, scrubbed of secrets. */
/* The redacted start of the body; the copy is owned by r (a userdata), as
 * pushing the message may raise under the memory budget. */
static void push_snippet(lua_State *L, req_state *r)
{
  const rb_http_resp *resp = &r->resp;
  size_t n = resp->body_len < 300 ? resp->body_len : 300;
  char buf[304];
  memcpy(buf, resp->body ? resp->body : "", n);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\n' || buf[i] == '\r')
      buf[i] = ' ';
  free(r->snippet);
  r->snippet = rb_host_redact(buf);
  lua_pushfstring(L, "%s%s", r->snippet ? r->snippet : "",
                  resp->body_len > n ? "..." : "");
}

static int push_response(lua_State *L, req_state *r, int check, const char *engine_msg)
{
  const rb_http_resp *resp = &r->resp;
  if (check && resp->status >= 400) {
    push_snippet(L, r);
    return luaL_error(L, "http %s %s: %s%s%s", r->method, r->shown, engine_msg,
                      resp->body_len ? ": " : "", lua_tostring(L, -1));
  }
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, resp->status);
  lua_setfield(L, -2, "status");
  push_headers(L, resp);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, resp->body ? resp->body : "", resp->body_len);
  lua_setfield(L, -2, "body");
  lua_pushinteger(L, resp->attempts);
  lua_setfield(L, -2, "attempts");
  const char *ct = rb_http_resp_header(resp, "content-type");
  if (resp->body_len > 0 && rb_http_is_json_type(ct)) {
    json_error_t je;
    /* owned by r: converting it may raise under the memory budget */
    r->decoded = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, &je);
    if (r->decoded == NULL)
      return luaL_error(L, "http %s %s: invalid JSON in the response (status %d, %s): %s",
                        r->method, r->shown, (int)resp->status, ct, je.text);
    rb_json_to_lua(L, r->decoded);
    lua_setfield(L, -2, "json");
  }
  return rb_host_result(L, "http", "json simulated");
}

/* -- drills and recordings (docs/drills.md) ------------------------------ */

static void resp_header(req_state *r, const char *name, const char *value)
{
  rb_http_kv *hs = realloc(r->resp.headers, (r->resp.nheaders + 1) * sizeof *hs);
  if (hs == NULL)
    return;
  r->resp.headers = hs;
  char *n = strdup(name), *v = strdup(value);
  if (n == NULL || v == NULL) {
    free(n);
    free(v);
    return;
  }
  for (char *c = n; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  hs[r->resp.nheaders++] = (rb_http_kv){n, v};
}

/* The scenario's answer a as the response in r: status, headers, body. */
static void fill_answer(req_state *r, const json_t *a)
{
  const json_t *js = json_object_get(a, "json");
  const char *k;
  json_t *v;
  r->resp.status = (long)json_integer_value(json_object_get(a, "status"));
  r->resp.attempts = 1;
  json_object_foreach(json_object_get(a, "headers"), k, v)
      resp_header(r, k, json_string_value(v));
  if (js != NULL && rb_http_resp_header(&r->resp, "content-type") == NULL)
    resp_header(r, "content-type", "application/json");
  char *body = js ? json_dumps(js, JSON_COMPACT | JSON_ENCODE_ANY)
                  : strdup(json_string_value(json_object_get(a, "body"))
                               ? json_string_value(json_object_get(a, "body"))
                               : "");
  r->resp.body = body;
  r->resp.body_len = body ? strlen(body) : 0;
}

/* drill: a request the scenario's calls.http answers (a write is still
 * recorded as would_run). Returns do_request's result, or -1 when the
 * scenario does not answer it and the request goes on as before. */
static int http_drill(lua_State *L, rb_host *h, req_state *r, int is_read, int check)
{
  json_t *call = json_pack("{s:s, s:s, s:b}", "method", r->method, "url", r->url,
                           "optional", !is_read);
  json_t *a = NULL;
  char err[ERRLEN];
  int rc = rb_host_drill_answer(L, "http", call, &a, err, sizeof err);
  json_decref(call);
  if (rc < 0)
    return luaL_error(L, "%s", err);
  if (rc == 0)
    return -1;
  if (!is_read)
    emit(h, "would_run", write_detail(h, r));
  fill_answer(r, a);
  const char *fail = json_string_value(json_object_get(a, "fail"));
  json_t *d = base_detail(r);
  json_object_set_new(d, "status", json_integer(r->resp.status));
  json_object_set_new(d, "answered_by", json_string("scenario"));
  char msg[ERRLEN];
  snprintf(msg, sizeof msg, "%s", fail ? fail : "");
  if (!fail && r->resp.status >= 400)
    snprintf(msg, sizeof msg, "HTTP %ld", r->resp.status);
  if (msg[0] && (fail || check))
    json_object_set_new(d, "error", json_string(msg));
  emit(h, msg[0] && (fail || check) ? "failed" : "finished", d);
  json_decref(a);
  if (fail)
    return luaL_error(L, "http %s %s: %s", r->method, r->shown, msg);
  return push_response(L, r, check, msg);
}

/* dry-run --record: what a read answered, in the form calls.http takes.
 * Only the content type of the headers is kept (cookies stay out). */
static void http_record(lua_State *L, const req_state *r, int rc, const char *err)
{
  char placeholder[300];
  snprintf(placeholder, sizeof placeholder, "<secret %s>",
           r->url_from ? r->url_from : "");
  json_t *call = json_pack("{s:s, s:s}", "method", r->method, "url",
                           r->url_from ? placeholder : r->shown);
  json_t *a = json_object();
  const char *ct = rb_http_resp_header(&r->resp, "content-type");
  json_t *js = NULL;
  if (rc != 0) {
    json_object_set_new(a, "fail", json_string(err));
  } else {
    json_object_set_new(a, "status", json_integer(r->resp.status));
    if (ct != NULL)
      json_object_set_new(a, "headers", json_pack("{s:s}", "content-type", ct));
    if (r->resp.body_len > 0 && rb_http_is_json_type(ct))
      js = json_loadb(r->resp.body, r->resp.body_len, JSON_DECODE_ANY, NULL);
    if (js != NULL)
      json_object_set_new(a, "json", js);
    else
      json_object_set_new(
          a, "body", json_stringn(r->resp.body ? r->resp.body : "", r->resp.body_len));
  }
  rb_host_drill_record(L, "http", call, a);
  json_decref(call);
  json_decref(a);
}

/* A write's intent, on disk (fsync'd) before the request leaves: method,
 * URL and the SHA-256 of the exact body, so a resume after a crash can name
 * what may have been sent. Returns 0, or -1 when it could not be recorded
 * (then the request must not be sent). */
static int intent(rb_host *h, const req_state *r)
{
  json_t *d = base_detail(r);
  body_digests(h, r, d);
  json_object_set_new(d, "body_bytes", json_integer((json_int_t)r->body_len));
  return h->emit != NULL ? h->emit(h, "started", d) : (json_decref(d), 0);
}

static int do_request(lua_State *L, const char *fn)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L); /* 2: keeps ca_bundle alive */
  rb_host *h = host_of(L);
  rb_opts_check(L, 1, fn, known_options, retired_options);
  req_state *r = lua_newuserdatauv(L, sizeof *r, 0); /* 3 */
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, REQ_META);
  r->fn = fn;
  r->shown_headers = json_object();
  rb_http_req q = {0};
  int is_read = 0;
  parse_method(L, r, &is_read);
  parse_url(L, r);
  parse_query(L, r);
  parse_headers(L, r);
  parse_auth(L, r);
  parse_body(L, r);
  parse_json_secret(L, r);
  parse_limits(L, r, &q);
  int check = !rb_opts_bool(L, 1, r->fn, "allow_fail", 0);
  r->shown = r->url_from ? strdup(RB_REDACTED) : rb_host_redact(r->url);
  if (r->shown == NULL)
    return luaL_error(L, "http: out of memory");

  if (h->mode == RB_MODE_DRILL) {
    int rc = http_drill(L, h, r, is_read, check);
    if (rc >= 0)
      return rc;
  }
  char what[512];
  snprintf(what, sizeof what, "http %s %s", r->method, r->shown);
  if (is_read) {
    rb_host_check_read(L, what);
  } else if (!rb_host_may_write(L, what)) {
    return push_simulated(L, h, r, &q);
  }
  if (q.insecure) {
    json_t *d = base_detail(r);
    json_object_set_new(d, "message",
                        json_string("TLS verification disabled (insecure=true)"));
    emit(h, "note", d);
  }
  if (!is_read && intent(h, r) != 0)
    return luaL_error(
        L, "http %s %s: not sent: the run refused it (its plan) or could not record it",
        r->method, r->shown);
  q.method = r->method;
  q.url = r->url;
  q.headers = (const char *const *)r->lines;
  q.nheaders = r->nlines;
  q.body = r->body;
  q.body_len = r->body_len;
  q.deadline_ms = rb_now_mono_ms() + rb_host_time_left(L, DEF_TOTAL_MS);
  q.retry_unsafe = q.retry_unsafe || is_read;
  void *cb[2] = {r, h};
  q.on_retry = on_retry;
  q.arg = cb;
  char err[ERRLEN] = "";
  int rc = rb_http_perform(&q, &r->resp, err, sizeof err);
  json_t *d = base_detail(r);
  json_object_set_new(d, "status", json_integer(r->resp.status));
  json_object_set_new(d, "duration_ms", json_integer(r->resp.duration_ms));
  json_object_set_new(d, "attempts", json_integer(r->resp.attempts));
  int failed = rc != 0 || (check && r->resp.status >= 400);
  if (failed)
    json_object_set_new(d, "error", json_string(err));
  emit(h, failed ? "failed" : "finished", d);
  if (is_read && h->mode == RB_MODE_DRY_RUN)
    http_record(L, r, rc, err);
  if (rc != 0)
    return luaL_error(L, "http %s %s: %s", r->method, r->shown, err);
  return push_response(L, r, check, err);
}

/* http.get(url [, opts]) and friends: a request with the method filled in. */
static int shortcut(lua_State *L, const char *method, const char *fn)
{
  lua_newtable(L);
  int t = lua_gettop(L);
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t);
    }
  } else {
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) {
      luaL_checktype(L, 2, LUA_TTABLE);
      lua_pushnil(L);
      while (lua_next(L, 2) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, t);
      }
    }
    lua_pushvalue(L, 1);
    lua_setfield(L, t, "url");
  }
  if (lua_getfield(L, t, "method") != LUA_TNIL)
    return luaL_error(L,
                      "http: method= is given by the function's name (%s); use "
                      "http.request for another",
                      method);
  lua_pop(L, 1);
  lua_pushstring(L, method);
  lua_setfield(L, t, "method");
  lua_replace(L, 1);
  lua_settop(L, 1);
  return do_request(L, fn);
}

static int http_delete(lua_State *L)
{
  return shortcut(L, "DELETE", "http.delete");
}

static int http_get(lua_State *L)
{
  return shortcut(L, "GET", "http.get");
}

/* http.note(detail): a note on the timeline of the running step. The flags,
 * deploy and notify modules use it for "flag: on -> off, production". */
static int http_note(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  rb_host *h = host_of(L);
  char err[256];
  json_t *d = rb_lua_to_json(L, 1, err, sizeof err);
  if (d == NULL)
    return luaL_error(L, "http.note: %s", err);
  emit(h, "note", d);
  return 0;
}

static int http_patch(lua_State *L)
{
  return shortcut(L, "PATCH", "http.patch");
}

static int http_post(lua_State *L)
{
  return shortcut(L, "POST", "http.post");
}

static int http_put(lua_State *L)
{
  return shortcut(L, "PUT", "http.put");
}

static int http_request(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  return do_request(L, "http.request");
}

static int http_urlencode(lua_State *L)
{
  const char *s = luaL_checkstring(L, 1);
  char *e = rb_http_url_escape(s);
  if (e == NULL)
    return luaL_error(L, "http: out of memory");
  lua_pushstring(L, e);
  free(e);
  return 1;
}

int luaopen_runbook_http(lua_State *L)
{
  static const luaL_Reg funcs[] = {
      {"delete", http_delete},
      {"get", http_get},
      {"note", http_note},
      {"patch", http_patch},
      {"post", http_post},
      {"put", http_put},
      {"request", http_request},
      {"urlencode", http_urlencode},
      {NULL, NULL},
  };
  if (rb_http_global_init() != 0)
    return luaL_error(L, "http: libcurl initialisation failed");
  if (luaL_newmetatable(L, REQ_META)) {
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
