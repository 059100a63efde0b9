/* inventory.c: reads Ansible INI inventories (groups, children, vars, ranges)
 * and resolves target strings into ordered, de-duplicated host lists. */
#include "stdlib/ssh/inventory.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sys/stat.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"
#include "stdlib/ssh/inventory_int.h"

#define INV_MAX_RANGE 100000
#define INV_MAX_DEPTH 64

typedef rb_ssh_kv kv;
typedef rb_ssh_kvlist kvlist;

typedef struct {
  char *name;
  kvlist vars;
} ihost;

typedef struct {
  char *name;
  size_t *hosts; /* indices into inv->hosts, in order of appearance */
  size_t nhosts, caphosts;
  char **children;
  size_t nchildren, capchildren;
  kvlist vars;
  int depth;
  long priority; /* ansible_group_priority, 1 by default as in Ansible */
} igroup;

struct rb_ssh_inventory {
  char *name;
  ihost *hosts;
  size_t nhosts, caphosts;
  igroup *groups;
  size_t ngroups, capgroups;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 8;
  while (nc < need)
    nc *= 2;
  void *np = realloc(*p, nc * elem);
  if (np == NULL)
    return -1;
  *p = np;
  *cap = nc;
  return 0;
}

int rb_ssh_kv_set(kvlist *l, const char *k, const char *v)
{
  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->v[i].k, k) == 0) {
      char *nv = strdup(v);
      if (nv == NULL)
        return -1;
      free(l->v[i].v);
      l->v[i].v = nv;
      return 0;
    }
  }
  if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof(kv)) < 0)
    return -1;
  char *nk = strdup(k), *nv = strdup(v);
  if (nk == NULL || nv == NULL) {
    free(nk);
    free(nv);
    return -1;
  }
  l->v[l->n].k = nk;
  l->v[l->n].v = nv;
  l->n++;
  return 0;
}

static const char *kv_get(const kvlist *l, const char *k)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i].k, k) == 0)
      return l->v[i].v;
  return NULL;
}

void rb_ssh_kv_free(kvlist *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].k);
    free(l->v[i].v);
  }
  free(l->v);
}

void rb_ssh_inventory_free(rb_ssh_inventory *inv)
{
  if (inv == NULL)
    return;
  for (size_t i = 0; i < inv->nhosts; i++) {
    free(inv->hosts[i].name);
    rb_ssh_kv_free(&inv->hosts[i].vars);
  }
  for (size_t i = 0; i < inv->ngroups; i++) {
    igroup *g = &inv->groups[i];
    free(g->name);
    free(g->hosts);
    for (size_t j = 0; j < g->nchildren; j++)
      free(g->children[j]);
    free(g->children);
    rb_ssh_kv_free(&g->vars);
  }
  free(inv->hosts);
  free(inv->groups);
  free(inv->name);
  free(inv);
}

static long find_group(const rb_ssh_inventory *inv, const char *name)
{
  for (size_t i = 0; i < inv->ngroups; i++)
    if (strcmp(inv->groups[i].name, name) == 0)
      return (long)i;
  return -1;
}

static long find_host(const rb_ssh_inventory *inv, const char *name)
{
  for (size_t i = 0; i < inv->nhosts; i++)
    if (strcmp(inv->hosts[i].name, name) == 0)
      return (long)i;
  return -1;
}

/* Returns the index of group name, creating it; -1 on out of memory. */
static long get_group(rb_ssh_inventory *inv, const char *name)
{
  long i = find_group(inv, name);
  if (i >= 0)
    return i;
  if (grow((void **)&inv->groups, &inv->capgroups, inv->ngroups + 1, sizeof(igroup)) < 0)
    return -1;
  igroup *g = &inv->groups[inv->ngroups];
  memset(g, 0, sizeof *g);
  g->priority = 1;
  if ((g->name = strdup(name)) == NULL)
    return -1;
  return (long)inv->ngroups++;
}

static long get_host(rb_ssh_inventory *inv, const char *name)
{
  long i = find_host(inv, name);
  if (i >= 0)
    return i;
  if (grow((void **)&inv->hosts, &inv->caphosts, inv->nhosts + 1, sizeof(ihost)) < 0)
    return -1;
  ihost *h = &inv->hosts[inv->nhosts];
  memset(h, 0, sizeof *h);
  if ((h->name = strdup(name)) == NULL)
    return -1;
  return (long)inv->nhosts++;
}

static int group_add_host(igroup *g, size_t hi)
{
  for (size_t i = 0; i < g->nhosts; i++)
    if (g->hosts[i] == hi)
      return 0;
  if (grow((void **)&g->hosts, &g->caphosts, g->nhosts + 1, sizeof(size_t)) < 0)
    return -1;
  g->hosts[g->nhosts++] = hi;
  return 0;
}

static int group_add_child(igroup *g, const char *child)
{
  for (size_t i = 0; i < g->nchildren; i++)
    if (strcmp(g->children[i], child) == 0)
      return 0;
  if (grow((void **)&g->children, &g->capchildren, g->nchildren + 1, sizeof(char *)) < 0)
    return -1;
  if ((g->children[g->nchildren] = strdup(child)) == NULL)
    return -1;
  g->nchildren++;
  return 0;
}

/* Splits a host line into words in place, shell-like: whitespace separates,
 * quotes group, a word starting with # ends the line. Returns the count. */
