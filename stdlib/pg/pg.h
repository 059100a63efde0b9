/* pg.h: the PostgreSQL connection of the shared store ([store] in the
 * config) and the schema the binary owns: versioned, idempotent migrations. */
#ifndef RB_PG_H
#define RB_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "stdlib/rb_host.h"

/* The schema version this binary writes and reads. */
#define RB_PG_SCHEMA_VERSION 5

/* Milliseconds since the epoch on the database's clock, as SQL: the one
 * clock all replicas agree on. */
#define RB_PG_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/* 1 when [store] url is set (the shared store is on), else 0. */
int rb_pg_configured(const rb_config *cfg);

/* This replica's name in the store: [store] replica, else
 * HOSTNAME:state_dir, which two replicas on one machine can not share. */
void rb_pg_replica_name(const rb_config *cfg, const char *state_dir, char *out,
                        size_t len);

/* Connects as [store] says: the URL (refused when it carries a password),
 * the password from password_env/password_file, sslmode and sslrootcert
 * passed to libpq. Returns the connection, or NULL with err (never
 * holding the password). */
PGconn *rb_pg_connect(const rb_config *cfg, char *err, size_t errlen);

/* Brings the schema to RB_PG_SCHEMA_VERSION in one transaction, under an
 * advisory lock so replicas migrating at once take turns. *from and *to get
 * the versions before and after (equal: nothing to do). A database whose
 * schema is newer than this binary is refused. Returns 0 or -1 with err. */
int rb_pg_migrate(PGconn *c, const char *by, int *from, int *to, char *err,
                  size_t errlen);

/* The schema version of the database (0 before the first migration), or -1
 * with err. */
int rb_pg_schema_version(PGconn *c, char *err, size_t errlen);

/* 0 when the schema is exactly the binary's, else -1 with err telling the
 * operator what to do. */
int rb_pg_check_schema(PGconn *c, char *err, size_t errlen);

/* Copies the connection's last error into err (one line) and returns -1. */
int rb_pg_err(PGconn *c, const char *what, char *err, size_t errlen);

#endif
