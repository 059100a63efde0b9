/* plugin.c: the descriptor of runbook-serve.so, the one symbol it exports:
 * the `runbook serve` subcommand, no Lua module. */
#include <stddef.h>

#include "stdlib/rb_host.h"
#include "stdlib/serve/serve.h"

static int serve_cli(const rb_host_cli *host, int argc, char **argv)
{
  return rb_cli_serve(host->config, host->state_dir, argc, argv);
}

const rb_plugin rb_plugin_descriptor = {
    .abi_version = RB_HOST_ABI_VERSION,
    .name = "serve",
    .open = NULL,
    .cli = serve_cli,
};
