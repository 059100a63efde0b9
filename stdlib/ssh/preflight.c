/* preflight.c: dry-run checks of SSH write targets over the fan-out engine in
 * preflight mode, with one result per host and run, and their short reasons. */
#include "stdlib/ssh/preflight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

typedef struct pf_entry {
  char *key;
  char *reason; /* NULL: ok */
  struct pf_entry *next;
} pf_entry;

struct rb_ssh_pf_cache {
  pf_entry *head;
};

void rb_ssh_pf_cache_free(rb_ssh_pf_cache *c)
{
  if (c == NULL)
    return;
  for (pf_entry *e = c->head, *next; e != NULL; e = next) {
    next = e->next;
    free(e->key);
    free(e->reason);
    free(e);
  }
  free(c);
}

static void pf_key(const rb_ssh_host *h, int port, char *buf, size_t len)
{
  snprintf(buf, len, "%s|%s|%s|%d", h->name, h->user ? h->user : "", h->address,
           h->port > 0 ? h->port : port);
}

static pf_entry *pf_find(rb_ssh_pf_cache *c, const char *key)
{
  for (pf_entry *e = c->head; e != NULL; e = e->next)
    if (strcmp(e->key, key) == 0)
      return e;
  return NULL;
}

/* Copies the token starting at "SHA256:" in s into out, "" when none. */
static void pf_fingerprint(const char *s, char *out, size_t len)
{
  const char *f = s ? strstr(s, "SHA256:") : NULL;
  size_t n = 0;
  while (f != NULL && f[n] != '\0' && strchr(" ;,\n", f[n]) == NULL)
    n++;
  snprintf(out, len, "%.*s", (int)n, f ? f : "");
}

void rb_ssh_pf_reason(const char *error, char *buf, size_t len)
{
  /* the engine's label ("ssh app-2 (127.0.0.1:22)") holds no ": " */
  const char *msg = error ? strstr(error, ": ") : NULL;
  msg = msg ? msg + 2 : error ? error : "failed";
  char fp[120];
  pf_fingerprint(msg, fp, sizeof fp);
  if (strncmp(msg, "host key is unknown", 19) == 0)
    snprintf(buf, len, "host key unknown (%s)", fp);
  else if (strncmp(msg, "HOST KEY CHANGED", 16) == 0)
    snprintf(buf, len, "host key changed (%s)", fp);
  else if (strstr(msg, "is marked @revoked") != NULL)
    snprintf(buf, len, "host key revoked (%s)", fp);
  else if (strncmp(msg, "connection refused", 18) == 0)
    snprintf(buf, len, "connection refused");
  else /* the first clause: the rest is advice for the real run */
    snprintf(buf, len, "%.*s", (int)strcspn(msg, ";\n"), msg);
}

static int pf_add(rb_ssh_pf_cache *c, const char *key, const char *error)
{
  pf_entry *e = calloc(1, sizeof *e);
  char reason[600];
  if (e == NULL || (e->key = strdup(key)) == NULL) {
    free(e);
    return -1;
  }
  if (error != NULL) {
    rb_ssh_pf_reason(error, reason, sizeof reason);
    e->reason = strdup(reason);
  }
  e->next = c->head;
  c->head = e;
  return 0;
}

/* Runs the engine in preflight mode on the hosts no entry answers yet. */
static int pf_run(rb_ssh_pool *p, rb_ssh_pf_cache *c, const rb_ssh_host *hosts, size_t n,
                  int port, int64_t timeout_ms, char *err, size_t errlen)
{
  rb_ssh_host *todo = calloc(n, sizeof *todo);
  size_t m = 0;
  char key[1200];
  int rc = -1;
  if (todo == NULL)
    return rb_err(err, errlen, "ssh: out of memory");
  for (size_t i = 0; i < n; i++) {
    pf_key(&hosts[i], port, key, sizeof key);
    if (pf_find(c, key) == NULL)
      todo[m++] = hosts[i]; /* borrowed strings */
  }
  rb_ssh_result *res = NULL;
  rb_ssh_opts o = {0};
  o.max_fail.value = -1;
  o.batch.value = -1;
  o.timeout_ms = timeout_ms;
  o.preflight = 1;
  if (m == 0) {
    rc = 0;
    goto out;
  }
  if (rb_ssh_run(p, todo, m, "(preflight)", &o, &res, err, errlen) < 0)
    goto out;
  rc = 0;
  for (size_t i = 0; i < m && rc == 0; i++) {
    pf_key(&todo[i], port, key, sizeof key);
    if (pf_find(c, key) == NULL && pf_add(c, key, res[i].ok ? NULL : res[i].error) < 0)
      rc = rb_err(err, errlen, "ssh: out of memory");
  }
out:
  rb_ssh_results_free(res, m);
  free(todo);
  return rc;
}

int rb_ssh_preflight(rb_ssh_pool *p, rb_ssh_pf_cache **cache, const rb_ssh_host *hosts,
                     size_t n, int port, int64_t timeout_ms, const char **reasons,
                     char *err, size_t errlen)
{
  if (*cache == NULL && (*cache = calloc(1, sizeof **cache)) == NULL)
    return rb_err(err, errlen, "ssh: out of memory");
  if (pf_run(p, *cache, hosts, n, port, timeout_ms, err, errlen) < 0)
    return -1;
  char key[1200];
  for (size_t i = 0; i < n; i++) {
    pf_key(&hosts[i], port, key, sizeof key);
    const pf_entry *e = pf_find(*cache, key);
    reasons[i] = e ? e->reason : "not preflighted";
  }
  return 0;
}
