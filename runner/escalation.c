/* escalation.c: paging targets ([escalation.NAME]) checked when the config
 * loads and against each literal `to`; an escalate step's page and the
 * resolve at a resolved end, sent through stdlib/paging.lua and the http
 * module's write path (journal, would_run, preflight). */
#include "runner/escalation.h"

#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/loader.h"
#include "runner/base/util.h"

#define PREFIX "escalation."

/* The keys each kind takes; secrets by their base name (routing_key for
 * routing_key_env and routing_key_file). */
static const struct {
  const char *kind;
  const char *keys[8];
} kinds[] = {
    {"pagerduty", {"kind", "url", "routing_key", "source", "severity", NULL}},
    {"opsgenie", {"kind", "url", "api_key", "team", "source", "severity", NULL}},
    {"slack", {"kind", "url", "webhook_url", "bot_token", "channel", NULL}},
    {"webhook", {"kind", "url", "token", "severity", NULL}},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

typedef struct {
  const rb_config *c;
  const char *file;
  char *err;
  size_t errlen;
  int failed;
  int k;               /* index into kinds, for the key walk */
  const char *section; /* for the key walk */
} cfg_walk;

static int kind_index(const char *kind)
{
  for (size_t i = 0; kind != NULL && i < NKINDS; i++)
    if (strcmp(kinds[i].kind, kind) == 0)
      return (int)i;
  return -1;
}

/* routing_key_env -> routing_key; others unchanged. */
static void base_key(const char *key, char *out, size_t len)
{
  size_t n = strlen(key);
  if (n > 4 && strcmp(key + n - 4, "_env") == 0)
    n -= 4;
  else if (n > 5 && strcmp(key + n - 5, "_file") == 0)
    n -= 5;
  snprintf(out, len, "%.*s", (int)n, key);
}

static int has_secret(const rb_config *c, const char *section, const char *key)
{
  char k[64];
  snprintf(k, sizeof k, "%s_env", key);
  if (rb_config_get(c, section, k) != NULL)
    return 1;
  snprintf(k, sizeof k, "%s_file", key);
  return rb_config_get(c, section, k) != NULL;
}

static void walk_fail(cfg_walk *w, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void walk_fail(cfg_walk *w, int line, const char *fmt, ...)
{
  if (w->failed++)
    return; /* the first problem is the one reported */
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (line > 0)
    snprintf(w->err, w->errlen, "%s:%d: [%s] %s", w->file, line, w->section, msg);
  else
    snprintf(w->err, w->errlen, "%s: [%s] %s", w->file, w->section, msg);
}

static void check_key(const char *key, const char *value, int line, void *arg)
{
  cfg_walk *w = arg;
  char base[64];
  base_key(key, base, sizeof base);
  for (const char *const *k = kinds[w->k].keys; *k; k++)
    if (strcmp(*k, base) == 0) {
      if (strcmp(base, "severity") == 0 &&
          !(strlen(value) == 4 && strncmp(value, "sev", 3) == 0 && value[3] >= '1' &&
            value[3] <= '5'))
        walk_fail(w, line, "severity must be sev1 ... sev5 (got '%s')", value);
      if (strcmp(base, "url") == 0 && strncmp(value, "https://", 8) != 0 &&
          strncmp(value, "http://", 7) != 0)
        walk_fail(w, line, "url must start with https:// or http:// (got '%s')", value);
      return;
    }
  char takes[256] = "";
  for (const char *const *k = kinds[w->k].keys + 1; *k; k++) {
    size_t n = strlen(takes);
    snprintf(takes + n, sizeof takes - n, "%s%s", n ? ", " : "", *k);
  }
  walk_fail(w, line, "a %s target does not take '%s' (it takes: %s)", kinds[w->k].kind,
            key, takes);
}

/* What each kind needs beyond its kind. */
static void check_needs(cfg_walk *w, int line)
{
  const rb_config *c = w->c;
  const char *s = w->section;
  const char *kind = kinds[w->k].kind;
  if (strcmp(kind, "pagerduty") == 0 && !has_secret(c, s, "routing_key"))
    walk_fail(w, line, "a pagerduty target needs routing_key_env or routing_key_file");
  if (strcmp(kind, "opsgenie") == 0 && !has_secret(c, s, "api_key"))
    walk_fail(w, line, "an opsgenie target needs api_key_env or api_key_file");
  if (strcmp(kind, "webhook") == 0 && rb_config_get(c, s, "url") == NULL)
    walk_fail(w, line, "a webhook target needs url");
  if (strcmp(kind, "slack") != 0)
    return;
  int hook = has_secret(c, s, "webhook_url"), bot = has_secret(c, s, "bot_token");
  int channel = rb_config_get(c, s, "channel") != NULL;
  if (hook == bot)
    walk_fail(w, line,
              "a slack target needs webhook_url_env/_file, or bot_token_env/_file with "
              "channel (exactly one of the two)");
  else if (bot && !channel)
    walk_fail(w, line, "a slack target with bot_token needs channel");
  else if (hook && (channel || rb_config_get(c, s, "url") != NULL))
    walk_fail(w, line,
              "a slack webhook posts where its URL says: channel and url go with "
              "bot_token only");
}

static void first_line(const char *key, const char *value, int line, void *arg)
{
  (void)key;
  (void)value;
  int *first = arg;
  if (*first == 0 || (line > 0 && line < *first))
    *first = line;
}

static void check_section(const char *section, void *arg)
{
  cfg_walk *w = arg;
  if (w->failed)
    return;
  w->section = section;
  const char *kind = rb_config_get(w->c, section, "kind");
  int line = rb_config_line(w->c, section, "kind");
  w->k = kind_index(kind);
  if (kind == NULL) {
    rb_config_each_key(w->c, section, first_line, &line);
    walk_fail(w, line, "has no kind (pagerduty, opsgenie, slack or webhook)");
    return;
  }
  if (w->k < 0) {
    walk_fail(w, line, "kind must be pagerduty, opsgenie, slack or webhook (got '%s')",
              kind);
    return;
  }
  rb_config_each_key(w->c, section, check_key, w);
  check_needs(w, line);
}

int rb_escalation_config_check(const rb_config *c, char *err, size_t errlen)
{
  cfg_walk w = {c,   rb_config_file(c) ? rb_config_file(c) : "config", err, errlen, 0, 0,
                NULL};
  rb_config_each_section(c, PREFIX, check_section, &w);
  return w.failed ? -1 : 0;
}

static void count_section(const char *section, void *arg)
{
  (void)section;
  (*(int *)arg)++;
}

int rb_escalation_configured(const rb_config *c)
{
  int n = 0;
  rb_config_each_section(c, PREFIX, count_section, &n);
  return n > 0;
}

/* 1 when [escalation.name] exists (kind is required, so it is set). */
static int target_exists(const rb_config *c, const char *name)
{
  char section[300];
  if (rb_fmt(section, sizeof section, PREFIX "%s", name) != 0)
    return 0;
  return rb_config_get(c, section, "kind") != NULL;
}

int rb_escalation_check_targets(sb_state *sb, const rb_model *m, const rb_config *c,
                                FILE *err, FILE *note)
{
  int configured = rb_escalation_configured(c), problems = 0, any = 0;
  lua_State *L = sb_lua(sb);
  for (size_t i = 0; i < m->nsteps; i++) {
    const rb_step *s = &m->steps[i];
    if (s->kind != RB_STEP_ESCALATE)
      continue;
    any = 1;
    rb_loader_push_step(sb, s->id);
    lua_getfield(L, -1, "to");
    const char *to = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (configured && to != NULL && !target_exists(c, to)) {
      fprintf(err,
              "%s:%d: escalate step '%s': unknown escalation target '%s' (no "
              "[escalation.%s] in %s)\n",
              m->file, s->line, s->id, to, to,
              rb_config_file(c) ? rb_config_file(c) : "the config");
      problems++;
    }
    lua_pop(L, 2);
  }
  if (any && !configured && note != NULL)
    fprintf(note,
            "%s: note: escalation targets not checked: no [escalation.*] in the config, "
            "so escalate steps page nobody\n",
            m->file);
  return problems;
}
