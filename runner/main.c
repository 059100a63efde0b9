/* main.c: the runbook command line: global options, the subcommands, and
 * the documented exit codes. Runs that load runbook code happen in a
 * supervised child process (runner/supervise.c). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/approval.h"
#include "runner/journal.h"
#include "runner/lint.h"
#include "runner/cli_runs.h"
#include "runner/stats.h"
#include "runner/cli_test.h"
#include "runner/netplugin.h"
#include "runner/config.h"
#include "runner/params.h"
#include "runner/plan.h"
#include "runner/base/redact.h"
#include "runner/run.h"
#include "runner/scenario.h"
#include "runner/store.h"
#include "runner/supervise.h"
#include "runner/digest.h"
#include "runner/postmortem.h"
#include "runner/report.h"
#include "runner/render.h"
#include "runner/timeline.h"
#include "runner/base/util.h"

typedef struct {
  const char *config_path;
  char state_dir[4096];
  int state_dir_given;
  char approve_cmd[8600]; /* "runbook --state-dir DIR": for hints to other shells */
  int no_color;
  const char *inventory;
  const char *known_hosts;
  const char *incident;
  rb_config *cfg;
} globals;

static const char usage_text[] =
    "usage: runbook [--config FILE] [--state-dir DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  exec NAME|FILE [--dry-run [--record FILE]] [--incident ID] [--var K=V]... "
    "[--force]\n"
    "       [--json]\n"
    "                       run a runbook (actions behind approval gates)\n"
    "  exec NAME|FILE --plan RUN\n"
    "                       execute dry-run RUN's plan, refused if the world changed\n"
    "  drill NAME|FILE [--scenario S] [--incident ID] [--var K=V]... [--json]\n"
    "                       walk a runbook on a scenario: no system is touched\n"
    "  check [--strict] NAME|FILE...\n"
    "                       validate runbooks (graph, fields, globals, file:line)\n"
    "  show NAME|FILE [--format text|mermaid|dot|json] [--run RUN]\n"
    "                       print the decision tree (and the path a run took)\n"
    "  test [--junit FILE] [--coverage] [NAME|FILE...]\n"
    "                       run every scenario with an expect as a test\n"
    "  list                 list the runbooks that can be found\n"
    "  timeline INCIDENT [--format text|json|markdown] [--full] [--run RUN]\n"
    "                       print an incident's timeline (markdown: postmortem table)\n"
    "  postmortem INCIDENT  the postmortem in markdown, prefilled from the timeline\n"
    "  report INCIDENT --html FILE\n"
    "                       one self-contained HTML page: graph, path, timeline\n"
    "  verify INCIDENT      check the timeline's hash chain (edits, deletions, moves)\n"
    "  approve RUN STEP [--deny] [--as NAME] [--comment TEXT] [--confirm WORD]\n"
    "                       answer a pending approval gate\n"
    "  approvals            list pending approval gates\n"
    "  resume RUN [--in-doubt rerun|skip]\n"
    "                       continue a run after a crash, from its journal\n"
    "  runs [--incident ID] [--state running|waiting|interrupted|done]\n"
    "                       list runs: owner, step, mode, since\n"
    "  cancel RUN [--reason TEXT]\n"
    "                       stop a run at its next safe point (at once at a gate)\n"
    "  stats [--since D] [--json] [RUNBOOK...]\n"
    "                       runs by mode and outcome, time to mitigate and resolve\n"
    "  ssh TARGET [--parallel N] [--batch N] [--max-fail N] -- COMMAND...\n"
    "                       run one command on inventory hosts (verified host keys)\n"
    "  serve [--listen HOST:PORT] [--rules FILE] [--insecure-no-auth]\n"
    "                       alert listener: Alertmanager webhooks start runs\n"
    "  store migrate|status|runs|pull INCIDENT|sync INCIDENT|--all\n"
    "                       the shared PostgreSQL store ([store] url): schema, runs,\n"
    "                       an incident's timeline copied into the state dir\n"
    "\n"
    "global options:\n"
    "  --config FILE        settings file (default ./runbook.conf, then\n"
    "                       $XDG_CONFIG_HOME/runbook/runbook.conf)\n"
    "  --state-dir DIR      timelines and approvals (default $XDG_STATE_HOME/runbook)\n"
    "  --inventory FILE     Ansible INI inventory for ssh (config ssh.inventory)\n"
    "  --known-hosts FILE   OpenSSH known_hosts (config ssh.known_hosts)\n"
    "  --incident ID        the incident a run or an ssh command is recorded under\n"
    "  --no-color           no ANSI colour (also when NO_COLOR is set)\n"
    "  --version, --help\n"
    "\n"
    "exit codes: 0 resolved, 1 failed, 2 usage error, 3 runbook or scenario invalid,\n"
    "            4 denied, aborted or cancelled, 5 escalated, 6 drill did not go as\n"
    "            expected, 7 dry-run found a write that would fail (its preflight\n"
    "            failed), 8 refused: another live process owns the run or holds the\n"
    "            exec lock on (runbook, incident)\n";

