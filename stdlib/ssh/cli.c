/* cli.c: `runbook ssh`, one command on a host or group from the command
 * line, verified and fanned out like ssh.run, optionally on an incident. */
#include "stdlib/ssh/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/rb_host.h"
#include "runner/base/util.h"
#include "stdlib/ssh/common.h"

static const char usage[] =
    "usage: runbook ssh TARGET [--parallel N] [--batch N|P%] [--max-fail N|P%]\n"
    "                   [--timeout D] [--output-kb N] [--inventory F] [--known-hosts F]\n"
    "                   -- COMMAND...\n"
    "TARGET is a host, a group or a comma list from the inventory.\n";

typedef struct {
  const char *target;
  char *command;
  const char *inventory, *known_hosts;
  int parallel;
  rb_ssh_count batch, max_fail;
  int64_t timeout_ms;
  long output_kb;
} cli_args;

/* Joins argv[from..] with spaces, as ssh does with its command words. */
static char *join_words(int argc, char **argv, int from)
{
  size_t len = 1;
  for (int i = from; i < argc; i++)
    len += strlen(argv[i]) + 1;
  char *s = calloc(1, len);
  for (int i = from; s != NULL && i < argc; i++) {
    if (i > from)
      strcat(s, " ");
    strcat(s, argv[i]);
  }
  return s;
}

static int parse_args(int argc, char **argv, cli_args *a, char *err, size_t errlen)
{
  memset(a, 0, sizeof *a);
  a->batch.value = a->max_fail.value = -1;
  a->timeout_ms = -1;
  int i = 0;
  for (; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--") == 0) {
      i++;
      break;
    }
    if (o[0] != '-' || o[1] == '\0') {
      if (a->target == NULL) {
        a->target = o;
        continue;
      }
      break; /* the command, without "--" */
    }
    if (i + 1 >= argc)
      return rb_err(err, errlen, "%s needs a value", o);
    const char *v = argv[++i];
    char *end;
    if (strcmp(o, "--parallel") == 0) {
      long n = strtol(v, &end, 10);
      if (*end || n < 1 || n > 10000)
        return rb_err(err, errlen, "--parallel: want 1..10000, got '%s'", v);
      a->parallel = (int)n;
    } else if (strcmp(o, "--batch") == 0) {
      if (rb_ssh_parse_count(v, "--batch", &a->batch, err, errlen) < 0)
        return -1;
    } else if (strcmp(o, "--max-fail") == 0) {
      if (rb_ssh_parse_count(v, "--max-fail", &a->max_fail, err, errlen) < 0)
        return -1;
    } else if (strcmp(o, "--timeout") == 0) {
      char derr[200];
      if (rb_parse_duration(v, &a->timeout_ms, derr, sizeof derr) < 0)
        return rb_err(err, errlen, "--timeout: %s", derr);
    } else if (strcmp(o, "--output-kb") == 0) {
      a->output_kb = strtol(v, &end, 10);
      if (*end || a->output_kb < 1 || a->output_kb > 1024 * 1024)
        return rb_err(err, errlen, "--output-kb: want 1..1048576, got '%s'", v);
    } else if (strcmp(o, "--inventory") == 0) {
      a->inventory = v;
    } else if (strcmp(o, "--known-hosts") == 0) {
      a->known_hosts = v;
    } else {
      return rb_err(err, errlen, "unknown option %s", o);
    }
  }
  if (a->target == NULL)
    return rb_err(err, errlen, "no TARGET given");
  if (i >= argc)
    return rb_err(err, errlen, "no COMMAND given (put it after --)");
  if ((a->command = join_words(argc, argv, i)) == NULL)
    return rb_err(err, errlen, "out of memory");
  return 0;
}

typedef struct {
  rb_timeline *tl;
  const char *incident, *command;
  char run_id[32];
  const char *actor;
  int tty;
  int64_t last_progress_ms;
} cli_ctx;

