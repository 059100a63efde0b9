/* cli_test.h: `runbook test`: every scenario with an `expect` of the named
 * runbooks run as a drill, one line each, JUnit XML and branch coverage. */
#ifndef RB_CLI_TEST_H
#define RB_CLI_TEST_H

#include <stddef.h>

#include "runner/config.h"

typedef struct {
  const char *self;        /* the runbook binary each drill is run with */
  const char *config_path; /* --config to pass on, or NULL */
  const rb_config *cfg;
  char **runbooks; /* runbook files, resolved */
  size_t nrunbooks;
  const char *junit; /* --junit FILE, or NULL */
  int coverage;      /* --coverage */
  /* Each scenario's result is appended to <state_dir>/tests.jsonl for
   * `runbook stats` (docs/stats.md); NULL records nothing. */
  const char *state_dir;
} rb_test_opts;

/* Runs the tests (in a supervised child: it loads the runbooks to know their
 * branches). Prints one line per scenario and "N passed, N failed". Returns
 * 0 when every scenario passed, 1 when one failed, 2 when none was found. */
int rb_cli_test_run(const rb_test_opts *o, int report_fd);

#endif
