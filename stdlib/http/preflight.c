/* preflight.c: libcurl with CURLOPT_CONNECT_ONLY: DNS, TCP and the TLS
 * handshake with verification, then the connection is closed unused. */
#include "stdlib/http/preflight.h"

#include <curl/curl.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "stdlib/preflight.h"

#define HTTP_PF_KEY "rb.http.preflight"

/* scheme://host:port of url into buf; -1 when curl cannot parse it. */
static int pf_origin(const char *url, char *buf, size_t len)
{
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;
  if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(buf, len, "%s://%s:%s", scheme, host, port);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* The short reason of a failed connect, into buf. */
static void pf_reason(CURL *c, CURLcode rc, const char *detail, char *buf, size_t len)
{
  long os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
    snprintf(buf, len, "TLS: certificate verify failed (%s)", detail);
  else if (rc == CURLE_SSL_CONNECT_ERROR)
    snprintf(buf, len, "TLS: %s", detail);
  else if (rc == CURLE_COULDNT_RESOLVE_HOST)
    snprintf(buf, len, "cannot resolve host (%s)", detail);
  else if (rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
    snprintf(buf, len, "connection refused");
  else if (rc == CURLE_OPERATION_TIMEDOUT)
    snprintf(buf, len, "timed out connecting (%s)", detail);
  else
    snprintf(buf, len, "%s", detail[0] ? detail : curl_easy_strerror(rc));
}

/* Connects to url's origin; NULL when it worked, else the reason in buf. */
static const char *pf_connect(const char *url, const char *ca_bundle, int insecure,
                              int64_t timeout_ms, char *buf, size_t len)
{
  char detail[CURL_ERROR_SIZE] = "";
  CURL *c = curl_easy_init();
  if (c == NULL) {
    snprintf(buf, len, "cannot start libcurl");
    return buf;
  }
  long ms = timeout_ms > 0 ? (long)timeout_ms : 10000L;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
  if (ca_bundle != NULL)
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_bundle);
  CURLcode rc = curl_easy_perform(c);
  const char *out = NULL;
  if (rc != CURLE_OK) {
    pf_reason(c, rc, detail, buf, len);
    out = buf;
  }
  curl_easy_cleanup(c);
  return out;
}

json_t *rb_http_preflight(lua_State *L, const char *url, const char *ca_bundle,
                          int insecure, int64_t timeout_ms, int hide_host)
{
  char origin[1200], key[1400], why[1200];
  if (pf_origin(url, origin, sizeof origin) < 0)
    return rb_preflight_json(hide_host ? "(secret URL)" : url, "cannot parse the URL");
  const char *target = hide_host ? "(secret URL)" : origin;
  snprintf(key, sizeof key, "%s|%s|%d", origin, ca_bundle ? ca_bundle : "", insecure);
  if (lua_getfield(L, LUA_REGISTRYINDEX, HTTP_PF_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, HTTP_PF_KEY);
  }
  if (lua_getfield(L, -1, key) == LUA_TSTRING) { /* "" = ok */
    const char *r = lua_tostring(L, -1);
    json_t *pf = rb_preflight_json(target, r[0] ? r : NULL);
    lua_pop(L, 2);
    return pf;
  }
  lua_pop(L, 1);
  const char *r = pf_connect(url, ca_bundle, insecure, timeout_ms, why, sizeof why);
  lua_pushstring(L, r ? r : "");
  lua_setfield(L, -2, key);
  lua_pop(L, 1);
  return rb_preflight_json(target, r);
}