static const char *const cmd_help[][2] = {
    {"exec",
     "usage: runbook exec NAME|FILE [--dry-run [--record FILE]] [--incident ID] "
     "[--var K=V]... [--actor WHO] [--force] [--plan RUN] [--json] [--quiet]\n\n"
     "Runs the runbook for real. Checks and waits read live systems; actions run\n"
     "behind their approval gates. With --dry-run, actions are not run: each\n"
     "command or request they would send is recorded as would_run, after a\n"
     "preflight of its target: SSH hosts are connected, their keys verified and\n"
     "authentication tried (no command sent); HTTP targets are connected and\n"
     "TLS-verified (no request sent); local commands are looked up on PATH.\n"
     "A dry-run exits 7 when any preflight failed, naming each target.\n"
     "--record FILE (with --dry-run) saves every read's answer as a call-level\n"
     "drill scenario expecting the path taken (docs/drills.md).\n"
     "Only one live exec of a runbook per incident (or per the parameter named by\n"
     "core.exec_lock = param:NAME): a second is refused with exit 8, naming the\n"
     "holder, unless --force, which the run's started event records.\n"
     "A dry-run saves its plan (path, writes, preflights) with the run. --plan RUN\n"
     "executes that plan: refused (exit 4) when stale, the runbook changed or the\n"
     "dry-run did not finish; a fresh dry-run pass must reproduce it, and each\n"
     "write must be the plan's next, else nothing (more) is sent (exit 6).\n"},
    {"drill",
     "usage: runbook drill NAME|FILE [--scenario NAME|FILE] [--incident ID] "
     "[--var K=V]... [--json] [--quiet]\n\n"
     "Walks the runbook answering every check and wait from the scenario (a JSON\n"
     "file, by default scenarios/NAME/default.json next to the runbook). Nothing\n"
     "is contacted. Exits 6 when the walk differs from the scenario's expect.\n"},
    {"check",
     "usage: runbook check [--strict] NAME|FILE...\n\n"
     "Validates runbooks without running them; problems are printed as\n"
     "file:line: what. Then a static pass (luacheck, Debian package lua-check)\n"
     "warns about undeclared globals and writes called from check or wait steps;\n"
     "--strict makes its warnings errors (exit 3).\n"},
    {"test",
     "usage: runbook test [--junit FILE] [--coverage] [NAME|FILE...]\n\n"
     "Runs every scenario of the named runbooks (default: all that runbook list\n"
     "finds) that states an expect, each as a drill: one line per scenario, then\n"
     "\"N passed, N failed\". Exits 1 when one failed or none was found.\n"
     "--junit writes a JUnit XML report; --coverage lists the (step, answer)\n"
     "branches no scenario takes and the steps no scenario reaches.\n"},
    {"show",
     "usage: runbook show NAME|FILE [--format text|mermaid|dot|json] [--run RUN]\n\n"
     "Prints the runbook's decision tree: questions on the edges, writes and\n"
     "approval gates marked, outcomes shaped apart. --run lights the path that\n"
     "run took (from its journal) and marks where it stopped.\n"},
    {"list", "usage: runbook list\n\nLists runbooks in ./runbooks, $RUNBOOK_PATH and the "
             "installed data dir.\n"},
    {"timeline",
     "usage: runbook timeline INCIDENT [--format text|json|markdown] [--full]\n"
     "                         [--run RUN]\n\n"
     "Prints an incident's timeline. markdown gives the postmortem table, brief\n"
     "unless --full: decisions, approvals, writes, status updates, escalations,\n"
     "a wait's polls as one row. --run keeps the events of one run.\n"
     "Exits 1 when a line other than a torn last one cannot be parsed.\n"},
    {"postmortem",
     "usage: runbook postmortem INCIDENT\n\n"
     "Prints the incident's postmortem in markdown: summary, impact, detection\n"
     "and mitigation times and the brief timeline filled in from the timeline,\n"
     "root cause and action items as prompts.\n"},
    {"report",
     "usage: runbook report INCIDENT --html FILE\n\n"
     "Writes one self-contained HTML page (no script, nothing fetched): each run's\n"
     "graph with its path lit (SVG from Graphviz's dot when it is on PATH, the\n"
     "text tree otherwise), the brief timeline, decisions with the values read,\n"
     "approvals with who and what they saw, writes and their results, status\n"
     "updates.\n"},
    {"verify",
     "usage: runbook verify INCIDENT\n\n"
     "Checks that every event of the incident's timeline carries the SHA-256 of\n"
     "the line before it, from the header on: prints \"N events verify\" and the\n"
     "last line's hash, or the first line that does not chain and why, and exits\n"
     "1. A timeline written before hash chaining is reported as unchained.\n"},
    {"approve",
     "usage: runbook approve RUN STEP [--deny] [--as NAME] [--comment TEXT]\n"
     "                       [--confirm WORD]\n\n"
     "Approves (or denies) a pending approval gate of a waiting run. A gate whose\n"
     "policy has `confirm` is approved only with that word: --confirm WORD, or\n"
     "typed when asked on a terminal.\n"},
    {"approvals", "usage: runbook approvals\n\nLists pending approval gates.\n"},
    {"resume",
     "usage: runbook resume RUN [--in-doubt rerun|skip] [--json] [--quiet]\n\n"
     "Continues a run that stopped without an outcome (the executor crashed or was\n"
     "killed, or a step failed) after its last finished step, with the ctx it had.\n"
     "A finished action is never run again. An action that started and never\n"
     "finished is in doubt: resume refuses until you say --in-doubt rerun or skip,\n"
     "unless the step is marked idempotent; the refusal lists the writes it had\n"
     "started (command, host, method, URL, body SHA-256). When the journal shows no\n"
     "write started, nothing was sent and the action runs again. A run that another\n"
     "live process owns is refused with exit 8, naming it (pid, user, host, since).\n"},
    {"stats",
     "usage: runbook stats [--since 30d] [--json] [RUNBOOK...]\n\n"
     "Per runbook: runs by mode and outcome, time from start to the first write that\n"
     "succeeded and to resolved (median, p90; exec runs), time waiting for approvals,\n"
     "drills. --since counts runs started in that span (ms, s, m, h, d); --json\n"
     "prints the document of docs/stats.md.\n"},
    {"runs",
     "usage: runbook runs [--incident ID] [--state running|waiting|interrupted|done]\n\n"
     "One line per run: run id, state, incident, runbook, mode, last step, since,\n"
     "and the owner (pid user@host) while a live process holds the run. A run whose\n"
     "process died without an outcome is interrupted (resume it or cancel it).\n"},
    {"cancel",
     "usage: runbook cancel RUN [--reason TEXT]\n\n"
     "Stops a run at its next safe point: at once when it waits at an approval\n"
     "gate, else after the running step. The run ends aborted, \"cancelled by the\n"
     "operator\", recording the account that asked. An interrupted run is ended\n"
     "on the spot so it can no longer be resumed.\n"},
    {"ssh",
     "usage: runbook ssh TARGET [--parallel N] [--batch N|P%] [--max-fail N|P%] "
     "[--timeout D] -- COMMAND...\n"
     "       (global options: --inventory F, --known-hosts F, --incident ID)\n\n"
     "Runs one command on a host or group of the inventory, with host keys verified\n"
     "against known_hosts; prints each host's result; exits 1 if any host failed.\n"
     "With --incident, every host's result is recorded on that incident's timeline.\n"},
    {"serve",
     "usage: runbook serve [--listen HOST:PORT] [--rules FILE] [--dedup-window D] "
     "[--insecure-no-auth]\n\n"
     "Listens for Alertmanager webhooks (POST /alerts/alertmanager), matches alerts\n"
     "against the rules file and starts `runbook exec` runs; also /healthz, /metrics\n"
     "and an approvals endpoint. Needs [serve] token or hmac_key. See docs/serve.md.\n"},
    {"store",
     "usage: runbook store migrate|status|runs|pull INCIDENT|sync INCIDENT|--all\n\n"
     "migrate brings the schema of the shared store ([store] url) to this binary's\n"
     "version (idempotent; a database newer than the binary is refused); status shows\n"
     "it and exits 1 unless it is this binary's; runs lists the runs the replicas\n"
     "started (state, replica, take-overs); pull copies an incident's timeline from\n"
     "the store into the state dir (only ever extending the local file); sync does\n"
     "the same silently (--all: every incident), as timeline, verify, report,\n"
     "postmortem, runs and stats do by themselves when [store] url is set.\n"
     "See docs/store.md.\n"},
    {NULL, NULL}};

/* The account of the real uid: $USER is whatever the environment says, and
 * the actor is what not_self and the timeline trust. */
static const char *login_name(void)
{
  struct passwd *pw = getpwuid(getuid());
  return pw && pw->pw_name ? pw->pw_name : "unknown";
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("runbook: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(see runbook --help)\n", stderr);
  return RB_EXIT_USAGE;
}

