/* inventory.c: reads Ansible INI inventories (groups, children, vars, ranges)
 * and resolves target strings into ordered, de-duplicated host lists. */
#include "stdlib/ssh/inventory.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"

#define INV_MAX_RANGE 100000
#define INV_MAX_DEPTH 64

typedef struct {
  char *k, *v;
} kv;

typedef struct {
  kv *v;
  size_t n, cap;
} kvlist;

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

static int kv_set(kvlist *l, const char *k, const char *v)
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

static void kv_free(kvlist *l)
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
    kv_free(&inv->hosts[i].vars);
  }
  for (size_t i = 0; i < inv->ngroups; i++) {
    igroup *g = &inv->groups[i];
    free(g->name);
    free(g->hosts);
    for (size_t j = 0; j < g->nchildren; j++)
      free(g->children[j]);
    free(g->children);
    kv_free(&g->vars);
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

/* One host line being expanded: its group and the key=value words after the
 * host pattern, applied to every host the pattern names. */
typedef struct {
  rb_ssh_inventory *inv;
  long gi;
  char **words;
  size_t nwords;
} hostline;

static int add_host(hostline *hl, const char *name, char *err, size_t errlen)
{
  rb_ssh_inventory *inv = hl->inv;
  char buf[512];
  if (rb_fmt(buf, sizeof buf, "%s", name) < 0)
    return rb_err(err, errlen, "host name '%.40s...' is too long", name);
  const char *port = NULL;
  char *colon = strchr(buf, ':');
  /* "host:2222" is Ansible's port shorthand; IPv6 literals have several ':' */
  if (colon != NULL && strchr(colon + 1, ':') == NULL) {
    *colon = '\0';
    port = colon + 1;
  }
  if (!valid_name(buf))
    return rb_err(err, errlen, "bad host name '%s'", name);
  long hi = get_host(inv, buf);
  if (hi < 0)
    return rb_err(err, errlen, "out of memory");
  if (hl->gi >= 0 && group_add_host(&inv->groups[hl->gi], (size_t)hi) < 0)
    return rb_err(err, errlen, "out of memory");
  ihost *h = &inv->hosts[hi];
  if (port != NULL && kv_set(&h->vars, "ansible_port", port) < 0)
    return rb_err(err, errlen, "out of memory");
  for (size_t i = 0; i < hl->nwords; i++) {
    char *w = hl->words[i];
    char *eq = strchr(w, '=');
    if (eq == NULL || eq == w)
      return rb_err(err, errlen, "expected key=value after the host name, got '%s'", w);
    *eq = '\0';
    int rc = kv_set(&h->vars, w, eq + 1);
    *eq = '=';
    if (rc < 0)
      return rb_err(err, errlen, "out of memory");
  }
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

static int parse_header(rb_ssh_inventory *inv, char *s, long *gi, int *sec, char *err,
                        size_t errlen)
{
  size_t n = strlen(s);
  if (s[n - 1] != ']')
    return rb_err(err, errlen, "section header without closing ']'");
  s[n - 1] = '\0';
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
  if (!valid_name(name))
    return rb_err(err, errlen, "bad group name '%s'", name);
  if ((*gi = get_group(inv, name)) < 0)
    return rb_err(err, errlen, "out of memory");
  return 0;
}

static int parse_vars_line(igroup *g, char *s, char *err, size_t errlen)
{
  char *eq = strchr(s, '=');
  if (eq == NULL)
    return rb_err(err, errlen, "expected key=value in [%s:vars]", g->name);
  *eq = '\0';
  char *k = rb_trim(s), *v = rb_trim(eq + 1);
  size_t vn = strlen(v);
  if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
    v[vn - 1] = '\0';
    v++;
  }
  if (*k == '\0')
    return rb_err(err, errlen, "empty key in [%s:vars]", g->name);
  if (kv_set(&g->vars, k, v) < 0)
    return rb_err(err, errlen, "out of memory");
  return 0;
}

static int parse_line(rb_ssh_inventory *inv, char *s, long *gi, int *sec, char *err,
                      size_t errlen)
{
  if (*s == '[')
    return parse_header(inv, s, gi, sec, err, errlen);
  if (*sec == SEC_VARS)
    return parse_vars_line(&inv->groups[*gi], s, err, errlen);
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
  hostline hl = {inv, *gi, words + 1, n - 1};
  return expand_range(&hl, words[0], err, errlen);
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

rb_ssh_inventory *rb_ssh_inventory_parse(const char *text, const char *name, char *err,
                                         size_t errlen)
{
  rb_ssh_inventory *inv = calloc(1, sizeof *inv);
  char *copy = strdup(text ? text : "");
  char lerr[256];
  if (inv == NULL || copy == NULL ||
      (inv->name = strdup(name ? name : "inventory")) == NULL)
    goto oom;
  if (get_group(inv, "all") < 0 || get_group(inv, "ungrouped") < 0)
    goto oom;
  long gi = -1;
  int sec = SEC_HOSTS, lineno = 0;
  for (char *line = copy; line != NULL;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    lineno++;
    char *s = rb_trim(line);
    if (*s != '\0' && *s != '#' && *s != ';' &&
        parse_line(inv, s, &gi, &sec, lerr, sizeof lerr) < 0) {
      rb_err(err, errlen, "%s:%d: %s", inv->name, lineno, lerr);
      goto fail;
    }
    line = nl ? nl + 1 : NULL;
  }
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

/* Effective value of var for host hi: all, then groups by depth (then name),
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
    if (best == NULL || g->depth > best->depth ||
        (g->depth == best->depth && strcmp(g->name, best->name) > 0)) {
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
  memset(mark, 0, inv->nhosts);
  long gi = find_group(inv, item), hi = find_host(inv, item);
  if (gi >= 0)
    mark_group(inv, (size_t)gi, mark, 0);
  else if (hi >= 0)
    mark[hi] = 1;
  else
    return rb_err(err, errlen, "ssh target '%s': no such host or group in inventory %s",
                  item, inv->name);
  for (size_t i = 0; i < inv->nhosts; i++) {
    if (!mark[i] || hv_has(hv, inv->hosts[i].name))
      continue;
    rb_ssh_host *h = hv_push(hv);
    if (h == NULL)
      return rb_err(err, errlen, "out of memory");
    if (fill_host(inv, i, h, scratch, err, errlen) < 0)
      return -1;
    hv->n++;
  }
  return 0;
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
