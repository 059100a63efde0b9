/* cli_runs.h: `runbook runs` (who owns which run, in what state) and
 * `runbook cancel` (stop a run at its next safe point). */
#ifndef RB_CLI_RUNS_H
#define RB_CLI_RUNS_H

/* argv[0] is the command name. Return an exit code (run.h). */
int rb_cli_runs(const char *state_dir, const char *incident, int argc, char **argv);
int rb_cli_cancel(const char *state_dir, int argc, char **argv);

#endif