static size_t split_words(char *s, char **words, size_t max)
{
  size_t n = 0;
  while (*s != '\0' && n < max) {
    while (isspace((unsigned char)*s))
      s++;
    if (*s == '\0' || *s == '#')
      break;
    words[n++] = s;
    char *o = s, q = 0;
    while (*s != '\0' && (q || !isspace((unsigned char)*s))) {
      if (q && *s == q)
        q = 0;
      else if (!q && (*s == '"' || *s == '\''))
        q = *s;
      else
        *o++ = *s;
      s++;
    }
    if (*s != '\0')
      s++;
    *o = '\0';
  }
  return n;
}

static int valid_name(const char *s)
{
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (isspace((unsigned char)*s) || *s == ',' || *s == '=' || *s == '"' || *s == '\'')
      return 0;
  return 1;
}

/* One host pattern being expanded: its group and the variables applied to
 * every host the pattern names. */
typedef struct {
  rb_ssh_inventory *inv;
  long gi;
  const kvlist *vars;
} hostline;

/* Splits "host:port", "[v6addr]:port" or "[v6addr]" in place, as Ansible's
 * parse_address does; a bare IPv6 literal (several ':') has no port. */
static int split_port(char *buf, char **host, const char **port)
{
  *port = NULL;
  *host = buf;
  if (buf[0] == '[') {
    char *rb = strchr(buf, ']');
    if (rb == NULL || (rb[1] != '\0' && rb[1] != ':') || rb == buf + 1)
      return -1;
    *rb = '\0';
    *host = buf + 1;
    if (rb[1] == ':')
      *port = rb + 2;
    return 0;
  }
  char *colon = strchr(buf, ':');
  if (colon != NULL && strchr(colon + 1, ':') == NULL) {
    *colon = '\0';
    *port = colon + 1;
  }
  return 0;
}

static int add_host(hostline *hl, const char *name, char *err, size_t errlen)
{
  rb_ssh_inventory *inv = hl->inv;
  char buf[512], *host;
  const char *port;
  if (rb_fmt(buf, sizeof buf, "%s", name) < 0)
    return rb_err(err, errlen, "host name '%.40s...' is too long", name);
  if (split_port(buf, &host, &port) < 0 || !valid_name(host))
    return rb_err(err, errlen, "bad host name '%s'", name);
  long hi = get_host(inv, host);
  if (hi < 0)
    return rb_err(err, errlen, "out of memory");
  if (hl->gi >= 0 && group_add_host(&inv->groups[hl->gi], (size_t)hi) < 0)
    return rb_err(err, errlen, "out of memory");
  ihost *h = &inv->hosts[hi];
  if (port != NULL && rb_ssh_kv_set(&h->vars, "ansible_port", port) < 0)
    return rb_err(err, errlen, "out of memory");
  for (size_t i = 0; hl->vars != NULL && i < hl->vars->n; i++)
    if (rb_ssh_kv_set(&h->vars, hl->vars->v[i].k, hl->vars->v[i].v) < 0)
      return rb_err(err, errlen, "out of memory");
  return 0;
}

static int expand_range(hostline *hl, const char *pat, char *err, size_t errlen);

static int expand_one(hostline *hl, const char *pre, const char *mid, const char *post,
                      char *err, size_t errlen)
{
  size_t len = strlen(pre) + strlen(mid) + strlen(post) + 1;
  char *name = malloc(len);
  if (name == NULL)
    return rb_err(err, errlen, "out of memory");
  snprintf(name, len, "%s%s%s", pre, mid, post);
  int rc = expand_range(hl, name, err, errlen);
  free(name);
  return rc;
}

/* Expands the first "[a:b]" or "[a:b:step]" range of pat (numeric, keeping
 * leading zeros, or single letters), recursing for further ranges. */
static int expand_range(hostline *hl, const char *pat, char *err, size_t errlen)
{
  const char *lb = strchr(pat, '[');
  const char *rb = lb ? strchr(lb, ']') : NULL;
  if (lb == NULL || rb == NULL || lb == pat)
    return add_host(hl, pat, err, errlen);
  char spec[64];
  if ((size_t)(rb - lb - 1) >= sizeof spec)
    return rb_err(err, errlen, "host range '%s' is too long", pat);
  memcpy(spec, lb + 1, (size_t)(rb - lb - 1));
  spec[rb - lb - 1] = '\0';
  char *a = spec, *b = strchr(spec, ':');
  if (b == NULL)
    return rb_err(err, errlen, "host range '%s' needs [start:end]", pat);
  *b++ = '\0';
  long step = 1;
  char *c = strchr(b, ':');
  if (c != NULL) {
    *c++ = '\0';
    step = strtol(c, NULL, 10);
    if (step <= 0)
      return rb_err(err, errlen, "host range '%s': bad step", pat);
  }
  char *pre = strndup(pat, (size_t)(lb - pat));
  if (pre == NULL)
    return rb_err(err, errlen, "out of memory");
  int rc = 0;
  char mid[72]; /* a width up to 63 digits (spec is under 64 bytes) */
  if (isalpha((unsigned char)a[0]) && a[1] == '\0' && isalpha((unsigned char)b[0]) &&
      b[1] == '\0' && a[0] <= b[0]) {
    for (int ch = a[0]; ch <= b[0] && rc == 0; ch += (int)step) {
      mid[0] = (char)ch;
      mid[1] = '\0';
      rc = expand_one(hl, pre, mid, rb + 1, err, errlen);
    }
  } else {
    char *e1, *e2;
    errno = 0;
    long from = strtol(a, &e1, 10), to = strtol(b, &e2, 10);
    if (*a == '\0' || *b == '\0' || *e1 || *e2 || errno || from < 0 || to < from ||
        (to - from) / step > INV_MAX_RANGE) {
      free(pre);
      return rb_err(err, errlen, "host range '%s': want [N:M] with N <= M", pat);
    }
    int width = (a[0] == '0' && a[1] != '\0') ? (int)strlen(a) : 0;
    for (long i = from; i <= to && rc == 0; i += step) {
      snprintf(mid, sizeof mid, "%0*ld", width, i);
      rc = expand_one(hl, pre, mid, rb + 1, err, errlen);
    }
  }
  free(pre);
  return rc;
}

