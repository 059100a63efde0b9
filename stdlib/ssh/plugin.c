/* plugin.c: the descriptor of runbook-ssh.so, the one symbol it exports:
 * the ssh module and the `runbook ssh` subcommand. */
#include "stdlib/modules.h"
#include "stdlib/rb_host.h"
#include "stdlib/ssh/cli.h"

static int ssh_cli(const rb_host_cli *host, int argc, char **argv)
{
  return rb_cli_ssh(host->config, host->state_dir, host->incident, argc, argv);
}

const rb_plugin rb_plugin_descriptor = {
    .abi_version = RB_HOST_ABI_VERSION,
    .name = "ssh",
    .open = luaopen_runbook_ssh,
    .cli = ssh_cli,
};
