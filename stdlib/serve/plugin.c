/* plugin.c: the descriptor of runbook-serve.so, the one symbol it exports:
 * the `runbook serve` and `runbook store` subcommands, no Lua module. */
#include <stddef.h>
#include <string.h>

#include "stdlib/rb_host.h"
#include "stdlib/serve/serve.h"

static int serve_cli(const rb_host_cli *host, int argc, char **argv)
{
  /* `runbook store` is here too: the shared store's code links libpq,
   * which only the serve plugin carries */
  if (argc > 0 && strcmp(argv[0], "store") == 0)
    return rb_cli_store(host->config, host->state_dir, argc, argv);
  return rb_cli_serve(host->config, host->state_dir, argc, argv);
}

const rb_plugin rb_plugin_descriptor = {
    .abi_version = RB_HOST_ABI_VERSION,
    .name = "serve",
    .open = NULL,
    .cli = serve_cli,
};
