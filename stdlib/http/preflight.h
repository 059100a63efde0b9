/* preflight.h: a dry-run's check of an HTTP write target: resolve, connect
 * and verify TLS, send no request; each scheme://host:port once per run. */
#ifndef RB_HTTP_PREFLIGHT_H
#define RB_HTTP_PREFLIGHT_H

#include <jansson.h>
#include <lua.h>
#include <stdint.h>

/* The would_run "preflight" member for url (see stdlib/preflight.h), with
 * the TLS settings of the request and at most timeout_ms. The result per
 * origin is kept in L's registry for the rest of the run. hide_host: the URL
 * is a secret, so the target is not named. Caller owns the result. */
json_t *rb_http_preflight(lua_State *L, const char *url, const char *ca_bundle,
                          int insecure, int64_t timeout_ms, int hide_host);

#endif
