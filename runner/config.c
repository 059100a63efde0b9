/* config.c: loads and validates the INI settings file against the key table
 * (rb_config_sections), typed getters whose defaults and bounds come from
 * that table, its markdown reference, and secret resolution from env or file. */
#include "runner/config.h"
#include "runner/escalation.h"

#include "runner/base/redact.h"
#include "runner/base/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest secret file we read; secrets are tokens and URLs, not documents. */
#define RB_SECRET_MAX (64 * 1024)

typedef struct {
  char *section;
  char *key;
  char *value;
  int line; /* 0 for values set with rb_config_set */
} entry;

struct rb_config {
  char *file;
  entry *v;
  size_t n, cap;
};

rb_config *rb_config_new_empty(void)
{
  return calloc(1, sizeof(rb_config));
}

void rb_config_free(rb_config *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->v[i].section);
    free(c->v[i].key);
    free(c->v[i].value);
  }
  free(c->v);
  free(c->file);
  free(c);
}

const char *rb_config_file(const rb_config *c)
{
  return c ? c->file : NULL;
}

static entry *find(const rb_config *c, const char *section, const char *key)
{
  if (c == NULL)
    return NULL;
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->v[i].section, section) == 0 && strcmp(c->v[i].key, key) == 0)
      return &c->v[i];
  return NULL;
}

static int add(rb_config *c, const char *section, const char *key, const char *value,
               int line)
{
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    entry *v = realloc(c->v, cap * sizeof *v);
    if (v == NULL)
      return -1;
    c->v = v;
    c->cap = cap;
  }
  entry *e = &c->v[c->n];
  e->section = strdup(section);
  e->key = strdup(key);
  e->value = strdup(value);
  e->line = line;
  if (e->section == NULL || e->key == NULL || e->value == NULL) {
    free(e->section);
    free(e->key);
    free(e->value);
    return -1;
  }
  c->n++;
  return 0;
}

const char *rb_config_get(const rb_config *c, const char *section, const char *key)
{
  entry *e = find(c, section ? section : "", key);
  return e ? e->value : NULL;
}

int rb_config_set(rb_config *c, const char *section, const char *key, const char *value)
{
  if (c == NULL || key == NULL || value == NULL)
    return -1;
  if (section == NULL)
    section = "";
  entry *e = find(c, section, key);
  if (e == NULL)
    return add(c, section, key, value, 0);
  char *v = strdup(value);
  if (v == NULL)
    return -1;
  free(e->value);
  e->value = v;
  e->line = 0;
  return 0;
}

int rb_config_line(const rb_config *c, const char *section, const char *key)
{
  const entry *e = find(c, section, key);
  return e ? e->line : 0;
}

void rb_config_each_key(const rb_config *c, const char *section,
                        void (*fn)(const char *key, const char *value, int line,
                                   void *arg),
                        void *arg)
{
  for (size_t i = 0; c != NULL && i < c->n; i++)
    if (strcmp(c->v[i].section, section) == 0)
      fn(c->v[i].key, c->v[i].value, c->v[i].line, arg);
}

void rb_config_each_section(const rb_config *c, const char *prefix,
                            void (*fn)(const char *section, void *arg), void *arg)
{
  if (c == NULL || fn == NULL)
    return;
  size_t plen = prefix ? strlen(prefix) : 0;
  for (size_t i = 0; i < c->n; i++) {
    const char *s = c->v[i].section;
    if (plen && strncmp(s, prefix, plen) != 0)
      continue;
    size_t j = 0;
    while (j < i && strcmp(c->v[j].section, s) != 0)
      j++;
    if (j == i)
      fn(s, arg);
  }
}

/* ---- the key table ---- */

/* Does table section pat ("ssh", "flags.*") cover section s? */
static int section_matches(const char *pat, const char *s)
{
  size_t n = strlen(pat);
  if (n >= 2 && strcmp(pat + n - 2, ".*") == 0)
    return strncmp(s, pat, n - 1) == 0 && s[n - 1] != '\0';
  return strcmp(pat, s) == 0;
}