static int print_help(const char *cmd)
{
  for (int i = 0; cmd && cmd_help[i][0]; i++) {
    if (strcmp(cmd_help[i][0], cmd) == 0) {
      fputs(cmd_help[i][1], stdout);
      return RB_EXIT_OK;
    }
  }
  fputs(usage_text, stdout);
  return RB_EXIT_OK;
}

static int wants_help(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      return 0;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return 1;
  }
  return 0;
}

/* -- finding runbooks ----------------------------------------------------- */

static void search_dirs(const globals *g, char dirs[][4096], int *n)
{
  *n = 0;
  snprintf(dirs[(*n)++], 4096, "./runbooks");
  const char *env = getenv("RUNBOOK_PATH");
  const char *conf = rb_config_get_string(g->cfg, "core", "runbook_path");
  const char *lists[2] = {env, conf};
  for (int l = 0; l < 2; l++) {
    if (lists[l] == NULL)
      continue;
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s", lists[l]);
    char *save = NULL;
    for (char *d = strtok_r(tmp, ":", &save); d && *n < 14;
         d = strtok_r(NULL, ":", &save))
      snprintf(dirs[(*n)++], 4096, "%s", d);
  }
  snprintf(dirs[(*n)++], 4096, "%s/runbooks", RB_DATADIR);
}

static int find_runbook_rel(const globals *g, const char *name, char *out, size_t len);

/* Resolves a runbook name or path to an absolute path (the timeline keeps
 * it, and `runbook resume` may run from another directory). */
static int find_runbook(const globals *g, const char *name, char *out, size_t len)
{
  char rel[4096], abs[PATH_MAX];
  if (find_runbook_rel(g, name, rel, sizeof rel) != 0)
    return -1;
  if (realpath(rel, abs) == NULL)
    return rb_fmt(out, len, "%s", rel);
  return rb_fmt(out, len, "%s", abs);
}

static int find_runbook_rel(const globals *g, const char *name, char *out, size_t len)
{
  size_t n = strlen(name);
  if (strchr(name, '/') || (n > 4 && strcmp(name + n - 4, ".lua") == 0)) {
    if (access(name, R_OK) != 0) {
      fprintf(stderr, "runbook: %s: %s\n", name, strerror(errno));
      return -1;
    }
    return rb_fmt(out, len, "%s", name);
  }
  char dirs[16][4096];
  int nd;
  search_dirs(g, dirs, &nd);
  for (int i = 0; i < nd; i++) {
    if (rb_fmt(out, len, "%s/%s.lua", dirs[i], name) == 0 && access(out, R_OK) == 0)
      return 0;
  }
  fprintf(stderr, "runbook: no runbook named '%s' in", name);
  for (int i = 0; i < nd; i++)
    fprintf(stderr, "%s %s", i ? "," : "", dirs[i]);
  fprintf(stderr, " (see runbook list)\n");
  return -1;
}

/* -- exec and drill ------------------------------------------------------- */

typedef struct {
  rb_run_opts o;
} run_job;

/* Takes run's lease for this process (and the executor it forks). Returns
 * RB_EXIT_OK with *st and *l, RB_EXIT_BUSY when a live process owns the
 * run (printed, naming it), or RB_EXIT_FAILED. */
static int lease_run(const globals *g, const char *run, const char *what, rb_store **st,
                     rb_lease **l)
{
  char err[1024], key[200], who[768];
  *l = NULL;
  *st = rb_store_open_dir(g->state_dir, err, sizeof err);
  if (*st == NULL || rb_store_run_key(run, key, sizeof key) != 0) {
    fprintf(stderr, "runbook: run store: %s\n", *st ? "run id too long" : err);
    return RB_EXIT_FAILED;
  }
  rb_owner me, holder;
  rb_owner_self(&me, run, what);
  int rc = rb_store_acquire(*st, key, &me, l, &holder, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "runbook: run store: %s\n", err);
    return RB_EXIT_FAILED;
  }
  if (rc == 1) {
    rb_owner_describe(&holder, who, sizeof who);
    fprintf(stderr, "runbook: run %s is owned by a live process: %s; refusing to %s it\n",
            run, who, what);
    return RB_EXIT_BUSY;
  }
  return RB_EXIT_OK;
}

static void job_init(run_job *job, const globals *g, const char *path, rb_mode mode,
                     const char *incident, const char *run_id, const char *actor,
                     int json, int quiet)
{
  memset(job, 0, sizeof *job);
  job->o.runbook_path = path;
  job->o.mode = mode;
  job->o.incident = incident;
  job->o.run_id = run_id;
  job->o.actor = actor;
  job->o.state_dir = g->state_dir;
  job->o.approve_cmd = g->approve_cmd;
  job->o.config = g->cfg;
  job->o.json_stream = json;
  job->o.quiet = quiet;
  job->o.color = !g->no_color && !json && isatty(1) && getenv("NO_COLOR") == NULL;
  job->o.do_fsync = 1;
  job->o.report_fd = -1;
}

static void on_sigpipe(int sig)
{
  (void)sig;
}

/* `runbook drill --json | head -1`: the reader going away must not kill the
 * run half way through its timeline. A handler (not SIG_IGN, which commands
 * the run starts would inherit) turns the signal into EPIPE on the write,
 * and the run carries on with nobody reading its stdout. */
static void survive_broken_pipe(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sigaction(SIGPIPE, &sa, NULL);
}

static int run_child(void *arg, int report_fd)
{
  run_job *j = arg;
  survive_broken_pipe();
  j->o.report_fd = report_fd;
  return j->o.plan ? rb_plan_execute(&j->o) : rb_run_execute(&j->o);
}

/* exec --plan RUN: the plan, checked (docs/plans.md); its incident unless
 * --incident names another. Returns 0, or the exit code (printed). */
static int open_plan(const globals *g, rb_mode mode, const char *run, const char *path,
                     json_t **plan, const char **incident)
{
  if (mode != RB_MODE_EXEC)
    return usage_error(mode == RB_MODE_DRILL
                           ? "--plan is an option of exec"
                           : "--plan executes a plan: not with --dry-run");
  char err[4096];
  int code;
  *plan = rb_plan_load_checked(g->state_dir, g->cfg, run, path, &code, err, sizeof err);
  if (*plan == NULL) {
    fprintf(stderr, "runbook: plan %s refused: %s\n", run, err);
    return code;
  }
  if (*incident == NULL)
    *incident = json_string_value(json_object_get(*plan, "incident"));
  return 0;
}