enum { SEC_HOSTS, SEC_VARS, SEC_CHILDREN };

/* Removes a " # comment" (a '#' after whitespace, outside quotes), as
 * Ansible's shlex split with comments does. */
static void strip_comment(char *s)
{
  char q = 0;
  for (char *p = s; *p; p++) {
    if (q && *p == q)
      q = 0;
    else if (!q && (*p == '"' || *p == '\''))
      q = *p;
    else if (!q && *p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
      *p = '\0';
      break;
    }
  }
  rb_trim(s);
}

/* A value quoted as a whole loses its quotes (literal_eval of a string). */
static char *unquote(char *v)
{
  size_t vn = strlen(v);
  if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
    v[vn - 1] = '\0';
    v++;
  }
  return v;
}

/* A scalar Python literal: a number, True/False/None or a quoted string. */
static int is_literal(const char *v)
{
  size_t n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0] &&
      strchr(v + 1, v[0]) == v + n - 1)
    return 1;
  if (strcmp(v, "True") == 0 || strcmp(v, "False") == 0 || strcmp(v, "None") == 0)
    return 1;
  char *end;
  const char *d = (*v == '-' || *v == '+') ? v + 1 : v;
  if (!isdigit((unsigned char)*d) && !(*d == '.' && isdigit((unsigned char)d[1])))
    return 0;
  (void)strtod(v, &end);
  return *end == '\0';
}

static int parse_header(rb_ssh_inventory *inv, char *s, long *gi, int *sec, char *err,
                        size_t errlen)
{
  char *close = strchr(s, ']');
  if (close == NULL)
    return rb_err(err, errlen, "section header without closing ']'");
  char *rest = close + 1;
  while (isspace((unsigned char)*rest))
    rest++;
  if (*rest != '\0' && *rest != '#') /* Ansible's section pattern allows only '#' */
    return rb_err(
        err, errlen,
        "unexpected text '%s' after section header (only a # comment may follow)", rest);
  *close = '\0';
  char *name = rb_trim(s + 1);
  char *colon = strchr(name, ':');
  *sec = SEC_HOSTS;
  if (colon != NULL) {
    *colon = '\0';
    if (strcmp(colon + 1, "vars") == 0)
      *sec = SEC_VARS;
    else if (strcmp(colon + 1, "children") == 0)
      *sec = SEC_CHILDREN;
    else
      return rb_err(err, errlen, "unknown section kind ':%s' (want :vars or :children)",
                    colon + 1);
  }
  if (strchr(name, '.') != NULL)
    return rb_err(err, errlen,
                  "unsupported inventory format: TOML (section [%s]); use INI or YAML",
                  name);
  if (!valid_name(name))
    return rb_err(err, errlen, "bad group name '%s'", name);
  if ((*gi = get_group(inv, name)) < 0)
    return rb_err(err, errlen, "out of memory");
  return 0;
}

int rb_ssh_inv_group_var(rb_ssh_inventory *inv, long gi, const char *k, const char *v,
                         char *err, size_t errlen)
{
  igroup *g = &inv->groups[gi];
  if (strcmp(k, "ansible_group_priority") == 0) {
    char *end;
    errno = 0;
    long p = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno)
      return rb_err(err, errlen,
                    "group %s: ansible_group_priority '%s' is not an integer", g->name,
                    v);
    g->priority = p;
    return 0;
  }
  if (rb_ssh_kv_set(&g->vars, k, v) < 0)
    return rb_err(err, errlen, "out of memory");
  return 0;
}

static int parse_vars_line(rb_ssh_inventory *inv, long gi, char *s, char *err,
                           size_t errlen)
{
  const char *gname = inv->groups[gi].name;
  char *eq = strchr(s, '=');
  if (eq == NULL)
    return rb_err(err, errlen, "expected key=value in [%s:vars]", gname);
  *eq = '\0';
  char *k = rb_trim(s), *v = rb_trim(eq + 1);
  /* Ansible hands the rest of the line to Python's literal_eval, which drops
   * a trailing comment only when what precedes it is a literal */
  char *head = strdup(v);
  if (head == NULL)
    return rb_err(err, errlen, "out of memory");
  strip_comment(head);
  if (is_literal(head))
    strcpy(v, head);
  free(head);
  v = unquote(v);
  if (*k == '\0')
    return rb_err(err, errlen, "empty key in [%s:vars]", gname);
  return rb_ssh_inv_group_var(inv, gi, k, v, err, errlen);
}