static const rb_config_section *section_find(const char *s)
{
  for (size_t i = 0; rb_config_sections[i]; i++)
    if (section_matches(rb_config_sections[i]->name, s))
      return rb_config_sections[i];
  return NULL;
}

static int section_known(const char *s)
{
  return section_find(s) != NULL;
}

const rb_config_key *rb_config_key_find(const char *section, const char *key)
{
  const rb_config_section *sec = section ? section_find(section) : NULL;
  if (sec == NULL || key == NULL)
    return NULL;
  for (const rb_config_key *k = sec->keys; k->key; k++)
    if (strcmp(k->key, key) == 0)
      return k;
  return NULL;
}

int rb_config_secret_env(const rb_config *c, const char *var, char *where, size_t len)
{
  for (size_t i = 0; c != NULL && var != NULL && i < c->n; i++) {
    const entry *e = &c->v[i];
    size_t n = strlen(e->key);
    if (n <= 4 || strcmp(e->key + n - 4, "_env") != 0 || strcmp(e->value, var) != 0)
      continue;
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(n - 4), e->key);
    const rb_config_key *k = rb_config_key_find(e->section, key);
    if (k != NULL && k->type == RB_CFG_SECRET) {
      snprintf(where, len, "[%s] %s", e->section, e->key);
      return 1;
    }
  }
  return 0;
}

static const rb_config_key *key_row(const char *section, const char *key)
{
  return rb_config_key_find(section, key);
}

/* For "token_env" / "token_file": the secret row it refers to, and which. */
static const rb_config_key *secret_ref(const char *section, const char *key, int *is_env)
{
  const char *us = strrchr(key, '_');
  if (us == NULL || (strcmp(us, "_env") != 0 && strcmp(us, "_file") != 0))
    return NULL;
  char base[128];
  if (rb_fmt(base, sizeof base, "%.*s", (int)(us - key), key) != 0)
    return NULL;
  const rb_config_key *k = key_row(section, base);
  if (k == NULL || k->type != RB_CFG_SECRET)
    return NULL;
  *is_env = strcmp(us, "_env") == 0;
  return k;
}

/* Optimal string alignment distance (a swap of neighbours counts as one),
 * capped: names longer than 63 bytes are never suggested. */
static int edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63)
    return 99;
  int d[64][64];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int cost = a[i - 1] != b[j - 1];
      int best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < best)
        best = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

/* Keeps cand in best when it is closer to want than anything seen so far. */
static void consider(const char *want, const char *cand, char *best, size_t len,
                     int *dist)
{
  int d = edit_distance(want, cand);
  if (d <= 2 && d < *dist && strlen(cand) < len) {
    *dist = d;
    snprintf(best, len, "%s", cand);
  }
}

/* The closest accepted key of section to key (secrets as KEY_env/KEY_file). */
static void suggest_key(const char *section, const char *key, char *best, size_t len)
{
  int dist = 3;
  best[0] = '\0';
  const rb_config_section *sec = section_find(section);
  for (const rb_config_key *k = sec ? sec->keys : NULL; k && k->key; k++) {
    if (k->type != RB_CFG_SECRET) {
      consider(key, k->key, best, len, &dist);
      continue;
    }
    char alt[160];
    snprintf(alt, sizeof alt, "%s_env", k->key);
    consider(key, alt, best, len, &dist);
    snprintf(alt, sizeof alt, "%s_file", k->key);
    consider(key, alt, best, len, &dist);
  }
}