static int cmd_run(globals *g, int argc, char **argv, rb_mode mode)
{
  static const struct option opts[] = {{"dry-run", no_argument, NULL, 'd'},
                                       {"incident", required_argument, NULL, 'i'},
                                       {"var", required_argument, NULL, 'v'},
                                       {"scenario", required_argument, NULL, 's'},
                                       {"actor", required_argument, NULL, 'a'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"plan", required_argument, NULL, 'p'},
                                       {"record", required_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
  const char *incident = g->incident, *scenario = NULL, *actor = NULL, *plan_run = NULL,
             *record = NULL;
  json_t *plan = NULL;
  int json = 0, quiet = 0, force = 0;
  rb_store *st = NULL;
  rb_lease *lease = NULL;
  json_t *vars = json_object();
  int code = RB_EXIT_USAGE;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
    char *k = NULL, *v = NULL;
    char err[512];
    switch (c) {
    case 'd':
      if (mode != RB_MODE_EXEC) {
        code = usage_error("--dry-run is an option of exec (a drill never acts)");
        goto out;
      }
      mode = RB_MODE_DRY_RUN;
      break;
    case 'i':
      incident = optarg;
      break;
    case 'v':
      if (rb_params_parse_var(optarg, &k, &v, err, sizeof err) != 0) {
        code = usage_error("%s", err);
        goto out;
      }
      json_object_set_new(vars, k, json_string(v));
      free(k);
      free(v);
      break;
    case 's':
      if (mode != RB_MODE_DRILL) {
        code = usage_error("--scenario is an option of drill");
        goto out;
      }
      scenario = optarg;
      break;
    case 'a':
      actor = optarg;
      break;
    case 'j':
      json = 1;
      break;
    case 'q':
      quiet = 1;
      break;
    case 'f':
      force = 1;
      break;
    case 'p':
      plan_run = optarg;
      break;
    case 'r':
      record = optarg;
      break;
    default:
      goto out;
    }
  }
  if (record != NULL && mode != RB_MODE_DRY_RUN) {
    code = usage_error("--record is an option of exec --dry-run (it records real reads)");
    goto out;
  }
  if (optind != argc - 1) {
    code = usage_error("%s needs exactly one runbook name or file",
                       mode == RB_MODE_DRILL ? "drill" : "exec");
    goto out;
  }
  char path[4096];
  if (find_runbook(g, argv[optind], path, sizeof path) != 0)
    goto out;
  if (plan_run && (code = open_plan(g, mode, plan_run, path, &plan, &incident)) != 0)
    goto out;
  code = RB_EXIT_USAGE;
  char scn_path[4096] = "", run_id[64], inc[80], actor_buf[160];
  if (mode == RB_MODE_DRILL) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char rname[256];
    snprintf(rname, sizeof rname, "%.*s", (int)(strlen(base) > 4 ? strlen(base) - 4 : 0),
             base);
    if (rb_scenario_find(path, rname, scenario ? scenario : "default", scn_path,
                         sizeof scn_path) != 0 ||
        access(scn_path, R_OK) != 0) {
      fprintf(stderr, "runbook: scenario '%s' not found (looked for %s)\n",
              scenario ? scenario : "default", scn_path);
      code = RB_EXIT_USAGE;
      goto out;
    }
  }
  rb_new_id(run_id, sizeof run_id);
  if (incident == NULL) {
    snprintf(inc, sizeof inc, "INC-%s", run_id);
    incident = inc;
  }
  if (actor == NULL)
    actor = rb_config_get_string(g->cfg, "core", "actor");
  if (actor == NULL) {
    snprintf(actor_buf, sizeof actor_buf, "user:%s", login_name());
    actor = actor_buf;
  }
  char tlpath[4300];
  if (rb_incident_path(g->state_dir, incident, tlpath, sizeof tlpath) != 0) {
    code = usage_error("invalid incident id '%s' (letters, digits, '-', '_', '.')",
                       incident);
    goto out;
  }
  run_job job;
  job_init(&job, g, path, mode, incident, run_id, actor, json, quiet);
  job.o.vars = vars;
  job.o.scenario_path = mode == RB_MODE_DRILL ? scn_path : NULL;
  job.o.scenario_name = scenario ? scenario : (mode == RB_MODE_DRILL ? "default" : NULL);
  job.o.force = force;
  job.o.plan = plan;
  job.o.record_path = record;
  if ((code = lease_run(g, run_id, "exec", &st, &lease)) != RB_EXIT_OK)
    goto out;
  job.o.store = st;
  rb_watch w = {tlpath, incident, run_id, rb_mode_name(mode), actor, 1000};
  code = rb_supervise(run_child, &job, &w);
out:
  rb_store_release(st, lease);
  rb_store_free(st);
  json_decref(vars);
  json_decref(plan);
  return code;
}

/* -- resume ----------------------------------------------------------------- */

