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
    /* the cap is the size of the listener's child table (MAX_RUNS_CAP) */
    {"max_runs", RB_CFG_INT, "4", NULL, 1, 64, "runs allowed at the same time"},
    {"rules", RB_CFG_PATH, NULL, NULL, 0, 0, "the alert-to-runbook rules file"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_serve = {"serve", "the alert listener", serve_keys};