/* The closest known section; for "flag.checkout" that is "flags.checkout". */
static void suggest_section(const char *section, char *best, size_t len)
{
  int dist = 3;
  best[0] = '\0';
  const char *dot = strchr(section, '.');
  for (size_t i = 0; rb_config_sections[i]; i++) {
    const char *name = rb_config_sections[i]->name;
    size_t n = strlen(name);
    char cand[160];
    if (n >= 2 && strcmp(name + n - 2, ".*") == 0) {
      if (dot == NULL || dot[1] == '\0')
        continue;
      snprintf(cand, sizeof cand, "%.*s%s", (int)(n - 1), name, dot + 1);
    } else {
      snprintf(cand, sizeof cand, "%s", name);
    }
    consider(section, cand, best, len, &dist);
  }
}

/* ---- values ---- */

static int parse_long(const char *s, long *out)
{
  if (s == NULL || *s == '\0')
    return -1;
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' ||
      !(isdigit((unsigned char)*s) || *s == '-' || *s == '+'))
    return -1;
  *out = v;
  return 0;
}

static int parse_bool(const char *s, int *out)
{
  static const char *const yes[] = {"true", "yes", "on", "1", NULL};
  static const char *const no[] = {"false", "no", "off", "0", NULL};
  for (int i = 0; yes[i]; i++)
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
  for (int i = 0; no[i]; i++)
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  return -1;
}

static int env_name_ok(const char *s)
{
  if (!(isalpha((unsigned char)*s) || *s == '_'))
    return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_'))
      return 0;
  return 1;
}

/* "FILE:LINE" for an entry, or "command line" for an override. */
static void where(const rb_config *c, const entry *e, char *buf, size_t len)
{
  if (e->line > 0)
    snprintf(buf, len, "%s:%d", c->file ? c->file : "config", e->line);
  else
    snprintf(buf, len, "setting [%s] %s", e->section, e->key);
}

/* Checks value against the key's declared type at load time. */
static int check_type(rb_config_type type, const char *key, const char *value,
                      const char *at, char *err, size_t errlen)
{
  long l;
  int b;
  int64_t ms;
  char why[200];
  if (type == RB_CFG_INT && (parse_long(value, &l) != 0 || l < 0))
    return rb_err(err, errlen, "%s: '%s' must be a whole number >= 0, not '%s'", at, key,
                  value);
  if (type == RB_CFG_BOOL && parse_bool(value, &b) != 0)
    return rb_err(err, errlen, "%s: '%s' must be true or false, not '%s'", at, key,
                  value);
  if (type == RB_CFG_DURATION && rb_parse_duration(value, &ms, why, sizeof why) != 0)
    return rb_err(err, errlen, "%s: '%s': %s", at, key, why);
  return 0;
}

/* ---- parsing ---- */