static int cmd_resume(globals *g, int argc, char **argv)
{
  static const struct option opts[] = {{"in-doubt", required_argument, NULL, 'd'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {NULL, 0, NULL, 0}};
  const char *in_doubt = NULL;
  int json = 0, quiet = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
    if (c == 'd') {
      if (strcmp(optarg, "rerun") != 0 && strcmp(optarg, "skip") != 0)
        return usage_error("--in-doubt must be rerun or skip, not '%s'", optarg);
      in_doubt = optarg;
    } else if (c == 'j') {
      json = 1;
    } else if (c == 'q') {
      quiet = 1;
    } else {
      return RB_EXIT_USAGE;
    }
  }
  if (optind != argc - 1)
    return usage_error("resume needs one run id (the timeline names it: run ...)");
  const char *run = argv[optind];
  char incident[256], err[1024], tlpath[4300];
  if (g->incident)
    snprintf(incident, sizeof incident, "%s", g->incident);
  else if (rb_journal_find_incident(g->state_dir, run, incident, sizeof incident, err,
                                    sizeof err) != 0)
    return usage_error("%s", err);
  if (rb_incident_path(g->state_dir, incident, tlpath, sizeof tlpath) != 0)
    return usage_error("invalid incident id '%s'", incident);
  /* The lease first: the journal is read once no one else can add to it. */
  rb_store *st = NULL;
  rb_lease *lease = NULL;
  int code = lease_run(g, run, "resume", &st, &lease);
  rb_journal j;
  memset(&j, 0, sizeof j);
  if (code != RB_EXIT_OK)
    goto out;
  code = RB_EXIT_USAGE;
  if (rb_journal_load(tlpath, run, &j, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    goto out;
  }
  const char *at = j.next;
  int doubt = 0;
  if (j.ended) {
    fprintf(stderr, "runbook: run %s already ended (%s): nothing to resume\n", run,
            j.outcome);
    goto out;
  }
  rb_mode jmode = RB_MODE_EXEC; /* a journal naming no mode resumes as exec */
  (void)rb_mode_parse(j.mode, &jmode);
  if (jmode == RB_MODE_DRILL) {
    fprintf(stderr, "runbook: run %s is a drill: run the drill again instead\n", run);
    goto out;
  }
  int nothing_sent = 0;
  if (j.in_doubt || (j.failed && rb_step_kind_parse(j.last_kind) == RB_STEP_ACTION)) {
    at = j.last;
    /* Every write journals its started event before it is sent: with none
     * on record the action sent nothing and simply runs again. */
    nothing_sent = json_array_size(j.in_doubt_ops) == 0;
    doubt = !nothing_sent;
    if (nothing_sent)
      fprintf(stderr,
              "runbook: step '%s' started but nothing was sent (no write had started); "
              "running it again\n",
              at);
  } else if (j.failed || at[0] == '\0') {
    at = j.last; /* a read-only step, or one that never finished: run it again */
  }
  const char *shown = at[0] ? at : "start";
  if (at[0] == '\0' && json_array_size(j.path) != 0) {
    fprintf(stderr, "runbook: run %s has no step to resume at\n", run);
    goto out;
  }
  /* Killed between its started event and its first step: begin at start. */
  char actor[160], note[512];
  snprintf(actor, sizeof actor, "user:%s", login_name());
  snprintf(note, sizeof note, "resumed by %s at step '%s'%s", actor, shown,
           doubt          ? " (in doubt)"
           : nothing_sent ? " (nothing was sent)"
                          : "");
  run_job job;
  job_init(&job, g, j.file, jmode, incident, run, actor, json, quiet);
  job.o.vars = j.params;
  job.o.resume_at = at[0] ? at : NULL;
  job.o.resumed = 1;
  job.o.store = st;
  job.o.resume_ctx = j.ctx;
  job.o.resume_path = j.path;
  job.o.resume_note = note;
  job.o.started_by = j.actor;
  job.o.resume_in_doubt = doubt;
  job.o.in_doubt = in_doubt;
  job.o.in_doubt_ops = j.in_doubt_ops;
  rb_watch w = {tlpath, incident, run, j.mode, actor, 1000};
  code = rb_supervise(run_child, &job, &w);
out:
  rb_journal_clear(&j);
  rb_store_release(st, lease);
  rb_store_free(st);
  return code;
}

/* -- check, show, list ---------------------------------------------------- */

typedef struct {
  globals *g;
  int argc;
  char **argv;
  int show;
  int strict;            /* check --strict: a lint warning fails the check */
  rb_show_format format; /* show --format */
  const char *run;       /* show --run: that run's path lit */
} check_job;

static int check_child(void *arg, int report_fd)
{
  check_job *j = arg;
  survive_broken_pipe(); /* `runbook show X | head` ends quietly too */
  int worst = RB_EXIT_OK;
  for (int i = 0; i < j->argc; i++) {
    char path[4096];
    if (find_runbook(j->g, j->argv[i], path, sizeof path) != 0) {
      worst = RB_EXIT_USAGE;
      continue;
    }
    int rc = j->show ? rb_run_show(path, j->g->cfg, j->format, j->g->state_dir, j->run,
                                   stdout, report_fd)
                     : rb_run_check(path, j->g->cfg, 0, stdout, report_fd);
    if (rc == RB_EXIT_OK && !j->show) {
      fflush(stdout);
      int warnings = rb_lint_runbook(path, stderr);
      if (warnings < 0 && j->strict) {
        fprintf(stderr, "%s: --strict needs the static pass\n", path);
        rc = RB_EXIT_INVALID;
      } else if (warnings > 0 && j->strict) {
        fprintf(stderr, "%s: %d warning%s (--strict makes them errors)\n", path, warnings,
                warnings == 1 ? "" : "s");
        rc = RB_EXIT_INVALID;
      }
    }
    if (rc != RB_EXIT_OK && (worst == RB_EXIT_OK || rc == RB_EXIT_INVALID))
      worst = rc;
  }
  return worst;
}

static int cmd_check(globals *g, int argc, char **argv, int show)
{
  int strict = 0, out = 1;
  rb_show_format format = RB_SHOW_TEXT;
  const char *run = NULL;
  for (int i = 1; i < argc; i++) {
    if (!show && strcmp(argv[i], "--strict") == 0) {
      strict = 1;
    } else if (show &&
               (strcmp(argv[i], "--format") == 0 || strcmp(argv[i], "--run") == 0)) {
      if (i + 1 >= argc)
        return usage_error("show: %s needs a value", argv[i]);
      if (argv[i][2] == 'r')
        run = argv[++i];
      else if (rb_show_format_parse(argv[++i], &format) != 0)
        return usage_error("--format must be text, mermaid, dot or json, not '%s'",
                           argv[i]);
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      return usage_error("%s: unknown option '%s'", show ? "show" : "check", argv[i]);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  if (argc < 2 || (show && argc != 2))
    return usage_error("%s needs %s", show ? "show" : "check",
                       show ? "one runbook name or file" : "runbook names or files");
  check_job j = {g, argc - 1, argv + 1, show, strict, format, run};
  rb_watch w = {NULL, NULL, NULL, NULL, NULL, 1000};
  return rb_supervise(check_child, &j, &w);
}

static int list_child(void *arg, int report_fd)
{
  globals *g = arg;
  survive_broken_pipe();
  char dirs[16][4096];
  int nd, found = 0;
  search_dirs(g, dirs, &nd);
  for (int i = 0; i < nd; i++) {
    DIR *d = opendir(dirs[i]);
    if (d == NULL)
      continue;
    struct dirent **names = NULL;
    closedir(d);
    int n = scandir(dirs[i], &names, NULL, alphasort);
    for (int k = 0; k < n; k++) {
      size_t len = strlen(names[k]->d_name);
      if (len > 4 && strcmp(names[k]->d_name + len - 4, ".lua") == 0) {
        char path[8300], name[256], title[512], err[1024];
        snprintf(path, sizeof path, "%.4095s/%.255s", dirs[i], names[k]->d_name);
        if (rb_run_describe(path, g->cfg, name, sizeof name, title, sizeof title, err,
                            sizeof err, report_fd) == 0)
          printf("%-24s %s\n", name, title);
        else
          printf("%-24s (invalid: %s)\n", names[k]->d_name, err);
        found++;
      }
      free(names[k]);
    }
    free(names);
  }
  if (!found)
    fprintf(stderr,
            "runbook: no runbooks found in ./runbooks, $RUNBOOK_PATH or %s/runbooks\n",
            RB_DATADIR);
  return RB_EXIT_OK;
}

static int cmd_list(globals *g, int argc)
{
  if (argc != 1)
    return usage_error("list takes no arguments");
  rb_watch w = {NULL, NULL, NULL, NULL, NULL, 1000};
  return rb_supervise(list_child, g, &w);
}

/* -- test ------------------------------------------------------------------ */

/* 1 when a runbook of that file name is in the list already: a name found
 * in two search dirs is the first one's, as for drill and exec. */
static int listed_name(char **paths, size_t n, const char *file)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(strrchr(paths[i], '/') ? strrchr(paths[i], '/') + 1 : paths[i], file) == 0)
      return 1;
  return 0;
}

/* Every runbook file runbook list would show, in its order, each name once
 * (malloc'd). */
static void all_runbooks(const globals *g, char ***out, size_t *n)
{
  char dirs[16][4096];
  int nd;
  search_dirs(g, dirs, &nd);
  for (int i = 0; i < nd; i++) {
    struct dirent **names = NULL;
    int k = scandir(dirs[i], &names, NULL, alphasort);
    for (int j = 0; j < k; j++) {
      size_t len = strlen(names[j]->d_name);
      char path[8300], abs[PATH_MAX];
      snprintf(path, sizeof path, "%.4095s/%.255s", dirs[i], names[j]->d_name);
      char **grown = realloc(*out, (*n + 1) * sizeof *grown);
      if (grown && len > 4 && strcmp(names[j]->d_name + len - 4, ".lua") == 0 &&
          !listed_name(grown, *n, names[j]->d_name)) {
        *out = grown;
        (*out)[(*n)++] = strdup(realpath(path, abs) ? abs : path);
      } else if (grown) {
        *out = grown;
      }
      free(names[j]);
    }
    free(names);
  }
}

static int test_child(void *arg, int report_fd)
{
  survive_broken_pipe();
  return rb_cli_test_run(arg, report_fd);
}

static int cmd_test(globals *g, int argc, char **argv)
{
  static const struct option opts[] = {{"junit", required_argument, NULL, 'j'},
                                       {"coverage", no_argument, NULL, 'c'},
                                       {NULL, 0, NULL, 0}};
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  rb_test_opts o = {NULL, g->config_path, g->cfg, NULL, 0, NULL, 0, g->state_dir};
  int c, code = RB_EXIT_USAGE;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'j')
      o.junit = optarg;
    else if (c == 'c')
      o.coverage = 1;
    else
      return RB_EXIT_USAGE;
  }
  if (sl <= 0)
    return usage_error("test: cannot find the runbook binary (/proc/self/exe)");
  self[sl] = '\0';
  o.self = self;
  for (int i = optind; i < argc; i++) {
    char path[4096];
    char **grown = realloc(o.runbooks, (o.nrunbooks + 1) * sizeof *grown);
    if (grown == NULL || find_runbook(g, argv[i], path, sizeof path) != 0) {
      o.runbooks = grown ? grown : o.runbooks;
      goto out;
    }
    o.runbooks = grown;
    o.runbooks[o.nrunbooks++] = strdup(path);
  }
  if (optind == argc)
    all_runbooks(g, &o.runbooks, &o.nrunbooks);
  rb_watch w = {NULL, NULL, NULL, NULL, NULL, 1000};
  code = rb_supervise(test_child, &o, &w);
