/* cmd_env.c: the minimal environment of a local command (see cmd_env.h):
 * the fixed base, the config's allow list, and explicit variables. */
#include "stdlib/cmd_env.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

/* What every command gets when the executor has it: finding programs,
 * the user's home, and how to print text and times. */
static int base_name(const char *name, size_t n)
{
  static const char *const fixed[] = {"PATH", "HOME", "LANG", "TZ", NULL};
  for (int i = 0; fixed[i]; i++)
    if (strlen(fixed[i]) == n && memcmp(fixed[i], name, n) == 0)
      return 1;
  return n > 3 && memcmp(name, "LC_", 3) == 0;
}

int rb_cmd_env_name_ok(const char *s)
{
  if (!(isalpha((unsigned char)*s) || *s == '_'))
    return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_'))
      return 0;
  return 1;
}

static int env_push(rb_cmd_env *e, char *var)
{
  if (e->n + 2 > e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 16;
    char **v = realloc(e->vars, cap * sizeof *v);
    if (v == NULL)
      return -1;
    e->vars = v;
    e->cap = cap;
  }
  e->vars[e->n++] = var;
  e->vars[e->n] = NULL;
  return 0;
}

/* Checks one allowed name; err when it is malformed or names a secret. */
static int allowed_ok(const rb_config *c, const char *name, char *err, size_t errlen)
{
  if (!rb_cmd_env_name_ok(name))
    return rb_err(err, errlen,
                  "[cmd] env_allow: '%s' is not an environment variable name "
                  "(letters, digits, _; a comma-separated list)",
                  name);
  char where[300];
  if (rb_host_config_secret_env(c, name, where, sizeof where))
    return rb_err(
        err, errlen,
        "[cmd] env_allow: %s holds a secret (%s names it); pass it to the "
        "command that needs it with env = { %s = { section = ..., key = ... } }",
        name, where, name);
  return 0;
}

/* 1 when the variable name[0..n) is on the comma-separated list. */
static int on_list(const char *list, const char *name, size_t n)
{
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *end = p;
    while (*end && *end != ',' && *end != ' ')
      end++;
    if ((size_t)(end - p) == n && n > 0 && memcmp(p, name, n) == 0)
      return 1;
    p = end;
  }
  return 0;
}

static int check_list(const rb_config *c, const char *list, char *err, size_t errlen)
{
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *end = p;
    while (*end && *end != ',' && *end != ' ')
      end++;
    if (end > p) {
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(end - p), p);
      if (allowed_ok(c, name, err, errlen) != 0)
        return -1;
    }
    p = end;
  }
  return 0;
}

int rb_cmd_env_base(rb_cmd_env *e, const rb_config *c, char *const *envp, char *err,
                    size_t errlen)
{
  const char *allow = rb_host_config_string(c, "cmd", "env_allow");
  if (check_list(c, allow, err, errlen) != 0)
    return -1;
  if (env_push(e, NULL) != 0) /* vars is never NULL once filled */
    goto oom;
  e->n = 0;
  for (size_t i = 0; envp && envp[i]; i++) {
    const char *eq = strchr(envp[i], '=');
    if (eq == NULL)
      continue;
    size_t n = (size_t)(eq - envp[i]);
    if (!base_name(envp[i], n) && !on_list(allow, envp[i], n))
      continue;
    char *var = strdup(envp[i]);
    if (var == NULL || env_push(e, var) != 0) {
      free(var);
      goto oom;
    }
  }
  return 0;
oom:
  return rb_err(err, errlen, "cmd: out of memory");
}

static void wipe_free(char *s)
{
  if (s == NULL)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

int rb_cmd_env_set(rb_cmd_env *e, const char *name, const char *value)
{
  size_t n = strlen(name);
  char *var = malloc(n + strlen(value) + 2);
  if (var == NULL)
    return -1;
  sprintf(var, "%s=%s", name, value);
  for (size_t i = 0; i < e->n; i++) {
    if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=') {
      wipe_free(e->vars[i]);
      e->vars[i] = var;
      return 0;
    }
  }
  if (env_push(e, var) != 0) {
    wipe_free(var);
    return -1;
  }
  return 0;
}

void rb_cmd_env_free(rb_cmd_env *e)
{
  if (e == NULL)
    return;
  for (size_t i = 0; i < e->n; i++)
    wipe_free(e->vars[i]);
  free(e->vars);
  memset(e, 0, sizeof *e);
}
