/* keys.c: the [store] config section: the PostgreSQL database several
 * `runbook serve` replicas share. Built into the binary so the file is
 * checked early; the code that connects is in stdlib/pg/pg.c (a plugin's). */
#include "stdlib/rb_host.h"

#include <stddef.h>

static const rb_config_key store_keys[] = {
    {"url", RB_CFG_STRING, NULL, NULL, 0, 0,
     "`postgresql://USER@HOST:PORT/DB`: the shared store; unset, the state dir is "
     "the store. A URL carrying a password is refused"},
    {"password", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "the database user's password (`password_env` / `password_file`), never in the URL"},
    {"sslmode", RB_CFG_STRING, NULL, "libpq's default (`prefer`)", 0, 0,
     "`disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full` (passed to "
     "libpq)"},
    {"sslrootcert", RB_CFG_PATH, NULL, NULL, 0, 0,
     "CA certificate the server's certificate must chain to (with `verify-ca` or "
     "`verify-full`)"},
    {"connect_timeout", RB_CFG_DURATION, "5s", NULL, 0, 0,
     "how long a connection attempt may take"},
    {"replica", RB_CFG_STRING, NULL, "`HOSTNAME:STATE_DIR`", 0, 0,
     "this replica's name in the store (who claimed a dedup key, who runs a run)"},
    {"replica_timeout", RB_CFG_DURATION, "30s", NULL, 0, 0,
     "a replica not heard from for this long is dead: the dedup keys of its runs end and "
     "another replica takes its runs over (the lease time)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_store = {
    "store", "the shared run store (PostgreSQL) for several `serve` replicas",
    store_keys};