out:
  for (size_t i = 0; i < o.nrunbooks; i++)
    free(o.runbooks[i]);
  free(o.runbooks);
  return code;
}

/* -- timeline and approvals ------------------------------------------------ */

/* The incident's timeline path for a command given one incident id. */
static int cmd_plugin(globals *g, const char *plugin, int argc, char **argv);

/* With [store] url the store is the truth (docs/store.md "Reading"): the
 * local copy is brought up to it first (the serve plugin links libpq, the
 * binary does not). Fails closed: a store that can not be read, or a local
 * copy that is not a prefix of the store's, stops the command. */
static int store_sync(globals *g, const char *incident)
{
  if (rb_config_get_string(g->cfg, "store", "url") == NULL)
    return RB_EXIT_OK;
  char *args[] = {"store", "sync", (char *)incident, NULL};
  if (cmd_plugin(g, "serve", 3, args) == RB_EXIT_OK)
    return RB_EXIT_OK;
  fprintf(stderr,
          "runbook: the store ([store] url) could not be synced (above); not reading "
          "the local copy, which may be stale\n");
  return RB_EXIT_FAILED;
}

static int incident_file(globals *g, const char *incident, char *path, size_t len)
{
  if (rb_incident_path(g->state_dir, incident, path, len) != 0)
    return usage_error("invalid incident id '%s'", incident);
  if (store_sync(g, incident) != RB_EXIT_OK)
    return RB_EXIT_FAILED;
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "runbook: no timeline for incident '%s' (%s)\n", incident, path);
    return RB_EXIT_FAILED;
  }
  return RB_EXIT_OK;
}