static int name_ok(const char *s)
{
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* Only whitespace or a comment may follow a section header or quoted value. */
static int rest_ok(const char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  return *s == '\0' || *s == '#' || *s == ';';
}

/* Parses the value part in place: a double-quoted string with \" and \\
 * escapes, or bare text where " #" starts a comment. */
static int parse_value(char *s, char **out, const char *at, char *err, size_t errlen)
{
  s = rb_trim(s);
  if (*s != '"') {
    for (char *p = s; *p; p++)
      if (*p == '#' && p > s && isspace((unsigned char)p[-1])) {
        *p = '\0';
        break;
      }
    *out = rb_trim(s);
    return 0;
  }
  char *w = s;
  char *p = s + 1;
  for (; *p && *p != '"'; p++) {
    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
      p++;
    *w++ = *p;
  }
  if (*p != '"')
    return rb_err(err, errlen, "%s: unterminated quoted value", at);
  if (!rest_ok(p + 1))
    return rb_err(err, errlen, "%s: unexpected text after the closing quote", at);
  *w = '\0';
  *out = s;
  return 0;
}

static int parse_section(char *s, char *section, size_t len, const char *at, char *err,
                         size_t errlen)
{
  char *close = strchr(s, ']');
  if (close == NULL || !rest_ok(close + 1))
    return rb_err(err, errlen, "%s: a section header looks like [name]", at);
  *close = '\0';
  char *name = rb_trim(s + 1);
  if (!name_ok(name))
    return rb_err(err, errlen,
                  "%s: bad section name '%s' (letters, digits, '_', '-' and '.' only)",
                  at, name);
  if (!section_known(name)) {
    char best[160];
    suggest_section(name, best, sizeof best);
    return rb_err(err, errlen, "%s: unknown section [%s]%s%s%s", at, name,
                  best[0] ? "; did you mean [" : "", best, best[0] ? "]?" : "");
  }
  if (rb_fmt(section, len, "%s", name) != 0)
    return rb_err(err, errlen, "%s: section name too long", at);
  return 0;
}

/* Checks that key may appear in section with value. */
static int validate(const char *section, const char *key, const char *value,
                    const char *at, char *err, size_t errlen)
{
  const rb_config_key *k = key_row(section, key);
  if (k != NULL && k->type == RB_CFG_SECRET)
    return rb_err(err, errlen,
                  "%s: '%s' is a secret: set %s_env (an environment variable name) or "
                  "%s_file (a path), never the value",
                  at, key, key, key);
  if (k != NULL)
    return check_type(k->type, key, value, at, err, errlen);
  int is_env = 0;
  if (secret_ref(section, key, &is_env) != NULL) {
    if (is_env && !env_name_ok(value))
      return rb_err(err, errlen,
                    "%s: '%s' must be the name of an environment variable "
                    "(letters, digits, '_'), not the secret itself",
                    at, key);
    if (!is_env && *value == '\0')
      return rb_err(err, errlen, "%s: '%s' is empty; it must be a path", at, key);
    return 0;
  }
  char best[160];
  if (*section == '\0') {
    for (size_t i = 0; rb_config_sections[i]; i++) {
      const rb_config_section *sec = rb_config_sections[i];
      if (strchr(sec->name, '*') != NULL)
        continue;
      for (const rb_config_key *r = sec->keys; r->key; r++)
        if (strcmp(r->key, key) == 0)
          return rb_err(err, errlen,
                        "%s: '%s' must be inside a section; did you mean [%s]?", at, key,
                        sec->name);
    }
    return rb_err(err, errlen, "%s: unknown key '%s' outside any section", at, key);
  }
  suggest_key(section, key, best, sizeof best);
  return rb_err(err, errlen, "%s: unknown key '%s' in [%s]%s%s%s", at, key, section,
                best[0] ? "; did you mean '" : "", best, best[0] ? "'?" : "");
}

static int parse_line(rb_config *c, char *line, int lineno, char *section, size_t seclen,
                      char *err, size_t errlen)
{
  char at[4200];
  snprintf(at, sizeof at, "%s:%d", c->file, lineno);
  char *s = rb_trim(line);
  if (*s == '\0' || *s == '#' || *s == ';')
    return 0;
  if (*s == '[')
    return parse_section(s, section, seclen, at, err, errlen);
  char *eq = strchr(s, '=');
  if (eq == NULL)
    return rb_err(err, errlen, "%s: expected 'key = value', '[section]' or a comment",
                  at);
  *eq = '\0';
  char *key = rb_trim(s);
  if (!name_ok(key))
    return rb_err(err, errlen, "%s: bad key name '%s'", at, key);
  char *value = NULL;
  if (parse_value(eq + 1, &value, at, err, errlen) != 0)
    return -1;
  if (validate(section, key, value, at, err, errlen) != 0)
    return -1;
  entry *dup = find(c, section, key);
  if (dup != NULL)
    return rb_err(err, errlen, "%s: duplicate key '%s' in [%s], first set on line %d", at,
                  key, section, dup->line);
  if (add(c, section, key, value, lineno) != 0)
    return rb_err(err, errlen, "%s: out of memory", at);
  return 0;
}

static rb_config *load_file(const char *path, char *err, size_t errlen)
{
  rb_config *c = rb_config_new_empty();
  FILE *f = NULL;
  char *line = NULL;
  size_t cap = 0;
  if (c == NULL || (c->file = strdup(path)) == NULL) {
    rb_err(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  f = fopen(path, "re");
  if (f == NULL) {
    rb_err(err, errlen, "%s: %s", path, strerror(errno));
    goto fail;
  }
  char section[256] = "";
  int lineno = 0;
  while (getline(&line, &cap, f) >= 0) {
    if (parse_line(c, line, ++lineno, section, sizeof section, err, errlen) != 0)
      goto fail;
  }
  if (ferror(f)) {
    rb_err(err, errlen, "%s: read: %s", path, strerror(errno));
    goto fail;
  }
  free(line);
  line = NULL;
  fclose(f);
  f = NULL;
  /* Keys that are valid for one kind of target only (escalation.c). */
  if (rb_escalation_config_check(c, err, errlen) != 0)
    goto fail;
  return c;
fail:
  free(line);
  if (f != NULL)
    fclose(f);
  rb_config_free(c);
  return NULL;
}

rb_config *rb_config_load(const char *path, char *err, size_t errlen)
{
  if (path != NULL)
    return load_file(path, err, errlen);
  if (access("runbook.conf", F_OK) == 0)
    return load_file("runbook.conf", err, errlen);
  char buf[4096];
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  int have = 0;
  /* the XDG spec says a relative XDG_CONFIG_HOME is to be ignored */
  if (xdg != NULL && xdg[0] == '/')
    have = rb_fmt(buf, sizeof buf, "%s/runbook/runbook.conf", xdg) == 0;
  else if (home != NULL && home[0] != '\0')
    have = rb_fmt(buf, sizeof buf, "%s/.config/runbook/runbook.conf", home) == 0;
  if (have && access(buf, F_OK) == 0)
    return load_file(buf, err, errlen);
  rb_config *c = rb_config_new_empty();
  if (c == NULL)
    rb_err(err, errlen, "config: out of memory");
  return c;
}

/* ---- typed getters ---- */

/* The table row of section/key when it has type, else an error: asking for
 * a key that is not in the table is a programming mistake. */
static const rb_config_key *typed_row(const char *section, const char *key,
                                      rb_config_type type, char *err, size_t errlen)
{
  const rb_config_key *k = key_row(section ? section : "", key);
  if (k == NULL || k->type != type) {
    rb_err(err, errlen, "internal: [%s] %s is not a key of that type in the config table",
           section ? section : "", key);
    return NULL;
  }
  return k;
}

/* The value to parse and where it came from: the file, else the default. */
static const char *value_of(const rb_config *c, const char *section,
                            const rb_config_key *k, char *at, size_t atlen)
{
  entry *e = find(c, section ? section : "", k->key);
  if (e != NULL) {
    where(c, e, at, atlen);
    return e->value;
  }
  snprintf(at, atlen, "default of [%s] %s", section ? section : "", k->key);
  return k->def;
}

int rb_config_get_int(const rb_config *c, const char *section, const char *key, long *out,
                      char *err, size_t errlen)
{
  const rb_config_key *k = typed_row(section, key, RB_CFG_INT, err, errlen);
  if (k == NULL)
    return -1;
  char at[4200];
  const char *v = value_of(c, section, k, at, sizeof at);
  if (v == NULL || parse_long(v, out) != 0)
    return rb_err(err, errlen, "%s: '%s' must be a whole number, not '%s'", at, key,
                  v ? v : "");
  if (*out < k->min || (k->max > 0 && *out > k->max)) {
    if (k->max == LONG_MAX)
      return rb_err(err, errlen, "%s: '%s' must be at least %ld, not %ld", at, key,
                    k->min, *out);
    return rb_err(err, errlen, "%s: '%s' must be %ld..%ld, not %ld", at, key, k->min,
                  k->max, *out);
  }
  return 0;
}

int rb_config_get_bool(const rb_config *c, const char *section, const char *key, int *out,
                       char *err, size_t errlen)
{
  const rb_config_key *k = typed_row(section, key, RB_CFG_BOOL, err, errlen);
  if (k == NULL)
    return -1;
  char at[4200];
  const char *v = value_of(c, section, k, at, sizeof at);
  if (v == NULL || parse_bool(v, out) != 0)
    return rb_err(err, errlen, "%s: '%s' must be true or false, not '%s'", at, key,
                  v ? v : "");
  return 0;
}

int rb_config_get_duration(const rb_config *c, const char *section, const char *key,
                           int64_t *out_ms, char *err, size_t errlen)
{
  const rb_config_key *k = typed_row(section, key, RB_CFG_DURATION, err, errlen);
  if (k == NULL)
    return -1;
  char at[4200], why[200];
  const char *v = value_of(c, section, k, at, sizeof at);
  if (v == NULL)
    return rb_err(err, errlen, "%s: '%s' has no value", at, key);
  if (rb_parse_duration(v, out_ms, why, sizeof why) != 0)
    return rb_err(err, errlen, "%s: '%s': %s", at, key, why);
  return 0;
}

const char *rb_config_get_string(const rb_config *c, const char *section, const char *key)
{
  const char *v = rb_config_get(c, section, key);
  if (v != NULL)
    return v;
  const rb_config_key *k = key_row(section ? section : "", key);
  return k && (k->type == RB_CFG_STRING || k->type == RB_CFG_PATH) ? k->def : NULL;
}

/* ---- the reference (docs/config.md) ---- */

static const char *type_name(rb_config_type t)
{
  static const char *const names[] = {"string",   "int",  "bool",
                                      "duration", "path", "secret"};
  return names[t];
}

static void reference_row(FILE *f, const rb_config_key *k)
{
  fprintf(f, "| `%s` | %s | ", k->key, type_name(k->type));
  if (k->def != NULL)
    fprintf(f, "`%s`", k->def);
  else
    fputs(k->def_doc ? k->def_doc : "none", f);
  fputs(" | ", f);
  if (k->type == RB_CFG_INT && k->max == LONG_MAX)
    fprintf(f, "%ld..", k->min);
  else if (k->type == RB_CFG_INT)
    fprintf(f, "%ld..%ld", k->min, k->max ? k->max : LONG_MAX);
  fprintf(f, " | %s |\n", k->doc);
}

void rb_config_reference(FILE *f)
{
  for (size_t i = 0; rb_config_sections[i]; i++) {
    const rb_config_section *sec = rb_config_sections[i];
    char name[160];
    snprintf(name, sizeof name, "%s", sec->name);
    size_t n = strlen(name);
    if (n >= 2 && strcmp(name + n - 2, ".*") == 0)
      snprintf(name + n - 1, sizeof name - (n - 1), "NAME");
    fprintf(f, "### [%s]%s%s\n\n", name, sec->title[0] ? ": " : "", sec->title);
    fputs("| key | type | default | bounds | meaning |\n", f);
    fputs("| --- | --- | --- | --- | --- |\n", f);
    for (const rb_config_key *k = sec->keys; k->key; k++)
      reference_row(f, k);
    fputs("\n", f);
  }
}

/* ---- secrets ---- */

/* Reads a secret file that only its owner may read. Returns a malloc'd value
 * (caller wipes and frees) or NULL with err naming the file, never the value. */
static char *read_secret_file(const char *path, const char *what, char *err,
                              size_t errlen)
{
  char *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rb_err(err, errlen, "%s: secret file %s: %s", what, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rb_err(err, errlen, "%s: secret file %s is not a regular file", what, path);
    goto fail;
  }
  if (st.st_mode & (S_IRGRP | S_IROTH)) {
    rb_err(err, errlen,
           "%s: secret file %s is readable by group or others (mode %03o); "
           "run chmod 600 %s",
           what, path, (unsigned)(st.st_mode & 0777), path);
    goto fail;
  }
  buf = malloc(RB_SECRET_MAX + 1);
  if (buf == NULL) {
    rb_err(err, errlen, "%s: out of memory", what);
    goto fail;
  }
  size_t len = 0;
  ssize_t n;
  while (len <= RB_SECRET_MAX &&
         (n = read(fd, buf + len, RB_SECRET_MAX + 1 - len)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rb_err(err, errlen, "%s: secret file %s: %s", what, path, strerror(errno));
      goto fail;
    }
    len += (size_t)n;
  }
  if (len > RB_SECRET_MAX) {
    rb_err(err, errlen, "%s: secret file %s is larger than %d KiB", what, path,
           RB_SECRET_MAX / 1024);
    goto fail;
  }
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    len--;
  buf[len] = '\0';
  if (strlen(buf) != len) {
    rb_err(err, errlen, "%s: secret file %s contains a NUL byte", what, path);
    goto fail;
  }
  close(fd);
  char *value = strdup(buf);
  explicit_bzero(buf, RB_SECRET_MAX + 1);
  free(buf);
  if (value == NULL)
    rb_err(err, errlen, "%s: out of memory", what);
  return value;
fail:
  if (buf != NULL) {
    explicit_bzero(buf, RB_SECRET_MAX + 1);
    free(buf);
  }
  close(fd);
  return NULL;
}

char *rb_config_secret(const rb_config *c, const char *section, const char *key,
                       int *absent, char *err, size_t errlen)
{
  if (absent != NULL)
    *absent = 0;
  if (section == NULL)
    section = "";
  char what[300], name[160];
  snprintf(what, sizeof what, "[%s] %s", section, key);
  snprintf(name, sizeof name, "%s_env", key);
  entry *env = find(c, section, name);
  snprintf(name, sizeof name, "%s_file", key);
  entry *file = find(c, section, name);
  char *value = NULL;
  if (env != NULL) {
    const char *v = getenv(env->value);
    if (v == NULL || *v == '\0') {
      rb_err(err, errlen, "%s: environment variable %s (named by %s_env) is %s", what,
             env->value, key, v == NULL ? "not set" : "empty");
      return NULL;
    }
    value = strdup(v);
    if (value == NULL) {
      rb_err(err, errlen, "%s: out of memory", what);
      return NULL;
    }
  } else if (file != NULL) {
    value = read_secret_file(file->value, what, err, errlen);
    if (value == NULL)
      return NULL;
    if (*value == '\0') {
      free(value);
      rb_err(err, errlen, "%s: secret file %s is empty", what, file->value);
      return NULL;
    }
  } else {
    if (absent != NULL)
      *absent = 1;
    rb_err(err, errlen, "%s is not configured: set %s_env or %s_file", what, key, key);
    return NULL;
  }
  if (rb_redact_add(value) != 0) {
    size_t n = strlen(value);
    explicit_bzero(value, n);
    free(value);
    rb_err(err, errlen,
           "%s: the secret is under 4 bytes, too short to redact safely; "
           "refusing to use it",
           what);
    return NULL;
  }
  return value;
}

void rb_config_register_secrets(const rb_config *c)
{
  for (size_t i = 0; c != NULL && i < c->n; i++) {
    int is_env = 0;
    const rb_config_key *k = secret_ref(c->v[i].section, c->v[i].key, &is_env);
    if (k == NULL || k->type != RB_CFG_SECRET)
      continue;
    int absent = 0;
    char err[512];
    char *v = rb_config_secret(c, c->v[i].section, k->key, &absent, err, sizeof err);
    if (v != NULL) {
      explicit_bzero(v, strlen(v));
      free(v);
    }
  }
}