static void record(cli_ctx *c, const char *event, int64_t dur_ms, json_t *detail)
{
  if (c->tl == NULL) {
    json_decref(detail);
    return;
  }
  json_t *ev =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "incident", c->incident,
                "run", c->run_id, "runbook", "ssh", "step", "ssh", "kind", "action",
                "event", event, "mode", "exec", "actor", c->actor);
  if (ev == NULL) {
    json_decref(detail);
    return;
  }
  if (dur_ms >= 0)
    json_object_set_new(ev, "duration_ms", json_integer(dur_ms));
  json_object_set_new(ev, "detail", detail ? detail : json_object());
  char err[512];
  if (rb_host_timeline_append(c->tl, ev, err, sizeof err) < 0)
    fprintf(stderr, "runbook ssh: cannot write the timeline: %s\n", err);
  json_decref(ev);
}

static void on_result(void *arg, const rb_ssh_result *r)
{
  cli_ctx *c = arg;
  record(c, rb_ssh_result_event(r), r->duration_ms, rb_ssh_result_json(r, c->command));
}

static void on_note(void *arg, const char *host, const char *msg)
{
  cli_ctx *c = arg;
  fprintf(stderr, "runbook ssh: %s\n", msg);
  record(c, "note", -1,
         json_pack("{s:s, s:s, s:s}", "op", "ssh", "host", host, "message", msg));
}

static void on_progress(void *arg, const rb_ssh_progress *p)
{
  cli_ctx *c = arg;
  if (p->total < 2 || (!c->tty && p->done != p->total))
    return;
  int64_t now = rb_now_mono_ms();
  if (p->done != p->total && now - c->last_progress_ms < 1000)
    return;
  c->last_progress_ms = now;
  char line[300];
  rb_ssh_progress_line(p, line, sizeof line);
  /* on a terminal one line, rewritten; the last one stays */
  if (c->tty)
    fprintf(stderr, "\r\033[K%s%s", line, p->done == p->total ? "\n" : "");
  else
    fprintf(stderr, "%s\n", line);
}

static void print_stream(const char *tag, const char *s, size_t len)
{
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || s[i] == '\n') {
      if (i > start || i < len)
        printf("  %s| %.*s\n", tag, (int)(i - start), s + start);
      start = i + 1;
    }
  }
}

static void print_result(const rb_ssh_result *r)
{
  char dur[32];
  rb_format_elapsed(r->duration_ms * 1000, dur, sizeof dur);
  if (r->skipped)
    printf("%s: SKIPPED\n", r->host);
  else if (r->ok)
    printf("%s: ok, exit 0, %s\n", r->host, dur);
  else if (r->signal != NULL)
    printf("%s: FAILED, signal %s, %s\n", r->host, r->signal, dur);
  else if (r->exit_code >= 0)
    printf("%s: FAILED, exit %d, %s\n", r->host, r->exit_code, dur);
  else
    printf("%s: FAILED, %s\n", r->host, dur);
  print_stream("out", r->out ? r->out : "", r->out_len);
  print_stream("err", r->errout ? r->errout : "", r->err_len);
  if (r->truncated)
    printf("  (output truncated at the cap)\n");
  if (r->error != NULL)
    printf("  error: %s\n", r->error);
}