/* timeline with --full or --run: through the digest (runner/digest.h). */
static int timeline_digest(const char *path, rb_tl_format fmt, const char *run, int full)
{
  char err[512];
  json_t *rows = rb_digest_load(path, run, full, err, sizeof err);
  if (rows == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  size_t i;
  json_t *r;
  if (fmt == RB_TL_MARKDOWN)
    rb_digest_markdown(rows, !full, stdout);
  else
    json_array_foreach(rows, i, r)
    {
      if (fmt == RB_TL_JSON)
        json_dumpf(json_object_get(r, "event"), stdout,
                   JSON_COMPACT | JSON_PRESERVE_ORDER);
      else
        printf("%s  %s", json_string_value(json_object_get(r, "ts")),
               json_string_value(json_object_get(r, "text")));
      putchar('\n');
    }
  json_decref(rows);
  return RB_EXIT_OK;
}

static int cmd_timeline(globals *g, int argc, char **argv)
{
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                       {"run", required_argument, NULL, 'r'},
                                       {"full", no_argument, NULL, 'F'},
                                       {NULL, 0, NULL, 0}};
  rb_tl_format fmt = RB_TL_TEXT;
  const char *run = NULL;
  int full = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'r') {
      run = optarg;
    } else if (c == 'F') {
      full = 1;
    } else if (c != 'f') {
      return RB_EXIT_USAGE;
    } else if (strcmp(optarg, "text") == 0) {
      fmt = RB_TL_TEXT;
    } else if (strcmp(optarg, "json") == 0) {
      fmt = RB_TL_JSON;
    } else if (strcmp(optarg, "markdown") == 0 || strcmp(optarg, "md") == 0) {
      fmt = RB_TL_MARKDOWN;
    } else {
      return usage_error("--format must be text, json or markdown, not '%s'", optarg);
    }
  }
  if (optind != argc - 1)
    return usage_error("timeline needs one incident id");
  char path[4300], err[512];
  int code = incident_file(g, argv[optind], path, sizeof path);
  if (code != RB_EXIT_OK)
    return code;
  /* markdown is brief unless --full: it is what goes into the postmortem */
  if (run || (fmt == RB_TL_MARKDOWN && !full))
    return timeline_digest(path, fmt, run, full || fmt != RB_TL_MARKDOWN);
  if (rb_timeline_export(path, fmt, stdout, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  return RB_EXIT_OK;
}

static int cmd_postmortem(globals *g, int argc, char **argv)
{
  if (argc != 2 || argv[1][0] == '-')
    return usage_error("postmortem needs one incident id");
  char path[4300], err[512];
  int code = incident_file(g, argv[1], path, sizeof path);
  if (code != RB_EXIT_OK)
    return code;
  if (rb_postmortem_write(path, argv[1], stdout, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  return RB_EXIT_OK;
}

typedef struct {
  globals *g;
  const char *incident, *tl, *html;
} report_job;

/* In the supervised child: the pictures load the runbooks' Lua. */
static int report_child(void *arg, int report_fd)
{
  report_job *j = arg;
  return rb_report_html(j->tl, j->incident, j->g->cfg, j->g->state_dir, j->html,
                        report_fd);
}

static int cmd_report(globals *g, int argc, char **argv)
{
  const char *incident = NULL, *html = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--html") == 0) {
      if (i + 1 >= argc)
        return usage_error("report: --html needs a file");
      html = argv[++i];
    } else if (argv[i][0] == '-' || incident) {
      return usage_error("report: unexpected '%s'", argv[i]);
    } else {
      incident = argv[i];
    }
  }
  if (incident == NULL || html == NULL)
    return usage_error("report needs an incident id and --html FILE");
  char path[4300];
  int code = incident_file(g, incident, path, sizeof path);
  if (code != RB_EXIT_OK)
    return code;
  report_job j = {g, incident, path, html};
  rb_watch w = {NULL, NULL, NULL, NULL, NULL, 1000};
  return rb_supervise(report_child, &j, &w);
}

static int cmd_verify(globals *g, int argc, char **argv)
{
  if (argc != 2 || argv[1][0] == '-')
    return usage_error("verify needs one incident id");
  char path[4300], err[512];
  int code = incident_file(g, argv[1], path, sizeof path);
  if (code != RB_EXIT_OK)
    return code;
  rb_tl_verdict v;
  int rc = rb_timeline_verify(path, &v, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  if (v.torn_line)
    fprintf(stderr, "warning: %s:%ld: torn last line (a crash mid-write), not verified\n",
            path, v.torn_line);
  if (v.bad_line) {
    printf("%s:%ld: does not chain: %s\n", path, v.bad_line, v.why);
  } else if (v.unchained) {
    printf("lines 1-%ld unchained (written before hash chaining)", v.unchained);
    if (v.events)
      printf("; %ld events after them verify", v.events);
    putchar('\n');
  } else if (rc != 0) {
    printf("%s: no events to verify\n", path);
  } else {
    printf("%ld events verify\nhead sha256 %s\n", v.events, v.head);
  }
  return rc == 0 ? RB_EXIT_OK : RB_EXIT_FAILED;
}

/* The confirm word of a gate, asked on the terminal when its policy has
 * one and --confirm did not give it; NULL when there is nothing to ask. */
static const char *ask_confirm(globals *g, const char *run, const char *step, char *buf,
                               size_t len)
{
  char err[512];
  json_t *r =
      isatty(0) ? rb_approval_status(g->state_dir, run, step, err, sizeof err) : NULL;
  const json_t *pol = json_object_get(r, "policy");
  const char *word = json_string_value(json_object_get(pol, "confirm"));
  const char *got = NULL;
  if (word != NULL && json_object_get(r, "decision") == NULL) {
    fprintf(stderr, "%s\n%s asks for a confirm word: type '%s' to approve: ",
            json_string_value(json_object_get(r, "question")),
            json_string_value(json_object_get(pol, "confirm_by")), word);
    if (fgets(buf, (int)len, stdin) != NULL) {
      buf[strcspn(buf, "\r\n")] = '\0';
      got = buf;
    }
  }
  json_decref(r);
  return got;
}

static int cmd_approve(globals *g, int argc, char **argv)
{
  static const struct option opts[] = {{"deny", no_argument, NULL, 'd'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"comment", required_argument, NULL, 'c'},
                                       {"confirm", required_argument, NULL, 'w'},
                                       {NULL, 0, NULL, 0}};
  int deny = 0;
  const char *as = NULL, *comment = "", *confirm = NULL;
  char typed[128];
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'd')
      deny = 1;
    else if (c == 'a')
      as = optarg;
    else if (c == 'c')
      comment = optarg;
    else if (c == 'w')
      confirm = optarg;
    else
      return RB_EXIT_USAGE;
  }
  if (optind != argc - 2)
    return usage_error("approve needs RUN and STEP (see runbook approvals)");
  if (confirm == NULL && !deny)
    confirm = ask_confirm(g, argv[optind], argv[optind + 1], typed, sizeof typed);
  /* Who answers is the account of the uid; --as is only a label. */
  rb_approval_answer a = {rb_approval_account(), as, !deny, comment, "cli", confirm};
  char msg[1024];
  int rc = rb_approval_answer_gate(g->state_dir, argv[optind], argv[optind + 1], &a, msg,
                                   sizeof msg);
  if (rc != RB_APPROVAL_OK) {
    fprintf(stderr, "runbook: %s%s\n", msg,
            strstr(msg, "(confirm)") ? " (pass --confirm WORD, or answer on a terminal)"
                                     : "");
    return RB_EXIT_FAILED;
  }
  printf("%s step '%s' of run %s as %s%s%s%s; needs %s\n", deny ? "denied" : "approved",
         argv[optind + 1], argv[optind], a.identity, as ? " (label " : "", as ? as : "",
         as ? ")" : "", msg);
  return RB_EXIT_OK;
}

static int cmd_approvals(globals *g, int argc)
{
  if (argc != 1)
    return usage_error("approvals takes no arguments");
  char err[512];
  json_t *p = rb_approval_pending(g->state_dir, err, sizeof err);
  if (p == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_FAILED;
  }
  size_t i;
  json_t *r;
  if (json_array_size(p) == 0)
    printf("no pending approvals in %s/approvals\n", g->state_dir);
  json_array_foreach(p, i, r)
  {
    printf("%s %s  %s  (runbook %s, incident %s, expires %s)\n    needs %s\n",
           json_string_value(json_object_get(r, "run")),
           json_string_value(json_object_get(r, "step")),
           json_string_value(json_object_get(r, "question")),
           json_string_value(json_object_get(r, "runbook")),
           json_string_value(json_object_get(r, "incident")),
           json_string_value(json_object_get(r, "expires")),
           json_string_value(json_object_get(r, "needs")));
    rb_plan_print_request(r, stdout);
    const char *word =
        json_string_value(json_object_get(json_object_get(r, "policy"), "confirm"));
    if (word)
      printf("    approving needs the word '%s' (--confirm %s)\n", word, word);
  }
  json_decref(p);
  return RB_EXIT_OK;
}

/* -- ssh ------------------------------------------------------------------- */

/* A command whose code lives in a plugin (runner/netplugin.h). */
static int cmd_plugin(globals *g, const char *plugin, int argc, char **argv)
{
  char err[768];
  const rb_plugin *p = rb_net_plugin(plugin, err, sizeof err);
  if (p == NULL || p->cli == NULL) {
    fprintf(stderr, "runbook: %s: %s\n", plugin,
            p ? "the plugin provides no command" : err);
    return RB_EXIT_FAILED;
  }
  const rb_host_cli host = {g->cfg, g->state_dir, g->incident};
  return p->cli(&host, argc, argv);
}

/* -- globals ---------------------------------------------------------------- */

/* The state dir a shell gets with no option and no config file. */
static void xdg_state_dir(char *out, size_t len)
{
  const char *xdg = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  if (xdg && *xdg)
    snprintf(out, len, "%s/runbook", xdg);
  else
    snprintf(out, len, "%s/.local/state/runbook", home && *home ? home : ".");
}

static void default_state_dir(globals *g)
{
  const char *conf = rb_config_get_string(g->cfg, "core", "state_dir");
  if (conf)
    snprintf(g->state_dir, sizeof g->state_dir, "%s", conf);
  else
    xdg_state_dir(g->state_dir, sizeof g->state_dir);
}

