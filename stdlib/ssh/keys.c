/* keys.c: the [ssh] config section. Built into the binary, not the ssh
 * plugin, so the settings file is checked before the plugin is loaded. */
#include "stdlib/rb_host.h"

#include <stddef.h>

static const rb_config_key ssh_keys[] = {
    {"inventory", RB_CFG_PATH, NULL, NULL, 0, 0,
     "the host inventory file (groups of hosts); `--inventory` overrides"},
    {"known_hosts", RB_CFG_PATH, NULL, "`~/.ssh/known_hosts`", 0, 0,
     "host keys to verify against; an unknown or changed key is refused"},
    {"identity_file", RB_CFG_PATH, NULL, "`~/.ssh/id_ed25519`, then `~/.ssh/id_ecdsa`", 0,
     0, "private key for public-key authentication"},
    {"user", RB_CFG_STRING, NULL, "`$USER`", 0, 0, "remote login name"},
    {"port", RB_CFG_INT, "22", NULL, 1, 65535, "remote port"},
    {"parallel", RB_CFG_INT, "20", NULL, 0, 10000,
     "hosts worked on at the same time (0 also means 20)"},
    {"connect_timeout", RB_CFG_DURATION, "10s", NULL, 0, 0,
     "TCP connect, handshake and authentication"},
    {"command_timeout", RB_CFG_DURATION, "10m", NULL, 0, 0,
     "default timeout of a remote command"},
    {"output_kb", RB_CFG_INT, "64", NULL, 1, 1048576,
     "output kept per host and command, in KiB"},
    {"use_agent", RB_CFG_BOOL, "true", NULL, 0, 0,
     "try ssh-agent (when `SSH_AUTH_SOCK` is set) before the identity file"},
    {"trust_on_first_use", RB_CFG_BOOL, "false", NULL, 0, 0,
     "labs only: accept and record unknown host keys instead of refusing"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
const rb_config_section rb_config_ssh = {"ssh", "", ssh_keys};