/* The key=value words after a host pattern, as a variable list. */
static int host_words(char **words, size_t n, kvlist *vars, char *err, size_t errlen)
{
  for (size_t i = 0; i < n; i++) {
    char *w = words[i];
    char *eq = strchr(w, '=');
    if (eq == NULL || eq == w)
      return rb_err(err, errlen, "expected key=value after the host name, got '%s'", w);
    *eq = '\0';
    int rc = rb_ssh_kv_set(vars, w, unquote(eq + 1));
    *eq = '=';
    if (rc < 0)
      return rb_err(err, errlen, "out of memory");
  }
  return 0;
}

int rb_ssh_inv_add_hosts(rb_ssh_inventory *inv, long gi, const char *pattern,
                         const rb_ssh_kvlist *vars, char *err, size_t errlen)
{
  hostline hl = {inv, gi, vars};
  return expand_range(&hl, pattern, err, errlen);
}

long rb_ssh_inv_group(rb_ssh_inventory *inv, const char *name)
{
  return get_group(inv, name);
}

int rb_ssh_inv_add_child(rb_ssh_inventory *inv, long parent, const char *child)
{
  if (get_group(inv, child) < 0)
    return -1;
  return group_add_child(&inv->groups[parent], child);
}

static int parse_line(rb_ssh_inventory *inv, char *s, long *gi, int *sec, char *err,
                      size_t errlen)
{
  char *close = *s == '[' ? strchr(s, ']') : NULL;
  if (*s == '[' && (close == NULL || close[1] != ':')) /* "[v6]:port" is a host */
    return parse_header(inv, s, gi, sec, err, errlen);
  if (*sec == SEC_VARS)
    return parse_vars_line(inv, *gi, s, err, errlen);
  char *words[128];
  size_t n = split_words(s, words, 128);
  if (n == 0)
    return 0;
  if (*sec == SEC_CHILDREN) {
    if (n != 1 || !valid_name(words[0]))
      return rb_err(err, errlen, "expected one group name in [%s:children]",
                    inv->groups[*gi].name);
    if (get_group(inv, words[0]) < 0 || group_add_child(&inv->groups[*gi], words[0]) < 0)
      return rb_err(err, errlen, "out of memory");
    return 0;
  }
  kvlist vars = {0};
  int rc = host_words(words + 1, n - 1, &vars, err, errlen);
  if (rc == 0)
    rc = rb_ssh_inv_add_hosts(inv, *gi, words[0], &vars, err, errlen);
  rb_ssh_kv_free(&vars);
  return rc;
}

/* Depth of each group below "all" (parents first when applying vars). Fails
 * on a children cycle. */
static int compute_depths(rb_ssh_inventory *inv, char *err, size_t errlen)
{
  for (size_t i = 0; i < inv->ngroups; i++)
    inv->groups[i].depth = strcmp(inv->groups[i].name, "all") == 0 ? 0 : 1;
  for (size_t round = 0;; round++) {
    int changed = 0;
    for (size_t i = 0; i < inv->ngroups; i++) {
      igroup *g = &inv->groups[i];
      for (size_t j = 0; j < g->nchildren; j++) {
        igroup *c = &inv->groups[find_group(inv, g->children[j])];
        if (c->depth < g->depth + 1) {
          c->depth = g->depth + 1;
          changed = 1;
        }
      }
    }
    if (!changed)
      return 0;
    if (round > inv->ngroups || round > INV_MAX_DEPTH)
      return rb_err(err, errlen, "%s: [group:children] sections form a cycle", inv->name);
  }
}

static int has_ext(const char *name, const char *ext)
{
  size_t n = strlen(name), e = strlen(ext);
  return n > e && strcmp(name + n - e, ext) == 0;
}

/* The first line that is neither blank nor a comment. */
static const char *first_line(const char *t)
{
  while (*t) {
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
      t++;
    if (*t != '#' && *t != ';')
      return t;
    while (*t && *t != '\n')
      t++;
  }
  return t;
}

/* YAML when the name says so (Ansible's yaml plugin: .yml, .yaml, .json) or
 * the text starts like YAML: "---", a flow mapping, or "name:" on a line of
 * its own, which no INI host line is. Refuses what Ansible would hand to a
 * plugin runbook does not have. */
static int sniff_format(const char *text, const char *name, int *yaml, char *err,
                        size_t errlen)
{
  *yaml = 0;
  if (strncmp(text, "$ANSIBLE_VAULT;", 15) == 0)
    return rb_err(err, errlen,
                  "%s: vault-encrypted inventories are not supported: decrypt with "
                  "ansible-vault view",
                  name);
  if (strncmp(text, "#!", 2) == 0)
    return rb_err(err, errlen,
                  "%s: unsupported inventory format: script (dynamic inventory); "
                  "write its --list output to a YAML or JSON file",
                  name);
  if (has_ext(name, ".toml"))
    return rb_err(err, errlen, "%s: unsupported inventory format: TOML; use INI or YAML",
                  name);
  if (has_ext(name, ".yml") || has_ext(name, ".yaml") || has_ext(name, ".json")) {
    *yaml = 1;
    return 0;
  }
  const char *l = first_line(text);
  size_t n = strcspn(l, "\n");
  while (n > 0 && isspace((unsigned char)l[n - 1]))
    n--;
  if ((n >= 3 && strncmp(l, "---", 3) == 0) || l[0] == '{')
    *yaml = 1;
  else if (n > 1 && l[n - 1] == ':' && memchr(l, '=', n) == NULL && l[0] != '[')
    *yaml = 1;
  return 0;
}

