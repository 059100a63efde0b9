/* keys.c: the [http] config section. Built into the binary, not the http
 * plugin, so the settings file is checked before the plugin is loaded. */
#include "stdlib/rb_host.h"

#include <limits.h>
#include <stddef.h>

static const rb_config_key http_keys[] = {
    {"ca_bundle", RB_CFG_PATH, NULL, "the system store", 0, 0,
     "CA certificates for TLS verification"},
    {"insecure", RB_CFG_BOOL, "false", NULL, 0, 0,
     "turn TLS verification off (never in production)"},
    {"timeout", RB_CFG_DURATION, "10s", NULL, 0, 0,
     "timeout of one attempt (never past the step's deadline)"},
    {"retries", RB_CFG_INT, "2", NULL, 0, 10,
     "retries of a failed idempotent request (2: 3 attempts)"},
    {"max_body_kb", RB_CFG_INT, "4096", NULL, 1, LONG_MAX,
     "largest response body accepted, in KiB"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_http = {"http", "defaults for every HTTP call",
                                          http_keys};
