/* slack_keys.c: the [slack] config section, with which the listener posts
 * approval requests to Slack and takes the answers (serve/slack.c). */
#include "stdlib/rb_host.h"

#include <stddef.h>

static const rb_config_key slack_keys[] = {
    {"api_url", RB_CFG_STRING, "https://slack.com/api", NULL, 0, 0,
     "Slack's Web API base (`chat.postMessage`, `chat.update`); a callback's "
     "`response_url` is followed only to hooks.slack.com or to this URL's host"},
    {"channel", RB_CFG_STRING, NULL, NULL, 0, 0,
     "the channel id (`C0123ABCD`) approval requests are posted to"},
    {"bot_token", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "the bot token (`xoxb-...`, scope `chat:write`) that posts them "
     "(`bot_token_env` / `bot_token_file`)"},
    {"signing_secret", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "the app's signing secret that verifies Slack's callbacks to `/slack/actions` "
     "(`signing_secret_env` / `signing_secret_file`); distinct from every other "
     "listener credential"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_slack = {
    "slack", "approval requests in a Slack channel, answered with its buttons",
    slack_keys};