static int parse_ini(rb_ssh_inventory *inv, char *copy, char *err, size_t errlen)
{
  char lerr[256];
  long gi = -1;
  int sec = SEC_HOSTS, lineno = 0;
  for (char *line = copy; line != NULL;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    lineno++;
    char *s = rb_trim(line);
    if (*s != '\0' && *s != '#' && *s != ';' &&
        parse_line(inv, s, &gi, &sec, lerr, sizeof lerr) < 0)
      return rb_err(err, errlen, "%s:%d: %s", inv->name, lineno, lerr);
    line = nl ? nl + 1 : NULL;
  }
  return 0;
}

rb_ssh_inventory *rb_ssh_inventory_parse(const char *text, const char *name, char *err,
                                         size_t errlen)
{
  rb_ssh_inventory *inv = calloc(1, sizeof *inv);
  char *copy = strdup(text ? text : "");
  int yaml = 0;
  if (inv == NULL || copy == NULL ||
      (inv->name = strdup(name ? name : "inventory")) == NULL)
    goto oom;
  if (get_group(inv, "all") < 0 || get_group(inv, "ungrouped") < 0)
    goto oom;
  if (sniff_format(copy, inv->name, &yaml, err, errlen) < 0)
    goto fail;
  if (yaml ? rb_ssh_inventory_yaml(inv, copy, strlen(copy), err, errlen) < 0
           : parse_ini(inv, copy, err, errlen) < 0)
    goto fail;
  if (compute_depths(inv, err, errlen) < 0)
    goto fail;
  free(copy);
  return inv;
oom:
  rb_err(err, errlen, "out of memory reading inventory");
fail:
  free(copy);
  rb_ssh_inventory_free(inv);
  return NULL;
}

rb_ssh_inventory *rb_ssh_inventory_load(const char *path, char *err, size_t errlen)
{
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0) {
    /* Ansible runs an executable inventory as a script */
    rb_err(err, errlen,
           "%s: unsupported inventory format: script (the file is executable); "
           "write its --list output to a YAML or JSON file, or chmod -x it",
           path);
    return NULL;
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    rb_err(err, errlen, "inventory %s: %s", path, strerror(errno));
    return NULL;
  }
  rb_buf text;
  rb_buf_init(&text, SIZE_MAX);
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (rb_buf_add(&text, chunk, got) != RB_BUF_OK) {
      rb_buf_free(&text);
      fclose(f);
      rb_err(err, errlen, "inventory %s: out of memory", path);
      return NULL;
    }
  }
  int rerr = ferror(f);
  fclose(f);
  if (rerr) {
    rb_buf_free(&text);
    rb_err(err, errlen, "inventory %s: read error", path);
    return NULL;
  }
  char *buf = rb_buf_take(&text);
  if (buf == NULL)
    return NULL;
  rb_ssh_inventory *inv = rb_ssh_inventory_parse(buf, path, err, errlen);
  free(buf);
  return inv;
}

const char *rb_ssh_inventory_name(const rb_ssh_inventory *inv)
{
  return inv->name;
}

size_t rb_ssh_inventory_host_count(const rb_ssh_inventory *inv)
{
  return inv ? inv->nhosts : 0;
}

size_t rb_ssh_inventory_group_count(const rb_ssh_inventory *inv)
{
  return inv ? inv->ngroups : 0;
}

/* Marks in mark[] every host of group gi, through its children. */
static void mark_group(const rb_ssh_inventory *inv, size_t gi, char *mark, int depth)
{
  const igroup *g = &inv->groups[gi];
  if (depth > INV_MAX_DEPTH)
    return;
  if (strcmp(g->name, "all") == 0) {
    memset(mark, 1, inv->nhosts);
    return;
  }
  if (strcmp(g->name, "ungrouped") == 0) {
    /* hosts listed outside any group, and never put in one later */
    for (size_t h = 0; h < inv->nhosts; h++) {
      int grouped = 0;
      for (size_t i = 0; i < inv->ngroups && !grouped; i++) {
        const igroup *o = &inv->groups[i];
        if (strcmp(o->name, "all") == 0 || strcmp(o->name, "ungrouped") == 0)
          continue;
        for (size_t j = 0; j < o->nhosts; j++)
          if (o->hosts[j] == h)
            grouped = 1;
      }
      if (!grouped)
        mark[h] = 1;
    }
    return;
  }
  for (size_t i = 0; i < g->nhosts; i++)
    mark[g->hosts[i]] = 1;
  for (size_t i = 0; i < g->nchildren; i++)
    mark_group(inv, (size_t)find_group(inv, g->children[i]), mark, depth + 1);
}

static int group_has_host(const rb_ssh_inventory *inv, size_t gi, size_t hi,
                          char *scratch)
{
  memset(scratch, 0, inv->nhosts);
  mark_group(inv, gi, scratch, 0);
  return scratch[hi];
}

/* Ansible's group order for merging vars: depth, then ansible_group_priority,
 * then name; a later group's value wins. */