static rb_timeline *open_timeline(const char *state_dir, const char *incident, char *err,
                                  size_t errlen)
{
  char dir[4096], path[4200];
  if (rb_fmt(dir, sizeof dir, "%s/incidents", state_dir ? state_dir : ".") < 0 ||
      rb_fmt(path, sizeof path, "%s/%s.jsonl", dir, incident) < 0) {
    rb_err(err, errlen, "state dir path too long");
    return NULL;
  }
  if (strchr(incident, '/') != NULL || incident[0] == '.' || incident[0] == '\0') {
    rb_err(err, errlen, "bad incident id '%s'", incident);
    return NULL;
  }
  int rc = rb_mkdirs(dir);
  if (rc < 0) {
    rb_err(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
    return NULL;
  }
  int repaired = 0;
  return rb_host_timeline_open(path, 1, &repaired, err, errlen);
}

static void run_opts(const cli_args *a, const rb_ssh_config *sc, cli_ctx *ctx,
                     rb_ssh_opts *o)
{
  memset(o, 0, sizeof *o);
  o->parallel = a->parallel ? a->parallel : sc->parallel;
  o->batch = a->batch;
  o->max_fail = a->max_fail;
  o->timeout_ms = a->timeout_ms >= 0 ? a->timeout_ms : sc->command_ms;
  o->output_max = a->output_kb ? (size_t)a->output_kb * 1024 : sc->output_max;
  o->on_result = on_result;
  o->on_progress = on_progress;
  o->on_note = on_note;
  o->arg = ctx;
}

int rb_cli_ssh(const rb_config *cfg, const char *state_dir, const char *incident,
               int argc, char **argv)
{
  char err[2048];
  cli_args a;
  rb_ssh_config sc;
  rb_ssh_inventory *inv = NULL;
  rb_ssh_host *hosts = NULL;
  rb_ssh_pool *pool = NULL;
  rb_ssh_result *res = NULL;
  size_t n = 0;
  int code = 2, none = 0;
  cli_ctx ctx = {0};
  if (parse_args(argc, argv, &a, err, sizeof err) < 0) {
    fprintf(stderr, "runbook ssh: %s\n%s", err, usage);
    free(a.command);
    return 2;
  }
  if (rb_ssh_config_read(cfg, &sc, err, sizeof err) < 0)
    goto fail;
  if (a.inventory != NULL)
    sc.inventory = a.inventory;
  if (a.known_hosts != NULL)
    sc.settings.known_hosts = a.known_hosts;
  inv = rb_ssh_config_inventory(&sc, &none, err, sizeof err);
  if ((inv == NULL && !none) ||
      rb_ssh_inventory_resolve(inv, a.target, &hosts, &n, err, sizeof err) < 0 ||
      (pool = rb_ssh_pool_new(&sc.settings, err, sizeof err)) == NULL)
    goto fail;
  ctx.command = a.command;
  ctx.incident = incident;
  ctx.tty = isatty(STDERR_FILENO);
  ctx.actor = rb_host_config_string(cfg, "core", "actor");
  if (ctx.actor == NULL)
    ctx.actor = getenv("USER") ? getenv("USER") : "unknown";
  rb_new_id(ctx.run_id, sizeof ctx.run_id);
  if (incident != NULL &&
      (ctx.tl = open_timeline(state_dir, incident, err, sizeof err)) == NULL)
    goto fail;
  json_t *names = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(names, json_string(hosts[i].name));
  record(&ctx, "started", -1,
         json_pack("{s:s, s:s, s:o, s:s}", "op", "ssh", "target", a.target, "hosts",
                   names, "command", a.command));
  rb_ssh_opts o;
  run_opts(&a, &sc, &ctx, &o);
  if (rb_ssh_run(pool, hosts, n, a.command, &o, &res, err, sizeof err) < 0)
    goto fail;
  size_t ok = 0, failed = 0, skipped = 0;
  for (size_t i = 0; i < n; i++) {
    print_result(&res[i]);
    ok += res[i].ok;
    skipped += res[i].skipped;
    failed += !res[i].ok && !res[i].skipped;
  }
  printf("%zu ok, %zu failed, %zu skipped of %zu host(s)\n", ok, failed, skipped, n);
  code = ok == n ? 0 : 1;
  goto out;
fail:
  fprintf(stderr, "runbook ssh: %s\n", err);
out:
  fflush(stdout);
  rb_ssh_results_free(res, n);
  rb_ssh_pool_free(pool);
  rb_ssh_hosts_free(hosts, n);
  rb_ssh_inventory_free(inv);
  rb_host_timeline_close(ctx.tl);
  free(a.command);
  return code;
}