/* The state dir made absolute, so that what is printed (timeline paths, the
 * approve hint) means the same from any directory. */
static int absolute_state_dir(globals *g)
{
  if (g->state_dir[0] == '/')
    return 0;
  char cwd[4096], joined[sizeof g->state_dir];
  if (getcwd(cwd, sizeof cwd) == NULL ||
      (size_t)snprintf(joined, sizeof joined, "%s/%s", cwd, g->state_dir) >=
          sizeof joined)
    return -1;
  memcpy(g->state_dir, joined, sizeof joined);
  return 0;
}

/* Shell-quotes s into out when it holds anything but [A-Za-z0-9/._-]. */
static void shell_word(const char *s, char *out, size_t len)
{
  if (strspn(s,
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,") ==
      strlen(s)) {
    snprintf(out, len, "%s", s);
    return;
  }
  size_t o = 0;
  if (o + 1 < len)
    out[o++] = '\'';
  for (const char *p = s; *p && o + 5 < len; p++) {
    if (*p == '\'') {
      memcpy(out + o, "'\\''", 4);
      o += 4;
    } else {
      out[o++] = *p;
    }
  }
  if (o + 1 < len)
    out[o++] = '\'';
  out[o < len ? o : len - 1] = '\0';
}

/* "runbook [--state-dir DIR]": how another shell reaches this state dir.
 * The binary is named by its absolute path when it was started by path. */
static void approve_command(globals *g, const char *argv0)
{
  char exe[4096] = "runbook", def[4096], w1[4200], w2[4200];
  if (strchr(argv0, '/') != NULL && realpath(argv0, exe) == NULL)
    snprintf(exe, sizeof exe, "%s", argv0);
  shell_word(exe, w1, sizeof w1);
  xdg_state_dir(def, sizeof def);
  if (strcmp(def, g->state_dir) == 0) {
    snprintf(g->approve_cmd, sizeof g->approve_cmd, "%s", w1);
    return;
  }
  shell_word(g->state_dir, w2, sizeof w2);
  snprintf(g->approve_cmd, sizeof g->approve_cmd, "%s --state-dir %s", w1, w2);
}

/* Takes the global options out of argv wherever they are; returns the new
 * argc, or -1 on a usage error. */
static int parse_globals(globals *g, int argc, char **argv)
{
  int out = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (strcmp(a, "--") == 0) {
      while (i < argc)
        argv[out++] = argv[i++];
      break;
    }
    if (strcmp(a, "--no-color") == 0) {
      g->no_color = 1;
      continue;
    }
    const char *const names[] = {"--config", "--state-dir", "--inventory",
                                 "--known-hosts", "--incident"};
    const char **slots[] = {&g->config_path, NULL, &g->inventory, &g->known_hosts,
                            &g->incident};
    const char *val = NULL;
    int which = -1;
    for (int k = 0; k < 5; k++) {
      size_t n = strlen(names[k]);
      if (strcmp(a, names[k]) == 0) {
        if (i + 1 >= argc) {
          usage_error("%s needs a value", names[k]);
          return -1;
        }
        val = argv[++i];
        which = k;
      } else if (strncmp(a, names[k], n) == 0 && a[n] == '=') {
        val = a + n + 1;
        which = k;
      }
    }
    if (which < 0) {
      argv[out++] = argv[i];
      continue;
    }
    const char *state = NULL;
    slot = slots[which] ? slots[which] : &state;
    *slot = val;
    if (which == 1) {
      snprintf(g->state_dir, sizeof g->state_dir, "%s", val);
      g->state_dir_given = 1;
    }
  }
  argv[out] = NULL;
  return out;
}

int main(int argc, char **argv)
{
  globals g;
  memset(&g, 0, sizeof g);
  argc = parse_globals(&g, argc, argv);
  if (argc < 0)
    return RB_EXIT_USAGE;
  if (argc < 2)
    return usage_error("no command given");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("runbook %s\n", RB_VERSION);
    return RB_EXIT_OK;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
    return print_help(argc > 2 ? argv[2] : NULL);
  if (wants_help(argc - 1, argv + 1))
    return print_help(cmd);
  char err[2048];
  g.cfg = rb_config_load(g.config_path, err, sizeof err);
  if (g.cfg == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return RB_EXIT_USAGE;
  }
  if (g.inventory)
    rb_config_set(g.cfg, "ssh", "inventory", g.inventory);
  if (g.known_hosts)
    rb_config_set(g.cfg, "ssh", "known_hosts", g.known_hosts);
  if (!g.state_dir_given)
    default_state_dir(&g);
  if (absolute_state_dir(&g) != 0) {
    fprintf(stderr, "runbook: state dir %s: cannot make it an absolute path\n",
            g.state_dir);
    rb_config_free(g.cfg);
    return RB_EXIT_USAGE;
  }
  approve_command(&g, argv[0]);
  int code;
  if (strcmp(cmd, "exec") == 0)
    code = cmd_run(&g, argc - 1, argv + 1, RB_MODE_EXEC);
  else if (strcmp(cmd, "drill") == 0)
    code = cmd_run(&g, argc - 1, argv + 1, RB_MODE_DRILL);
  else if (strcmp(cmd, "check") == 0)
    code = cmd_check(&g, argc - 1, argv + 1, 0);
  else if (strcmp(cmd, "show") == 0)
    code = cmd_check(&g, argc - 1, argv + 1, 1);
  else if (strcmp(cmd, "test") == 0)
    code = cmd_test(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "list") == 0)
    code = cmd_list(&g, argc - 1);
  else if (strcmp(cmd, "timeline") == 0)
    code = cmd_timeline(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "postmortem") == 0)
    code = cmd_postmortem(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "report") == 0)
    code = cmd_report(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "verify") == 0)
    code = cmd_verify(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "approve") == 0)
    code = cmd_approve(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "approvals") == 0)
    code = cmd_approvals(&g, argc - 1);
  else if (strcmp(cmd, "resume") == 0)
    code = cmd_resume(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "runs") == 0)
    code = store_sync(&g, "--all")
               ? RB_EXIT_FAILED
               : rb_cli_runs(g.state_dir, g.incident, argc - 1, argv + 1);
  else if (strcmp(cmd, "stats") == 0)
    code = store_sync(&g, "--all") ? RB_EXIT_FAILED
                                   : rb_cli_stats(g.state_dir, argc - 1, argv + 1);
  else if (strcmp(cmd, "cancel") == 0)
    code = rb_cli_cancel(g.state_dir, argc - 1, argv + 1);
  else if (strcmp(cmd, "ssh") == 0)
    code = cmd_plugin(&g, "ssh", argc - 2, argv + 2);
  else if (strcmp(cmd, "serve") == 0)
    code = cmd_plugin(&g, "serve", argc - 1, argv + 1);
  else if (strcmp(cmd, "store") == 0)
    code = cmd_plugin(&g, "serve", argc - 1, argv + 1); /* argv[0] "store" */
  else
    code = usage_error("unknown command '%s'", cmd);
  rb_config_free(g.cfg);
  rb_redact_clear();
  return code;
}
