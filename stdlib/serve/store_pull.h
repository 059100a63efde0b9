/* store_pull.h: `runbook store pull INCIDENT` (store_pull.c): the store's
 * copy of an incident's timeline into the local state dir. */
#ifndef RB_SERVE_STORE_PULL_H
#define RB_SERVE_STORE_PULL_H

#include <libpq-fe.h>

/* Extends <state_dir>/incidents/INCIDENT.jsonl with the store's lines it
 * lacks; refuses when the local file is not a prefix of them. Returns an
 * exit code. */
int rb_store_pull(PGconn *c, const char *state_dir, const char *incident);

/* The same, silent when nothing differs and for an incident the store does
 * not have; "--all" syncs every incident of the store. An exit code. */
int rb_store_sync(PGconn *c, const char *state_dir, const char *incident);

#endif
