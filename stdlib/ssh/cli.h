/* cli.h: `runbook ssh TARGET [options] -- COMMAND`, an ad-hoc command on
 * a host or group with the same verification, fan-out and timeline as ssh.run. */
#ifndef RB_CLI_SSH_H
#define RB_CLI_SSH_H

#include "stdlib/rb_host.h"

/* argv are the arguments after "ssh". Prints each host's result on stdout and
 * progress on stderr; with incident non-NULL records events in
 * <state_dir>/incidents/<incident>.jsonl. Returns the exit code: 0 when every
 * host succeeded, 1 when any failed or was skipped, 2 on a usage or setup
 * error. */
int rb_cli_ssh(const rb_config *cfg, const char *state_dir, const char *incident,
               int argc, char **argv);

#endif
