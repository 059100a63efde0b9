/* preflight.h: a dry-run's check of SSH write targets: connect, verify the
 * host key, authenticate, open no channel; each host checked once per run. */
#ifndef RB_SSH_PREFLIGHT_H
#define RB_SSH_PREFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "stdlib/ssh/fanout.h"

/* Results so far in this run, keyed by host, user, address and port. */
typedef struct rb_ssh_pf_cache rb_ssh_pf_cache;
void rb_ssh_pf_cache_free(rb_ssh_pf_cache *c);

/* Preflights the hosts not in *cache (creating it on first use) with at most
 * timeout_ms each, and sets reasons[i] to NULL (ok) or a short reason owned
 * by the cache ("host key unknown (SHA256:...)", "connection refused").
 * Returns 0, or -1 with err when it could not run at all. */
int rb_ssh_preflight(rb_ssh_pool *p, rb_ssh_pf_cache **cache, const rb_ssh_host *hosts,
                     size_t n, int port, int64_t timeout_ms, const char **reasons,
                     char *err, size_t errlen);

/* The short reason of an engine error "ssh app-2 (addr:port): ...". Writes
 * it into buf. */
void rb_ssh_pf_reason(const char *error, char *buf, size_t len);

#endif
