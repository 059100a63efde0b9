/* keys.c: the [serve] config section of the alert listener. It is built
 * into the binary (the rest of stdlib/serve/ is a plugin) so the file is
 * checked early. */
#include "stdlib/rb_host.h"

#include <stddef.h>

static const rb_config_key serve_keys[] = {
    {"listen", RB_CFG_STRING, NULL, NULL, 0, 0,
     "address and port to listen on (`127.0.0.1:9095`)"},
    {"token", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "bearer token alert senders must present (`token_env` / `token_file`)"},
    {"hmac_key", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "key for HMAC-signed webhooks (`hmac_key_env` / `hmac_key_file`)"},
    {"pagerduty_secret", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "PagerDuty v3 webhook signing secrets, comma-separated during a rotation "
     "(`pagerduty_secret_env` / `pagerduty_secret_file`)"},
    {"tls_cert_file", RB_CFG_PATH, NULL, NULL, 0, 0,
     "PEM certificate (chain) to serve HTTPS with; needs `tls_key_file`"},
    {"tls_key_file", RB_CFG_PATH, NULL, NULL, 0, 0, "PEM private key of `tls_cert_file`"},
    /* the cap is the size of the listener's child table (MAX_RUNS_CAP) */
    {"max_runs", RB_CFG_INT, "4", NULL, 1, 64, "runs allowed at the same time"},
    {"dedup_max_keys", RB_CFG_INT, "100000", NULL, 1, 10000000,
     "dedup keys held at most; beyond it new alerts get 503 (a live key is never "
     "forgotten)"},
    {"notify", RB_CFG_STRING, NULL, NULL, 0, 0,
     "[notify.NAME] channel told when an alert's run cannot start or a taken-over "
     "run stops in doubt"},
    /* hostile clients (docs/serve.md, "Limits") */
    {"max_connections", RB_CFG_INT, "128", NULL, 16, 4096,
     "connections open at once (libmicrohttpd's limit)"},
    {"per_ip_connections", RB_CFG_INT, "64", NULL, 1, 4096,
     "connections open at once from one address"},
    {"max_unauthenticated", RB_CFG_INT, "32", NULL, 1, 4096,
     "connections that have not yet made an authenticated request; a new one "
     "beyond it closes the oldest idle one, and at least 8 slots stay for the rest"},
    {"header_timeout", RB_CFG_DURATION, "10s", NULL, 0, 0,
     "a new connection's request headers must be complete this long after it opened"},
    {"request_timeout", RB_CFG_DURATION, "30s", NULL, 0, 0,
     "a whole request, counted from the connection's start or the end of the last"},
    {"rules", RB_CFG_PATH, NULL, NULL, 0, 0, "the alert-to-runbook rules file"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_serve = {"serve", "the alert listener", serve_keys};

static const rb_config_key serve_json_keys[] = {
    {"alerts", RB_CFG_STRING, "", NULL, 0, 0,
     "JSON pointer to the array of alerts in the body; empty: the body is one alert"},
    {"fingerprint", RB_CFG_STRING, NULL, NULL, 0, 0,
     "JSON pointer (inside an alert) to its identity, required"},
    {"status", RB_CFG_STRING, "", NULL, 0, 0,
     "JSON pointer to the alert's status; empty: every alert is firing"},
    {"resolved", RB_CFG_STRING, "resolved", NULL, 0, 0,
     "the status value that means resolved"},
    {"starts_at", RB_CFG_STRING, "", NULL, 0, 0,
     "JSON pointer to when the alert started (part of the dedup key)"},
    {"labels", RB_CFG_STRING, "", NULL, 0, 0,
     "labels for the rules: `name=/pointer, ...`"},
    {"annotations", RB_CFG_STRING, "", NULL, 0, 0,
     "annotations for the rules: `name=/pointer, ...`"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_serve_json = {
    "serve.json.*", "a generic JSON alert route, POST /alerts/json/NAME",
    serve_json_keys};
