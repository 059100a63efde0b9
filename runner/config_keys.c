/* config_keys.c: the table of every key the settings file accepts, so that a
 * typo is an error naming file:line instead of a silently ignored setting. */
#include "runner/config.h"

#include <stddef.h>

const rb_config_key rb_config_keys[] = {
    /* [core]: where things live and default budgets */
    {"core", "state_dir", "path"},
    {"core", "runbook_path", "string"},
    {"core", "step_timeout", "duration"},
    {"core", "run_timeout", "duration"},
    {"core", "actor", "string"},
    /* [sandbox]: limits applied to every runbook */
    {"sandbox", "memory_mb", "int"},
    {"sandbox", "instructions", "int"},
    {"sandbox", "output_kb", "int"},
    /* [approvals] */
    {"approvals", "timeout", "duration"},
    /* [cmd]: local commands */
    {"cmd", "timeout", "duration"},
    {"cmd", "output_kb", "int"},
    /* [ssh] */
    {"ssh", "inventory", "path"},
    {"ssh", "known_hosts", "path"},
    {"ssh", "identity_file", "path"},
    {"ssh", "user", "string"},
    {"ssh", "port", "int"},
    {"ssh", "parallel", "int"},
    {"ssh", "connect_timeout", "duration"},
    {"ssh", "command_timeout", "duration"},
    {"ssh", "output_kb", "int"},
    {"ssh", "use_agent", "bool"},
    {"ssh", "trust_on_first_use", "bool"},
    /* [http]: defaults for every HTTP call */
    {"http", "ca_bundle", "path"},
    {"http", "insecure", "bool"},
    {"http", "timeout", "duration"},
    {"http", "retries", "int"},
    {"http", "max_body_kb", "int"},
    /* [prom] */
    {"prom", "url", "string"},
    {"prom", "token", "secret"},
    /* [flags.NAME]: one feature-flag provider each */
    {"flags.*", "provider", "string"},
    {"flags.*", "url", "string"},
    {"flags.*", "token", "secret"},
    {"flags.*", "project", "string"},
    {"flags.*", "environment", "string"},
    {"flags.*", "get_url", "string"},
    {"flags.*", "set_url", "string"},
    {"flags.*", "set_method", "string"},
    {"flags.*", "set_body", "string"},
    {"flags.*", "state_path", "string"},
    /* [deploy.NAME]: where deploy history comes from */
    {"deploy.*", "source", "string"},
    {"deploy.*", "repo", "path"},
    {"deploy.*", "host", "string"},
    {"deploy.*", "api_url", "string"},
    {"deploy.*", "token", "secret"},
    {"deploy.*", "namespace", "string"},
    {"deploy.*", "ca_bundle", "path"},
    {"deploy.*", "deployment", "string"},
    /* [notify.NAME]: status-update channels */
    {"notify.*", "type", "string"},
    {"notify.*", "url", "secret"},
    {"notify.*", "channel", "string"},
    /* [serve]: the alert listener */
    {"serve", "listen", "string"},
    {"serve", "token", "secret"},
    {"serve", "hmac_key", "secret"},
    {"serve", "max_runs", "int"},
    {"serve", "rules", "path"},
    {NULL, NULL, NULL},
};
