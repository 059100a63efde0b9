/* inventory_yaml.c: reads Ansible YAML (and JSON) inventories through libyaml
 * into the same groups, hosts and variables as the INI reader. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "runner/base/util.h"
#include "stdlib/ssh/inventory_int.h"

#define YINV_MAX_DEPTH 64

typedef struct {
  rb_ssh_inventory *inv;
  yaml_document_t *doc;
  const char *path;
  char *err;
  size_t errlen;
} yinv;

static int yfail(yinv *y, const yaml_node_t *n, const char *msg, const char *what)
{
  return rb_err(y->err, y->errlen, "%s:%lu: %s%s%s", y->path,
                n ? (unsigned long)n->start_mark.line + 1 : 0UL, msg, what ? " " : "",
                what ? what : "");
}

static const char *scalar(const yaml_node_t *n)
{
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* YAML 1.1's null as Ansible's loader reads it: an empty or ~/null plain
 * scalar. */
static int is_null(const yaml_node_t *n)
{
  const char *s = scalar(n);
  if (n == NULL)
    return 1;
  if (s == NULL || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
         strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* A plain scalar YAML reads as an integer or float, which Ansible refuses
 * as a host name. */
static int is_number(const yaml_node_t *n)
{
  const char *s = scalar(n);
  if (s == NULL || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
      !(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.'))
    return 0;
  char *end;
  (void)strtod(s, &end);
  return end != s && *end == '\0';
}

/* A non-scalar variable value as compact JSON text (string leaves): runbook
 * reads only scalar connection variables, but keeps the others visible. */
static json_t *to_json(yinv *y, const yaml_node_t *n, int depth)
{
  if (n == NULL || depth > YINV_MAX_DEPTH)
    return json_null();
  if (n->type == YAML_SCALAR_NODE)
    return is_null(n) ? json_null() : json_string(scalar(n));
  if (n->type == YAML_SEQUENCE_NODE) {
    json_t *a = json_array();
    for (yaml_node_item_t *i = n->data.sequence.items.start;
         i < n->data.sequence.items.top; i++)
      json_array_append_new(a, to_json(y, yaml_document_get_node(y->doc, *i), depth + 1));
    return a;
  }
  json_t *o = json_object();
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
       p++) {
    const char *k = scalar(yaml_document_get_node(y->doc, p->key));
    if (k != NULL)
      json_object_set_new(
          o, k, to_json(y, yaml_document_get_node(y->doc, p->value), depth + 1));
  }
  return o;
}

/* The text a variable holds: a scalar's own text, "" for null, else JSON. */
static char *var_text(yinv *y, const yaml_node_t *n)
{
  if (is_null(n))
    return strdup("");
  if (n->type == YAML_SCALAR_NODE)
    return strdup(scalar(n));
  json_t *j = to_json(y, n, 0);
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(j);
  return s;
}

/* Reads a vars mapping into l (group and host variables alike). */
static int read_vars(yinv *y, const yaml_node_t *n, rb_ssh_kvlist *l)
{
  if (is_null(n))
    return 0;
  if (n->type != YAML_MAPPING_NODE)
    return yfail(y, n, "variables must be a mapping", NULL);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
       p++) {
    const yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
    const char *k = scalar(kn);
    if (k == NULL || *k == '\0')
      return yfail(y, kn, "a variable name must be a scalar", NULL);
    if (strcmp(k, "<<") == 0)
      return yfail(y, kn, "YAML merge keys (<<) are not supported", NULL);
    char *v = var_text(y, yaml_document_get_node(y->doc, p->value));
    int rc = v ? rb_ssh_kv_set(l, k, v) : -1;
    free(v);
    if (rc < 0)
      return rb_err(y->err, y->errlen, "out of memory");
  }
  return 0;
}

static int read_group(yinv *y, const char *name, const yaml_node_t *n, int depth);

/* "hosts:", "children:" and "vars:" take a mapping, null, or (as in Ansible)
 * a single name standing for {name: null}. */
static int section_kind(yinv *y, const yaml_node_t *n, const char *key, const char *group)
{
  if (is_null(n) || n->type == YAML_MAPPING_NODE || n->type == YAML_SCALAR_NODE)
    return 0;
  char what[200];
  snprintf(what, sizeof what, "'%s' of group %s must be a mapping", key, group);
  return yfail(y, n, what, NULL);
}

static int read_hosts(yinv *y, long gi, const yaml_node_t *n)
{
  if (is_null(n))
    return 0;
  char herr[256];
  if (n->type == YAML_SCALAR_NODE)
    return rb_ssh_inv_add_hosts(y->inv, gi, scalar(n), NULL, herr, sizeof herr) < 0
               ? yfail(y, n, herr, NULL)
               : 0;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
       p++) {
    const yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
    const char *pat = scalar(kn);
    if (pat == NULL || *pat == '\0')
      return yfail(y, kn, "a host pattern must be a scalar", NULL);
    if (is_number(kn))
      return yfail(y, kn, "host pattern must be a string (quote it):", pat);
    rb_ssh_kvlist vars = {0};
    int rc = read_vars(y, yaml_document_get_node(y->doc, p->value), &vars);
    if (rc == 0 && rb_ssh_inv_add_hosts(y->inv, gi, pat, &vars, herr, sizeof herr) < 0)
      rc = yfail(y, kn, herr, NULL);
    rb_ssh_kv_free(&vars);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int read_children(yinv *y, long gi, const yaml_node_t *n, int depth)
{
  if (is_null(n))
    return 0;
  if (n->type == YAML_SCALAR_NODE) {
    if (read_group(y, scalar(n), NULL, depth + 1) < 0)
      return -1;
    if (rb_ssh_inv_add_child(y->inv, gi, scalar(n)) < 0)
      return rb_err(y->err, y->errlen, "out of memory");
    return 0;
  }
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
       p++) {
    const yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
    const char *child = scalar(kn);
    if (child == NULL || *child == '\0')
      return yfail(y, kn, "a group name must be a scalar", NULL);
    if (read_group(y, child, yaml_document_get_node(y->doc, p->value), depth + 1) < 0)
      return -1;
    if (rb_ssh_inv_add_child(y->inv, gi, child) < 0)
      return rb_err(y->err, y->errlen, "out of memory");
  }
  return 0;
}

static int read_group_vars(yinv *y, long gi, const yaml_node_t *n)
{
  rb_ssh_kvlist vars = {0};
  char verr[256];
  int rc = n->type == YAML_SCALAR_NODE && !is_null(n)
               ? yfail(y, n, "'vars' must be a mapping", NULL)
               : read_vars(y, n, &vars);
  for (size_t i = 0; rc == 0 && i < vars.n; i++)
    if (rb_ssh_inv_group_var(y->inv, gi, vars.v[i].k, vars.v[i].v, verr, sizeof verr) < 0)
      rc = yfail(y, n, verr, NULL);
  rb_ssh_kv_free(&vars);
  return rc;
}

/* One group: its hosts, vars and children; any other key is an error (Ansible
 * warns and skips it, which would silently lose hosts). */
static int read_group(yinv *y, const char *name, const yaml_node_t *n, int depth)
{
  if (depth > YINV_MAX_DEPTH)
    return yfail(y, n, "groups nest too deeply at", name);
  if (strchr(name, ' ') != NULL || strchr(name, ',') != NULL)
    return yfail(y, n, "bad group name", name);
  long gi = rb_ssh_inv_group(y->inv, name);
  if (gi < 0)
    return rb_err(y->err, y->errlen, "out of memory");
  if (is_null(n))
    return 0;
  if (n->type != YAML_MAPPING_NODE)
    return yfail(y, n, "a group must be a mapping of hosts, vars and children:", name);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
       p++) {
    const yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
    const yaml_node_t *vn = yaml_document_get_node(y->doc, p->value);
    const char *k = scalar(kn);
    int rc, known = k && (strcmp(k, "hosts") == 0 || strcmp(k, "children") == 0 ||
                          strcmp(k, "vars") == 0);
    if (k == NULL)
      return yfail(y, kn, "a group key must be a scalar in", name);
    if (known && section_kind(y, vn, k, name) < 0)
      return -1;
    if (strcmp(k, "hosts") == 0)
      rc = read_hosts(y, gi, vn);
    else if (strcmp(k, "children") == 0)
      rc = read_children(y, gi, vn, depth);
    else if (strcmp(k, "vars") == 0)
      rc = read_group_vars(y, gi, vn);
    else {
      char what[200];
      snprintf(what, sizeof what, "'%s' in group %s (want hosts, vars or children)", k,
               name);
      rc = yfail(y, kn, "unexpected key", what);
    }
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int read_root(yinv *y)
{
  const yaml_node_t *root = yaml_document_get_root_node(y->doc);
  if (root == NULL || is_null(root))
    return yfail(y, root, "empty YAML inventory", NULL);
  if (root->type != YAML_MAPPING_NODE)
    return yfail(y, root, "a YAML inventory must be a mapping of groups", NULL);
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
       p < root->data.mapping.pairs.top; p++) {
    const yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
    const char *g = scalar(kn);
    if (g == NULL || *g == '\0')
      return yfail(y, kn, "a group name must be a scalar", NULL);
    if (strcmp(g, "plugin") == 0)
      return yfail(y, kn, "unsupported inventory format: inventory plugin configuration",
                   "(plugin:)");
    if (read_group(y, g, yaml_document_get_node(y->doc, p->value), 0) < 0)
      return -1;
  }
  return 0;
}

int rb_ssh_inventory_yaml(rb_ssh_inventory *inv, const char *text, size_t len, char *err,
                          size_t errlen)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = -1;
  if (!yaml_parser_initialize(&parser))
    return rb_err(err, errlen, "out of memory");
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    rb_err(err, errlen, "%s:%lu: YAML: %s", rb_ssh_inventory_name(inv),
           (unsigned long)parser.problem_mark.line + 1,
           parser.problem ? parser.problem : "parse error");
    yaml_parser_delete(&parser);
    return -1;
  }
  yinv y = {inv, &doc, rb_ssh_inventory_name(inv), err, errlen};
  rc = read_root(&y);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return rc;
}
