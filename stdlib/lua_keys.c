/* lua_keys.c: the config sections owned by the Lua stdlib modules (prom,
 * flags, deploy, notify), which read them with config.get. */
#include "stdlib/rb_host.h"

#include <stddef.h>

#define END                                                                              \
  {                                                                                      \
    NULL, 0, NULL, NULL, 0, 0, NULL                                                      \
  }

static const rb_config_key prom_keys[] = {
    {"url", RB_CFG_STRING, NULL, NULL, 0, 0, "base URL of the Prometheus HTTP API"},
    {"token", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "bearer token (`token_env` / `token_file`)"},
    END,
};
const rb_config_section rb_config_prom = {"prom", "Prometheus", prom_keys};

static const rb_config_key flags_keys[] = {
    {"provider", RB_CFG_STRING, NULL, "the NAME of the section", 0, 0,
     "provider type: `unleash`, `launchdarkly`, `flagsmith` or `generic`"},
    {"url", RB_CFG_STRING, NULL, "the public API for `launchdarkly` and `flagsmith`", 0,
     0, "provider base URL"},
    {"token", RB_CFG_SECRET, NULL, NULL, 0, 0, "API token (`token_env` / `token_file`)"},
    {"project", RB_CFG_STRING, "default", NULL, 0, 0, "provider project"},
    {"environment", RB_CFG_STRING, NULL, NULL, 0, 0,
     "provider environment (e.g. `production`)"},
    {"get_url", RB_CFG_STRING, NULL, NULL, 0, 0,
     "generic provider: URL that reads a flag"},
    {"set_url", RB_CFG_STRING, NULL, NULL, 0, 0,
     "generic provider: URL that changes a flag"},
    {"set_method", RB_CFG_STRING, "POST", NULL, 0, 0,
     "generic provider: HTTP method of `set_url`"},
    {"set_body", RB_CFG_STRING, NULL, NULL, 0, 0,
     "generic provider: request body template of `set_url`"},
    {"state_path", RB_CFG_STRING, "enabled", NULL, 0, 0,
     "generic provider: where the flag's state is in the response"},
    END,
};
const rb_config_section rb_config_flags = {
    "flags.*", "one feature-flag provider per section", flags_keys};

static const rb_config_key deploy_keys[] = {
    {"source", RB_CFG_STRING, NULL, NULL, 0, 0, "kind of source: `git` or `kubernetes`"},
    {"repo", RB_CFG_PATH, NULL, NULL, 0, 0, "git repository to read deploys from"},
    {"rollback_command", RB_CFG_STRING, NULL, NULL, 0, 0,
     "git: shell command deploy.rollback runs in `repo` ($1: revision to go back to, $2: "
     "current)"},
    {"host", RB_CFG_STRING, NULL, NULL, 0, 0, "host whose deploy log is read"},
    {"api_url", RB_CFG_STRING, NULL, NULL, 0, 0, "API endpoint of the deploy source"},
    {"token", RB_CFG_SECRET, NULL, NULL, 0, 0, "API token (`token_env` / `token_file`)"},
    {"namespace", RB_CFG_STRING, "default", NULL, 0, 0, "Kubernetes namespace"},
    {"ca_bundle", RB_CFG_PATH, NULL, "the system store", 0, 0,
     "CA certificates for `api_url`"},
    {"deployment", RB_CFG_STRING, NULL, "the service name", 0, 0,
     "Kubernetes deployment name"},
    END,
};
const rb_config_section rb_config_deploy = {"deploy.*", "where deploy history comes from",
                                            deploy_keys};

static const rb_config_key notify_keys[] = {
    {"type", RB_CFG_STRING, "webhook", NULL, 0, 0, "channel type: `slack` or `webhook`"},
    {"url", RB_CFG_SECRET, NULL, NULL, 0, 0,
     "webhook URL; a secret because webhook URLs embed their credential (`url_env` / "
     "`url_file`)"},
    {"channel", RB_CFG_STRING, NULL, NULL, 0, 0, "channel or room name"},
    END,
};
const rb_config_section rb_config_notify = {"notify.*", "status-update channels",
                                            notify_keys};