static int group_cmp(const igroup *a, const igroup *b)
{
  if (a->depth != b->depth)
    return a->depth < b->depth ? -1 : 1;
  if (a->priority != b->priority)
    return a->priority < b->priority ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Effective value of var for host hi: all, then groups in group_cmp order,
 * then the host line, later ones winning as in Ansible. */
static const char *host_var(const rb_ssh_inventory *inv, size_t hi, const char *var,
                            const char *alt, char *scratch)
{
  const char *v = kv_get(&inv->hosts[hi].vars, var);
  if (v == NULL && alt != NULL)
    v = kv_get(&inv->hosts[hi].vars, alt);
  if (v != NULL)
    return v;
  const igroup *best = NULL;
  for (size_t i = 0; i < inv->ngroups; i++) {
    const igroup *g = &inv->groups[i];
    const char *gv = kv_get(&g->vars, var);
    if (gv == NULL && alt != NULL)
      gv = kv_get(&g->vars, alt);
    if (gv == NULL || !group_has_host(inv, i, hi, scratch))
      continue;
    if (best == NULL || group_cmp(g, best) > 0) {
      best = g;
      v = gv;
    }
  }
  return v;
}

void rb_ssh_host_clear(rb_ssh_host *h)
{
  if (h == NULL)
    return;
  free(h->name);
  free(h->address);
  free(h->user);
  free(h->identity);
  memset(h, 0, sizeof *h);
}

void rb_ssh_hosts_free(rb_ssh_host *hosts, size_t n)
{
  if (hosts == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    rb_ssh_host_clear(&hosts[i]);
  free(hosts);
}

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

int rb_ssh_host_copy(rb_ssh_host *dst, const rb_ssh_host *src)
{
  memset(dst, 0, sizeof *dst);
  dst->port = src->port;
  dst->name = dup_or_null(src->name);
  dst->address = dup_or_null(src->address);
  dst->user = dup_or_null(src->user);
  dst->identity = dup_or_null(src->identity);
  if (dst->name == NULL || dst->address == NULL || (src->user && !dst->user) ||
      (src->identity && !dst->identity)) {
    rb_ssh_host_clear(dst);
    return -1;
  }
  return 0;
}

static char *expand_home(const char *p)
{
  if (p == NULL)
    return NULL;
  if (p[0] == '~' && p[1] == '/') {
    const char *home = getenv("HOME");
    if (home != NULL) {
      size_t n = strlen(home) + strlen(p);
      char *r = malloc(n);
      if (r != NULL)
        snprintf(r, n, "%s%s", home, p + 1);
      return r;
    }
  }
  return strdup(p);
}

static int parse_port(const char *s, int *port)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || errno || v < 1 || v > 65535)
    return -1;
  *port = (int)v;
  return 0;
}

static int fill_host(const rb_ssh_inventory *inv, size_t hi, rb_ssh_host *out,
                     char *scratch, char *err, size_t errlen)
{
  const char *name = inv->hosts[hi].name;
  const char *addr = host_var(inv, hi, "ansible_host", "ansible_ssh_host", scratch);
  const char *port = host_var(inv, hi, "ansible_port", "ansible_ssh_port", scratch);
  const char *user = host_var(inv, hi, "ansible_user", "ansible_ssh_user", scratch);
  const char *key = host_var(inv, hi, "ansible_ssh_private_key_file",
                             "ansible_private_key_file", scratch);
  memset(out, 0, sizeof *out);
  if (port != NULL && parse_port(port, &out->port) < 0)
    return rb_err(err, errlen, "%s: host %s: bad ansible_port '%s'", inv->name, name,
                  port);
  out->name = strdup(name);
  out->address = strdup(addr ? addr : name);
  out->user = dup_or_null(user);
  out->identity = expand_home(key);
  if (out->name == NULL || out->address == NULL || (user && !out->user) ||
      (key && !out->identity)) {
    rb_ssh_host_clear(out);
    return rb_err(err, errlen, "out of memory");
  }
  return 0;
}

/* "[user@]address[:port]" or "[user@][v6addr]:port" as a host of its own. */
static int literal_host(const char *item, rb_ssh_host *out, char *err, size_t errlen)
{
  memset(out, 0, sizeof *out);
  char buf[512];
  if (rb_fmt(buf, sizeof buf, "%s", item) < 0)
    return rb_err(err, errlen, "ssh target '%.40s...' is too long", item);
  char *at = strrchr(buf, '@'), *hp = buf, *port = NULL;
  if (at != NULL) {
    *at = '\0';
    hp = at + 1;
    if ((out->user = strdup(buf)) == NULL)
      return rb_err(err, errlen, "out of memory");
  }
  if (*hp == '[') {
    char *rb = strchr(hp, ']');
    if (rb == NULL)
      goto bad;
    *rb = '\0';
    if (rb[1] == ':')
      port = rb + 2;
    else if (rb[1] != '\0')
      goto bad;
    hp++;
  } else {
    char *c = strchr(hp, ':');
    if (c != NULL && strchr(c + 1, ':') == NULL) {
      *c = '\0';
      port = c + 1;
    }
  }
  if (*hp == '\0' || !valid_name(hp) || (port && parse_port(port, &out->port) < 0))
    goto bad;
  out->name = strdup(item);
  out->address = strdup(hp);
  if (out->name == NULL || out->address == NULL) {
    rb_ssh_host_clear(out);
    return rb_err(err, errlen, "out of memory");
  }
  return 0;
bad:
  rb_ssh_host_clear(out);
  return rb_err(err, errlen, "bad ssh target '%s' (want [user@]host[:port])", item);
}

