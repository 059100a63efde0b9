/* paging_keys.c: the [escalation.NAME] config section, one paging target per
 * section, read by stdlib/paging.lua; which keys each kind takes is checked
 * by runner/escalation.c when the file is loaded. */
#include "stdlib/rb_host.h"

#include <stddef.h>

static const rb_config_key escalation_keys[] = {
    {"kind", RB_CFG_STRING, NULL, NULL, 0, 0,
     "required: `pagerduty`, `opsgenie`, `slack` or `webhook`; any other value, or a "
     "key the kind does not take, is an error"},
    {"url", RB_CFG_STRING, NULL,
     "pagerduty: `https://events.pagerduty.com/v2/enqueue`; opsgenie: "
     "`https://api.opsgenie.com/v2/alerts`; slack with `bot_token`: "
     "`https://slack.com/api/chat.postMessage`",
     0, 0, "endpoint; required for `webhook`"},
    {"routing_key", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "pagerduty: the Events API v2 integration key (`routing_key_env` / "
     "`routing_key_file`); required"},
    {"api_key", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "opsgenie: API integration key, sent as `Authorization: GenieKey ...` "
     "(`api_key_env` / `api_key_file`); required"},
    {"team", RB_CFG_STRING, NULL, NULL, 0, 0,
     "opsgenie: the team named as the alert's responder"},
    {"webhook_url", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "slack: incoming-webhook URL (`webhook_url_env` / `webhook_url_file`); or give "
     "`bot_token` and `channel`"},
    {"bot_token", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "slack: bot token for chat.postMessage (`bot_token_env` / `bot_token_file`)"},
    {"channel", RB_CFG_STRING, NULL, NULL, 0, 0,
     "slack: channel id or name the bot posts to; required with `bot_token`"},
    {"token", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "webhook: optional bearer token (`token_env` / `token_file`)"},
    {"source", RB_CFG_STRING, "runbook", NULL, 0, 0,
     "pagerduty `payload.source`, opsgenie `source`"},
    {"severity", RB_CFG_STRING, NULL, "the runbook's `severity`, else `sev1`", 0, 0,
     "pagerduty, opsgenie, webhook: `sev1` ... `sev5`: PagerDuty severity (critical, "
     "error, warning, info, info) and "
     "Opsgenie priority (P1 ... P5)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_escalation = {
    "escalation.*", "paging targets of `escalate { to = NAME }`", escalation_keys};
