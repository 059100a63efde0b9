/* config_keys.c: the registry of config sections (each contributed by the
 * module that owns it) and the sections the runner itself owns. */
#include "runner/config.h"

#include <limits.h>
#include <stddef.h>

const rb_config_section *const rb_config_sections[] = {
    &rb_config_core,         &rb_config_sandbox,    &rb_config_approvals,
    &rb_config_approval_sev, &rb_config_group,      &rb_config_approver,
    &rb_config_cmd,          &rb_config_ssh,        &rb_config_http,
    &rb_config_prom,         &rb_config_flags,      &rb_config_deploy,
    &rb_config_notify,       &rb_config_escalation, &rb_config_serve,
    &rb_config_serve_json,   &rb_config_plan, /* runner/plan_file.c */
    &rb_config_store,        &rb_config_slack,      NULL,
};

static const rb_config_key core_keys[] = {
    {"state_dir", RB_CFG_PATH, NULL,
     "`$XDG_STATE_HOME/runbook` (`~/.local/state/runbook`)", 0, 0,
     "where timelines/journals and run state are kept"},
    {"runbook_path", RB_CFG_STRING, NULL, "(the shipped runbooks)", 0, 0,
     "where runbooks are looked up by name"},
    {"step_timeout", RB_CFG_DURATION, "5m", NULL, 0, 0,
     "timeout of a step that does not set its own"},
    {"run_timeout", RB_CFG_DURATION, "1h", NULL, 0, 0,
     "wall-clock budget of a whole run"},
    {"actor", RB_CFG_STRING, NULL, "the login name (`$USER`)", 0, 0,
     "who is recorded as `actor` on the timeline for runs started by hand"},
    {"exec_lock", RB_CFG_STRING, "incident", NULL, 0, 0,
     "what a live `exec` locks besides its own run: `incident` (one live run of a "
     "runbook per incident) or `param:NAME` (one per value of the runbook's parameter "
     "NAME, e.g. `param:service`); any other value is an error (exit 3)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_core = {"core", "where things live and default budgets",
                                          core_keys};

/* Read by the executor when it builds the sandbox (sb_limits). */
static const rb_config_key sandbox_keys[] = {
    {"memory_mb", RB_CFG_INT, "64", NULL, 4, LONG_MAX,
     "memory cap of a runbook's Lua state, in MiB"},
    {"instructions", RB_CFG_INT, "1000000000", NULL, 0, LONG_MAX,
     "Lua VM instruction budget for a whole run"},
    {"output_kb", RB_CFG_INT, "1024", NULL, 1, LONG_MAX,
     "cap on what a runbook may `print`/`warn` per run, in KiB"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_sandbox = {"sandbox", "limits applied to every runbook",
                                             sandbox_keys};

static const rb_config_key approvals_keys[] = {
    {"timeout", RB_CFG_DURATION, "15m", NULL, 0, 0,
     "how long an approval gate waits; no answer by then is a deny"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_approvals = {"approvals", "", approvals_keys};

/* A policy every gate of a runbook with `severity = "NAME"` must meet, on
 * top of the runbook's own (approval_policy.c takes the stricter of each). */
static const rb_config_key approval_sev_keys[] = {
    {"min", RB_CFG_INT, "1", NULL, 1, 16, "distinct approvers each gate needs"},
    {"from", RB_CFG_STRING, NULL, "anyone", 0, 0,
     "accounts, approver names or groups allowed to answer (comma separated)"},
    {"not_self", RB_CFG_BOOL, "false", NULL, 0, 0,
     "the account that started (or resumed) the run may not approve it"},
    {"allow_as", RB_CFG_BOOL, "true", NULL, 0, 0,
     "whether `runbook approve --as LABEL` is accepted"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_approval_sev = {
    "approvals.*", "the approval policy of runbooks with that `severity`",
    approval_sev_keys};

static const rb_config_key group_keys[] = {
    {"members", RB_CFG_STRING, NULL, NULL, 0, 0,
     "accounts and approver names in the group (comma separated)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_group = {"group.*", "a group of approvers for `from`",
                                           group_keys};

/* Read by the listener: the credential names the approver, not the request. */
static const rb_config_key approver_keys[] = {
    {"token", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "bearer token with which this approver answers over HTTP (`token_env` / "
     "`token_file`)"},
    {"slack_user", RB_CFG_STRING, NULL, NULL, 0, 0,
     "the Slack user id (`U0123ABCD`) whose Approve/Deny clicks answer as this approver "
     "([slack]); an approver needs a token, a slack_user or both"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_approver = {
    "approver.*", "an approver who answers over HTTP or from Slack", approver_keys};