static int has_parent(const rb_ssh_inventory *inv, const char *name)
{
  for (size_t i = 0; i < inv->ngroups; i++)
    for (size_t j = 0; j < inv->groups[i].nchildren; j++)
      if (strcmp(inv->groups[i].children[j], name) == 0)
        return 1;
  return 0;
}

/* A group's direct hosts, in order: "ungrouped" has those in no other group;
 * "all" has only the hosts a YAML inventory lists under it. */
static size_t group_direct(const rb_ssh_inventory *inv, size_t gi, size_t *out,
                           char *seen)
{
  const igroup *g = &inv->groups[gi];
  size_t n = 0;
  if (strcmp(g->name, "ungrouped") == 0) {
    char *mark = calloc(inv->nhosts + 1, 1);
    if (mark == NULL)
      return 0;
    mark_group(inv, gi, mark, 0);
    for (size_t h = 0; h < inv->nhosts; h++)
      if (mark[h] && !seen[h]) {
        seen[h] = 1;
        out[n++] = h;
      }
    free(mark);
    return n;
  }
  for (size_t i = 0; i < g->nhosts; i++)
    if (!seen[g->hosts[i]]) {
      seen[g->hosts[i]] = 1;
      out[n++] = g->hosts[i];
    }
  return n;
}

typedef struct {
  size_t *v, n;
  char *queued;
} groupq;

static void enqueue(groupq *q, long gi)
{
  if (gi >= 0 && !q->queued[gi]) {
    q->queued[gi] = 1;
    q->v[q->n++] = (size_t)gi;
  }
}

/* The order Ansible's patterns (and so `serial`) walk a group in: its own
 * hosts, then its children's level by level (Group.get_hosts). The children
 * of "all" are "ungrouped", its listed children, then every group without a
 * parent. Writes host indices to out (nhosts long); seen is scratch. */
static size_t group_order(const rb_ssh_inventory *inv, size_t gi, size_t *out, char *seen)
{
  groupq q = {malloc((inv->ngroups + 1) * sizeof(size_t)), 0,
              calloc(inv->ngroups + 1, 1)};
  size_t n = 0;
  if (q.v == NULL || q.queued == NULL)
    goto out;
  memset(seen, 0, inv->nhosts);
  enqueue(&q, (long)gi);
  for (size_t k = 0; k < q.n; k++) {
    const igroup *g = &inv->groups[q.v[k]];
    int all = strcmp(g->name, "all") == 0;
    n += group_direct(inv, q.v[k], out + n, seen);
    if (all)
      enqueue(&q, find_group(inv, "ungrouped"));
    for (size_t i = 0; i < g->nchildren; i++)
      enqueue(&q, find_group(inv, g->children[i]));
    for (size_t i = 0; all && i < inv->ngroups; i++)
      if (i != q.v[k] && !has_parent(inv, inv->groups[i].name))
        enqueue(&q, (long)i);
  }
out:
  free(q.v);
  free(q.queued);
  return n;
}

typedef struct {
  rb_ssh_host *v;
  size_t n, cap;
} hostvec;

static int hv_has(const hostvec *hv, const char *name)
{
  for (size_t i = 0; i < hv->n; i++)
    if (strcmp(hv->v[i].name, name) == 0)
      return 1;
  return 0;
}

static rb_ssh_host *hv_push(hostvec *hv)
{
  if (grow((void **)&hv->v, &hv->cap, hv->n + 1, sizeof(rb_ssh_host)) < 0)
    return NULL;
  return &hv->v[hv->n];
}

static int resolve_item(const rb_ssh_inventory *inv, const char *item, hostvec *hv,
                        char *scratch, char *mark, char *err, size_t errlen)
{
  if (inv == NULL) {
    rb_ssh_host *h = hv_push(hv);
    if (h == NULL)
      return rb_err(err, errlen, "out of memory");
    if (literal_host(item, h, err, errlen) < 0)
      return -1;
    if (hv_has(hv, h->name))
      rb_ssh_host_clear(h);
    else
      hv->n++;
    return 0;
  }
  long gi = find_group(inv, item), hi = find_host(inv, item);
  if (gi < 0 && hi < 0)
    return rb_err(err, errlen, "ssh target '%s': no such host or group in inventory %s",
                  item, inv->name);
  size_t *order = malloc((inv->nhosts + 1) * sizeof *order), n = 0;
  if (order == NULL)
    return rb_err(err, errlen, "out of memory");
  if (gi >= 0)
    n = group_order(inv, (size_t)gi, order, mark);
  else
    order[n++] = (size_t)hi;
  int rc = 0;
  for (size_t k = 0; k < n && rc == 0; k++) {
    size_t i = order[k];
    if (hv_has(hv, inv->hosts[i].name))
      continue;
    rb_ssh_host *h = hv_push(hv);
    if (h == NULL)
      rc = rb_err(err, errlen, "out of memory");
    else if ((rc = fill_host(inv, i, h, scratch, err, errlen)) == 0)
      hv->n++;
  }
  free(order);
  return rc;
}

int rb_ssh_inventory_resolve(const rb_ssh_inventory *inv, const char *target,
                             rb_ssh_host **out, size_t *n, char *err, size_t errlen)
{
  *out = NULL;
  *n = 0;
  if (target == NULL)
    return rb_err(err, errlen, "ssh target is empty");
  hostvec hv = {0};
  size_t nh = inv ? inv->nhosts : 0;
  char *copy = strdup(target), *scratch = malloc(nh + 1), *mark = malloc(nh + 1);
  int rc = -1, items = 0;
  if (copy == NULL || scratch == NULL || mark == NULL) {
    rb_err(err, errlen, "out of memory");
    goto out;
  }
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    char *item = rb_trim(tok);
    if (*item == '\0')
      continue;
    items++;
    if (resolve_item(inv, item, &hv, scratch, mark, err, errlen) < 0)
      goto out;
  }
  if (items == 0) {
    rb_err(err, errlen, "ssh target is empty");
    goto out;
  }
  if (hv.n == 0) {
    rb_err(err, errlen, "ssh target '%s' names no hosts", target);
    goto out;
  }
  *out = hv.v;
  *n = hv.n;
  hv.v = NULL;
  hv.n = 0;
  rc = 0;
out:
  rb_ssh_hosts_free(hv.v, hv.n);
  free(copy);
  free(scratch);
  free(mark);
  return rc;
}

/* All of host hi's variables merged in Ansible's order, into obj. */
static int list_hostvars(const rb_ssh_inventory *inv, size_t hi, json_t *obj,
                         char *scratch)
{
  const igroup **gs = malloc((inv->ngroups + 1) * sizeof *gs);
  size_t n = 0;
  if (gs == NULL)
    return -1;
  for (size_t i = 0; i < inv->ngroups; i++) {
    if (!group_has_host(inv, i, hi, scratch))
      continue;
    size_t j = n++;
    for (; j > 0 && group_cmp(gs[j - 1], &inv->groups[i]) > 0; j--)
      gs[j] = gs[j - 1];
    gs[j] = &inv->groups[i];
  }
  int rc = 0;
  for (size_t i = 0; i <= n && rc == 0; i++) {
    const kvlist *l = i < n ? &gs[i]->vars : &inv->hosts[hi].vars;
    for (size_t k = 0; k < l->n && rc == 0; k++)
      rc = json_object_set_new(obj, l->v[k].k, json_string(l->v[k].v));
  }
  free(gs);
  return rc;
}

static int group_has_child(const igroup *g, size_t ci, const rb_ssh_inventory *inv)
{
  for (size_t j = 0; j < g->nchildren; j++)
    if (strcmp(g->children[j], inv->groups[ci].name) == 0)
      return 1;
  return 0;
}

/* One group's direct hosts and children, as ansible-inventory --list has
 * them; "all" gets every group without a parent, "ungrouped" its hosts. */
static json_t *list_group(const rb_ssh_inventory *inv, size_t gi, char *scratch)
{
  const igroup *g = &inv->groups[gi];
  json_t *o = json_object(), *hosts = json_array(), *kids = json_array();
  int all = strcmp(g->name, "all") == 0, ung = strcmp(g->name, "ungrouped") == 0;
  if (ung) {
    memset(scratch, 0, inv->nhosts);
    mark_group(inv, gi, scratch, 0);
    for (size_t h = 0; h < inv->nhosts; h++)
      if (scratch[h])
        json_array_append_new(hosts, json_string(inv->hosts[h].name));
  } else if (!all) {
    for (size_t i = 0; i < g->nhosts; i++)
      json_array_append_new(hosts, json_string(inv->hosts[g->hosts[i]].name));
  }
  for (size_t i = 0; all && i < inv->ngroups; i++)
    if (i != gi && (!has_parent(inv, inv->groups[i].name) || group_has_child(g, i, inv)))
      json_array_append_new(kids, json_string(inv->groups[i].name));
  for (size_t i = 0; !all && i < g->nchildren; i++)
    json_array_append_new(kids, json_string(g->children[i]));
  if (json_array_size(hosts) > 0)
    json_object_set(o, "hosts", hosts);
  if (json_array_size(kids) > 0)
    json_object_set(o, "children", kids);
  json_decref(hosts);
  json_decref(kids);
  return o;
}

json_t *rb_ssh_inventory_list_json(const rb_ssh_inventory *inv)
{
  json_t *out = json_object(), *hv = json_object(), *meta = json_object();
  char *scratch = malloc(inv->nhosts + 1);
  if (out == NULL || hv == NULL || meta == NULL || scratch == NULL)
    goto fail;
  for (size_t h = 0; h < inv->nhosts; h++) {
    json_t *vars = json_object();
    if (vars == NULL || json_object_set_new(hv, inv->hosts[h].name, vars) < 0 ||
        list_hostvars(inv, h, vars, scratch) < 0)
      goto fail;
  }
  json_object_set_new(meta, "hostvars", hv);
  hv = NULL;
  json_object_set_new(out, "_meta", meta);
  meta = NULL;
  for (size_t g = 0; g < inv->ngroups; g++) {
    json_t *o = list_group(inv, g, scratch);
    if (o == NULL || json_object_set_new(out, inv->groups[g].name, o) < 0)
      goto fail;
  }
  free(scratch);
  return out;
fail:
  json_decref(hv);
  json_decref(meta);
  json_decref(out);
  free(scratch);
  return NULL;
}
