/* serve.c: the alert listener on libmicrohttpd: authenticates webhooks,
 * starts matched runs as child processes, reaps them, exposes metrics. */
#include "stdlib/serve/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stdlib/serve/alerts.h"
#include "stdlib/serve/alerts_json.h"
#include "runner/base/buf.h"
#include "stdlib/serve/dedup.h"
#include "stdlib/serve/approvals_pg.h"
#include "stdlib/serve/mirror_pg.h"
#include "runner/base/redact.h"
#include "stdlib/serve/approvals.h"
#include "stdlib/serve/child.h"
#include "stdlib/serve/guard.h"
#include "stdlib/serve/notify.h"
#include "stdlib/serve/pagerduty.h"
#include "stdlib/serve/resolved.h"
#include "stdlib/serve/run_metrics.h"
#include "stdlib/serve/tls.h"
#include "stdlib/serve/slack.h"
#include "stdlib/rb_host.h"
#include "runner/base/util.h"

#define BODY_LIMIT (1024 * 1024)
#define QUEUE_MAX 64
#define MAX_RUNS_CAP 64
#define STOP_WAIT_MS 30000

enum {
  P_ALERTS,
  P_GRAFANA,
  P_PAGERDUTY,
  P_JSON,
  P_HEALTHZ,
  P_METRICS,
  P_APPROVALS,
  P_APPROVAL,
  P_SLACK,
  P_OTHER,
  P_N
};
static const char *const path_names[P_N] = {"/alerts/alertmanager",
                                            "/alerts/grafana",
                                            "/alerts/pagerduty",
                                            "/alerts/json/:name",
                                            "/healthz",
                                            "/metrics",
                                            "/approvals",
                                            "/approvals/:run/:step",
                                            "/slack/actions",
                                            "other"};
#define MAX_ROUTES 16

typedef struct {
  pid_t pid;
  char key[RB_DEDUP_KEY_MAX + 1]; /* the dedup key of the alert it answers */
} child;

typedef struct {
  char key[RB_DEDUP_KEY_MAX + 1];
  json_t *argv; /* array of strings */
} queued;

/* Why an alert's run could not start: the /metrics label. */
enum { F_RUNBOOK, F_PARAM, F_INVALID, F_SPAWN, F_N };
static const char *const fail_names[F_N] = {"runbook_missing", "param_empty", "invalid",
                                            "spawn"};

typedef struct {
  int path;
  unsigned code;
  unsigned long n;
} req_count;

typedef struct {
  pthread_mutex_t mu;
  const char *state_dir;
  const char *config_file;
  char *token;
  char *hmac_key;
  rb_pd_secrets *pd; /* [serve] pagerduty_secret, or NULL */
  int insecure;      /* --insecure-no-auth and no token or HMAC key */
  rb_serve_tls tls;
  rb_rules *rules;
  json_t *books;           /* runbook name -> `show --format json` (serve_child.h) */
  char **child_env;        /* environ without the listener's credentials */
  rb_serve_notify *notify; /* [serve] notify, or NULL */
  rb_guard *guard;         /* deadlines and the unauthenticated cap */
  rb_json_route *routes[MAX_ROUTES]; /* [serve.json.NAME] */
  int nroutes;
  unsigned max_conns, per_ip_conns;
  rb_guard_limits limits;
  rb_dedup *dedup;
  rb_approvals_pg *appr_pg; /* [store] url: gates answered through any replica */
  rb_mirror *mirror;        /* [store] url: the runs' timelines in the store */
  rb_approvers *approvers;  /* who may answer gates over HTTP */
  rb_slack *slack;          /* [slack]: gates posted there, answered by clicks */
  int max_runs;
  child kids[MAX_RUNS_CAP];
  int nkids;
  queued q[QUEUE_MAX];
  int qhead, qlen;
  unsigned long received, matched, duplicates, started, auth_failures;
  unsigned long failed[F_N];
  unsigned long finished[258]; /* exit code 0..255, 256 = killed by a signal */
  req_count reqs[64];
  int nreqs;
} server;

typedef struct {
  rb_buf body; /* capped at BODY_LIMIT */
  int too_big;
  int responded; /* a response is queued: ignore the rest */
} request;

/* -- children --------------------------------------------------------------- */

/* Starts `runbook exec ...` with stdin on /dev/null. Called with the lock
 * held, from the HTTP thread or the reaper; posix_spawn is safe there where
 * fork would copy a locked mutex. */
static int spawn_run(server *s, const char *key, json_t *argv)
{
  size_t n = json_array_size(argv);
  char **av = calloc(n + 1, sizeof *av);
  if (av == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    av[i] = (char *)json_string_value(json_array_get(argv, i));
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_init(&at);
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  sigaddset(&def, SIGCHLD);
  sigaddset(&def, SIGTERM);
  sigaddset(&def, SIGINT);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &def);
  /* own process group: a Ctrl-C on the listener's terminal is not theirs */
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                    POSIX_SPAWN_SETPGROUP);
  pid_t pid;
  int mine = -1, theirs = s->mirror ? rb_mirror_pair(&mine) : -1;
  if (theirs >= 0)
    posix_spawn_file_actions_adddup2(&fa, theirs, 3); /* RB_TIMELINE_MIRROR_FD */
  int rc = s->mirror && theirs < 0
               ? errno
               : posix_spawn(&pid, "/proc/self/exe", &fa, &at, av, s->child_env);
  if (theirs >= 0)
    close(theirs);
  if (mine >= 0 && rc == 0)
    rb_mirror_attach(s->mirror, mine, pid,
                     strncmp(key, "resume:", 7) == 0 ? key + 7 : NULL);
  else if (mine >= 0)
    close(mine);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(av);
  if (rc != 0) {
    fprintf(stderr, "runbook serve: cannot start a run for %s: %s\n", key, strerror(rc));
    return -1;
  }
  child *k = &s->kids[s->nkids++];
  k->pid = pid;
  snprintf(k->key, sizeof k->key, "%s", key);
  s->started++;
  fprintf(stderr, "runbook serve: started run of %s for alert %s (pid %d)\n",
          json_string_value(json_array_get(argv, 4 + (s->config_file ? 2 : 0))), key,
          (int)pid);
  return 0;
}

/* The mirror took over run (a dead replica's): `runbook resume RUN` here,
 * under the same in-doubt rules as by hand. */
static int resume_run(void *arg, const char *run)
{
  server *s = arg;
  char key[RB_DEDUP_KEY_MAX + 1];
  json_t *av =
      s->config_file
          ? json_pack("[s, s, s, s, s, s, s, s]", "/proc/self/exe", "--state-dir",
                      s->state_dir, "--config", s->config_file, "resume", run, "--quiet")
          : json_pack("[s, s, s, s, s, s]", "/proc/self/exe", "--state-dir", s->state_dir,
                      "resume", run, "--quiet");
  if (av == NULL)
    return -1;
  snprintf(key, sizeof key, "resume:%s", run);
  pthread_mutex_lock(&s->mu);
  int rc = s->nkids < s->max_runs ? spawn_run(s, key, av) : -1;
  pthread_mutex_unlock(&s->mu);
  json_decref(av);
  return rc;
}

/* A run taken over here failed (docs/store.md): the in-doubt rule stops it
 * for a human, who hears of it on [serve] notify, not only in this log. */
static void notify_stuck(void *arg, const char *incident, const json_t *failed)
{
  server *s = arg;
  const char *run = json_string_value(json_object_get(failed, "run"));
  json_t *ev = json_pack(
      "{s:s, s:s, s:O?, s:{s:s?, s:O?}}", "event", "run_needs_human", "actor",
      "runbook serve", "runbook", json_object_get(failed, "runbook"), "detail", "run",
      run, "error", json_object_get(json_object_get(failed, "detail"), "error"));
  char err[512];
  if (s->notify == NULL)
    fprintf(stderr,
            "runbook serve: store: taken-over run %s (incident %s) stopped for a human; "
            "no [serve] notify channel to tell\n",
            run ? run : "?", incident);
  else if (ev == NULL || rb_serve_notify_post(s->notify, ev, incident, err, sizeof err))
    fprintf(stderr, "runbook serve: notify: %s\n", ev ? err : "out of memory");
  else
    fprintf(stderr,
            "runbook serve: store: taken-over run %s (incident %s) stopped for a human; "
            "posted to %s\n",
            run ? run : "?", incident, rb_serve_notify_name(s->notify));
  json_decref(ev);
}

static void start_queued(server *s)
{
  while (s->qlen > 0 && s->nkids < s->max_runs) {
    queued *x = &s->q[s->qhead];
    if (spawn_run(s, x->key, x->argv) != 0) {
      rb_dedup_forget(s->dedup, x->key);
      s->failed[F_SPAWN]++;
    }
    json_decref(x->argv);
    x->argv = NULL;
    s->qhead = (s->qhead + 1) % QUEUE_MAX;
    s->qlen--;
  }
}

static void reap(server *s)
{
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nkids; i++) {
      if (s->kids[i].pid != pid)
        continue;
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 256;
      s->finished[code]++;
      rb_dedup_finished(s->dedup, s->kids[i].key, rb_now_wall_ms());
      fprintf(stderr, "runbook serve: run for alert %s ended (%s %d)\n", s->kids[i].key,
              code == 256 ? "signal" : "exit", code == 256 ? WTERMSIG(status) : code);
      s->kids[i] = s->kids[--s->nkids];
      break;
    }
    start_queued(s);
    char err[512];
    if (rb_dedup_sync(s->dedup, err, sizeof err) != 0)
      fprintf(stderr, "runbook serve: dedup store: %s\n", err);
    pthread_mutex_unlock(&s->mu);
  }
}

/* -- responses ---------------------------------------------------------- */

static int classify(const char *url)
{
  if (strcmp(url, "/alerts/alertmanager") == 0)
    return P_ALERTS;
  if (strcmp(url, "/alerts/grafana") == 0)
    return P_GRAFANA;
  if (strcmp(url, "/alerts/pagerduty") == 0)
    return P_PAGERDUTY;
  if (strncmp(url, "/alerts/json/", 13) == 0)
    return P_JSON;
  if (strcmp(url, "/healthz") == 0)
    return P_HEALTHZ;
  if (strcmp(url, "/metrics") == 0)
    return P_METRICS;
  if (strcmp(url, "/approvals") == 0)
    return P_APPROVALS;
  if (strncmp(url, "/approvals/", 11) == 0)
    return P_APPROVAL;
  if (strcmp(url, "/slack/actions") == 0)
    return P_SLACK;
  return P_OTHER;
}

static void count_request(server *s, int path, unsigned code)
{
  pthread_mutex_lock(&s->mu);
  int i = 0;
  for (; i < s->nreqs; i++)
    if (s->reqs[i].path == path && s->reqs[i].code == code)
      break;
  if (i == s->nreqs && s->nreqs < 64)
    s->reqs[s->nreqs++] = (req_count){path, code, 0};
  if (i < s->nreqs)
    s->reqs[i].n++;
  pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result respond(server *s, struct MHD_Connection *c, const char *method,
                               const char *url, unsigned code, const char *ctype,
                               const char *body, const char *note)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", ctype);
  if (code == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  enum MHD_Result rc = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  count_request(s, classify(url), code);
  char peer[64] = "?";
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, peer,
              sizeof peer);
  else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, peer,
              sizeof peer);
  char line[1024];
  snprintf(line, sizeof line, "%s %.8s %.200s %u%s%.600s", peer, method, url, code,
           note && *note ? " " : "", note ? note : "");
  char *red = rb_host_redact(line);
  fprintf(stderr, "runbook serve: %s\n", red ? red : "(unprintable)");
  free(red);
  return rc;
}

static enum MHD_Result respond_json(server *s, struct MHD_Connection *c,
                                    const char *method, const char *url, unsigned code,
                                    json_t *j, const char *note)
{
  char *txt = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  enum MHD_Result rc =
      respond(s, c, method, url, code, "application/json", txt ? txt : "{}", note);
  free(txt);
  return rc;
}

static enum MHD_Result respond_error(server *s, struct MHD_Connection *c,
                                     const char *method, const char *url, unsigned code,
                                     const char *msg)
{
  return respond_json(s, c, method, url, code, json_pack("{s:s}", "error", msg), msg);
}

/* -- authentication --------------------------------------------------------- */

static int check_auth(server *s, struct MHD_Connection *c, const request *rq)
{
  if (s->insecure)
    return 1; /* --insecure-no-auth */
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (s->token && auth && strncasecmp(auth, "Bearer ", 7) == 0 &&
      rb_alerts_ct_equal(auth + 7, s->token))
    return 1;
  const char *sig =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Runbook-Signature");
  if (s->hmac_key && sig &&
      rb_alerts_hmac_ok(s->hmac_key, rb_buf_str(&rq->body), rq->body.len, sig))
    return 1;
  pthread_mutex_lock(&s->mu);
  s->auth_failures++;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static int authorized(server *s, struct MHD_Connection *c, const request *rq)
{
  int ok = check_auth(s, c, rq);
  if (ok && !s->insecure)
    rb_guard_authenticated(s->guard, c);
  return ok;
}

/* -- /alerts/alertmanager --------------------------------------------------- */

static json_t *run_argv(const server *s, const rb_alert *a, const rb_alert_match *m,
                        const char *file, const char *incident)
{
  json_t *av = json_array();
  char buf[256];
  json_array_append_new(av, json_string("/proc/self/exe"));
  json_array_append_new(av, json_string("--state-dir"));
  json_array_append_new(av, json_string(s->state_dir));
  if (s->config_file) {
    json_array_append_new(av, json_string("--config"));
    json_array_append_new(av, json_string(s->config_file));
  }
  json_array_append_new(av, json_string("exec"));
  /* the file checked at start-up, not the name looked up again */
  json_array_append_new(av, json_string(file));
  json_array_append_new(av, json_string("--incident"));
  json_array_append_new(av, json_string(incident));
  json_array_append_new(av, json_string("--actor"));
  snprintf(buf, sizeof buf, "alert:%.200s", a->alertname);
  json_array_append_new(av, json_string(buf));
  const char *k;
  json_t *v;
  json_object_foreach(m->vars, k, v)
  {
    json_array_append_new(av, json_string("--var"));
    json_array_append_new(av, json_sprintf("%s=%s", k, json_string_value(v)));
  }
  if (m->dry_run)
    json_array_append_new(av, json_string("--dry-run"));
  json_array_append_new(av, json_string("--quiet"));
  return av;
}

/* What `runbook show --format json` said about the runbook, from the start-up
 * check; a runbook an annotation names is inspected on first use. NULL
 * with err when it does not load. */
static const json_t *book_info(server *s, const char *name, char *err, size_t errlen)
{
  json_t *info = json_object_get(s->books, name);
  if (info)
    return info;
  info = rb_serve_inspect(s->state_dir, s->config_file, s->child_env, name, err, errlen);
  if (info)
    json_object_set_new(s->books, name, info);
  return info;
}

/* One alert of a request that passed dedup and its checks. */
typedef struct {
  char key[RB_DEDUP_KEY_MAX + 1];
  json_t *argv, *item;
} pending;

/* An alert whose run cannot start: reported in its item, counted; the
 * caller forgets its dedup claim so the sender's retry can start it. */
static const char *fail_alert(server *s, json_t *item, int why, const char *msg)
{
  s->failed[why]++;
  json_object_set_new(item, "reason", json_string(fail_names[why]));
  json_object_set_new(item, "error", json_string(msg));
  return "failed";
}

/* Decides what happens to one alert; the lock is held. Returns the status
 * word; a run to start is added to todo, *overflow is set when the store
 * or the queue is full. */
static const char *handle_alert(server *s, const rb_alert_batch *b, size_t i,
                                json_t *item, pending *todo, size_t *ntodo, int *overflow)
{
  const rb_alert *a = &b->alerts[i];
  s->received++;
  if (strcmp(a->status, "firing") != 0)
    return "resolved";
  rb_alert_match m;
  char err[512], key[RB_DEDUP_KEY_MAX + 1], incident[96];
  int rc = rb_rules_match(s->rules, a, &m, err, sizeof err);
  if (rc < 0) {
    json_object_set_new(item, "error", json_string(err));
    return "error";
  }
  if (rc == 0)
    return "no_rule";
  s->matched++;
  rb_alerts_incident(b, i, incident, sizeof incident); /* per group and firing */
  snprintf(key, sizeof key, "%s|%s", a->fingerprint, a->starts_at);
  json_object_set_new(item, "runbook", json_string(m.runbook));
  json_object_set_new(item, "incident", json_string(incident));
  json_object_set_new(item, "mode", json_string(m.dry_run ? "dry-run" : "exec"));
  json_object_set_new(item, "rule", json_integer(m.rule));
  const char *st = "started";
  int d = rb_dedup_claim(s->dedup, key, rb_now_wall_ms(), err, sizeof err);
  const json_t *info = NULL;
  const char *reason = NULL;
  if (d == 1) {
    s->duplicates++;
    st = "duplicate";
  } else if (d < 0) {
    if (d == -2)
      fprintf(stderr, "runbook serve: dedup store: %s\n", err);
    *overflow = 1;
    st = "rejected";
  } else if ((info = book_info(s, m.runbook, err, sizeof err)) == NULL ||
             rb_serve_check_start(info, m.vars, err, sizeof err, &reason) != 0) {
    rb_dedup_forget(s->dedup, key);
    st = fail_alert(s, item,
                    info == NULL                             ? F_INVALID
                    : strcmp(reason, "runbook_missing") == 0 ? F_RUNBOOK
                                                             : F_PARAM,
                    err);
    if (info && reason && strcmp(reason, "runbook_missing") == 0)
      json_object_del(s->books, m.runbook); /* inspected again when it is back */
  } else {
    pending *p = &todo[(*ntodo)++];
    snprintf(p->key, sizeof p->key, "%s", key);
    p->argv =
        run_argv(s, a, &m, json_string_value(json_object_get(info, "file")), incident);
    p->item = item;
  }
  rb_alert_match_clear(&m);
  return st;
}

/* Starts or queues the runs decided for one request, once their dedup
 * claims are durable; the lock is held. */
static void start_pending(server *s, pending *todo, size_t n, int *overflow)
{
  char err[512];
  int synced = rb_dedup_sync(s->dedup, err, sizeof err) == 0;
  if (!synced)
    fprintf(stderr, "runbook serve: dedup store: %s\n", err);
  for (size_t i = 0; i < n; i++) {
    pending *p = &todo[i];
    const char *st = "started";
    if (!synced) {
      rb_dedup_forget(s->dedup, p->key);
      *overflow = 1;
      st = "rejected";
    } else if (s->nkids < s->max_runs) {
      if (spawn_run(s, p->key, p->argv) != 0) {
        rb_dedup_forget(s->dedup, p->key);
        st = fail_alert(s, p->item, F_SPAWN, "the run's process could not be started");
      }
    } else if (s->qlen < QUEUE_MAX) {
      queued *x = &s->q[(s->qhead + s->qlen++) % QUEUE_MAX];
      snprintf(x->key, sizeof x->key, "%s", p->key);
      x->argv = json_incref(p->argv);
      st = "queued";
    } else {
      rb_dedup_forget(s->dedup, p->key);
      *overflow = 1;
      st = "rejected";
    }
    json_object_set_new(p->item, "status", json_string(st));
    json_decref(p->argv);
  }
  if (rb_dedup_sync(s->dedup, err, sizeof err) != 0)
    fprintf(stderr, "runbook serve: dedup store: %s\n", err);
}

/* Alerts that could not start: an event on the incident they would have
 * opened, and a line on the notify channel. Called without the lock. */
static void report_failures(server *s, const rb_alert_batch *b, json_t *out)
{
  size_t i;
  json_t *item;
  json_array_foreach(out, i, item)
  {
    if (strcmp(json_string_value(json_object_get(item, "status")), "failed") != 0)
      continue;
    const rb_alert *a = &b->alerts[i];
    char actor[256];
    snprintf(actor, sizeof actor, "alert:%.200s", a->alertname);
    json_t *d = json_pack(
        "{s:O, s:O, s:O, s:s, s:s}", "reason", json_object_get(item, "reason"), "error",
        json_object_get(item, "error"), "rule", json_object_get(item, "rule"),
        "fingerprint", a->fingerprint, "startsAt", a->starts_at);
    json_t *ev =
        json_pack("{s:s, s:s, s:O, s:o}", "event", "alert_not_started", "actor", actor,
                  "runbook", json_object_get(item, "runbook"), "detail", d);
    char err[512];
    const char *incident = json_string_value(json_object_get(item, "incident"));
    if (s->notify &&
        rb_serve_notify_post(s->notify, ev, incident, err, sizeof err) != 0) {
      json_object_set_new(d, "notify_error", json_string(err));
      fprintf(stderr, "runbook serve: notify: %s\n", err);
    } else if (s->notify) {
      json_object_set_new(d, "notified", json_string(rb_serve_notify_name(s->notify)));
    }
    if (rb_serve_note(s->state_dir, json_string_value(json_object_get(item, "incident")),
                      ev, err, sizeof err) != 0)
      fprintf(stderr, "runbook serve: cannot record why an alert did not start: %s\n",
              err);
    json_decref(ev);
  }
}

static const rb_json_route *find_route(const server *s, const char *name)
{
  for (int i = 0; i < s->nroutes; i++)
    if (strcmp(rb_json_route_name(s->routes[i]), name) == 0)
      return s->routes[i];
  return NULL;
}

/* PagerDuty signs its body with the subscription's secret; the bearer token
 * and HMAC key of the other routes are not accepted here. */
static int pd_authorized(server *s, struct MHD_Connection *c, const request *rq)
{
  if (s->pd == NULL && s->insecure)
    return 1;
  const char *sig =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-PagerDuty-Signature");
  if (rb_pd_verify(s->pd, rb_buf_str(&rq->body), rq->body.len, sig)) {
    rb_guard_authenticated(s->guard, c);
    return 1;
  }
  pthread_mutex_lock(&s->mu);
  s->auth_failures++;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static unsigned refuse(char *err, size_t errlen, unsigned code, const char *msg)
{
  snprintf(err, errlen, "%s", msg);
  return code;
}

/* Authenticates and parses a request to an /alerts route. Returns 0 with the
 * batch (and *pd_type for PagerDuty), or the code to answer with err. */
static unsigned parse_request(server *s, struct MHD_Connection *c, const char *url,
                              request *rq, rb_alert_batch *b, const char **pd_type,
                              char *err, size_t errlen)
{
  const char *body = rb_buf_str(&rq->body);
  int path = classify(url);
  *pd_type = NULL;
  if (path == P_PAGERDUTY && !pd_authorized(s, c, rq))
    return refuse(err, errlen, MHD_HTTP_UNAUTHORIZED,
                  s->pd ? "missing or wrong X-PagerDuty-Signature"
                        : "no [serve] pagerduty_secret configured");
  if (path == P_PAGERDUTY)
    return rb_alerts_parse_pagerduty(body, rq->body.len, b, pd_type, err, errlen) ? 400
                                                                                  : 0;
  if (!authorized(s, c, rq))
    return refuse(err, errlen, MHD_HTTP_UNAUTHORIZED, "missing or wrong credentials");
  if (path == P_JSON) {
    const rb_json_route *r = find_route(s, url + 13);
    if (r == NULL)
      return refuse(err, errlen, MHD_HTTP_NOT_FOUND,
                    "no such route: configure [serve.json.NAME]");
    return rb_alerts_parse_json(r, body, rq->body.len, b, err, errlen) ? 400 : 0;
  }
  if (path == P_GRAFANA)
    return rb_alerts_parse_grafana(body, rq->body.len, b, err, errlen) ? 400 : 0;
  return rb_alerts_parse_am(body, rq->body.len, b, err, errlen) ? 400 : 0;
}

/* Resolved alerts whose firing started a run: noted on its timeline. */
static void note_resolved(server *s, const rb_alert_batch *b, json_t *out,
                          const char *url)
{
  size_t i;
  json_t *item;
  json_array_foreach(out, i, item)
  {
    if (strcmp(json_string_value(json_object_get(item, "status")), "resolved") != 0)
      continue;
    char err[512], incident[96];
    rb_alerts_incident(b, i, incident, sizeof incident);
    int rc = rb_serve_note_resolved(s->state_dir, &b->alerts[i], incident, url, err,
                                    sizeof err);
    if (rc < 0)
      fprintf(stderr, "runbook serve: cannot note a resolved alert: %s\n", err);
    else if (rc == 1)
      json_object_set_new(item, "incident", json_string(incident));
  }
}

/* A PagerDuty event other than incident.triggered/resolved: acknowledged
 * (a 2xx, so PagerDuty does not retry or disable the subscription). */
static enum MHD_Result pd_ignored(server *s, struct MHD_Connection *c, const char *method,
                                  const char *url, rb_alert_batch *b, const char *type)
{
  char note[160];
  snprintf(note, sizeof note, "(pagerduty %.100s: ignored)", type);
  json_t *out = json_pack("[{s:s, s:s}]", "event_type", type, "status", "ignored");
  rb_alerts_clear(b);
  return respond_json(s, c, method, url, MHD_HTTP_ACCEPTED, out, note);
}

static enum MHD_Result on_alerts(server *s, struct MHD_Connection *c, const char *method,
                                 const char *url, request *rq)
{
  if (strcmp(method, "POST") != 0)
    return respond_error(s, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
  rb_alert_batch b;
  char err[512];
  const char *pd_type;
  unsigned bad = parse_request(s, c, url, rq, &b, &pd_type, err, sizeof err);
  if (bad)
    return respond_error(s, c, method, url, bad, err);
  if (pd_type && b.n == 0)
    return pd_ignored(s, c, method, url, &b, pd_type);
  json_t *out = json_array();
  pending *todo = calloc(b.n ? b.n : 1, sizeof *todo);
  if (todo == NULL) {
    rb_alerts_clear(&b);
    json_decref(out);
    return respond_error(s, c, method, url, 500, "out of memory");
  }
  int overflow = 0;
  size_t ntodo = 0, started = 0, dup = 0, failed = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < b.n; i++) {
    const rb_alert *a = &b.alerts[i];
    json_t *item =
        json_pack("{s:s, s:s}", "fingerprint", a->fingerprint, "alertname", a->alertname);
    json_array_append_new(out, item);
    const char *st = handle_alert(s, &b, i, item, todo, &ntodo, &overflow);
    json_object_set_new(item, "status", json_string(st));
  }
  start_pending(s, todo, ntodo, &overflow);
  pthread_mutex_unlock(&s->mu);
  free(todo);
  size_t i;
  json_t *item;
  json_array_foreach(out, i, item)
  {
    const char *st = json_string_value(json_object_get(item, "status"));
    started += strcmp(st, "started") == 0;
    dup += strcmp(st, "duplicate") == 0;
    failed += strcmp(st, "failed") == 0;
  }
  report_failures(s, &b, out);
  note_resolved(s, &b, out, url);
  char note[256];
  snprintf(note, sizeof note, "(%zu alerts: %zu started, %zu duplicate, %zu failed%s)",
           b.n, started, dup, failed, overflow ? ", store or queue full" : "");
  rb_alerts_clear(&b);
  /* a failed start is a 500 so that the sender retries it */
  unsigned code = overflow ? MHD_HTTP_SERVICE_UNAVAILABLE
                  : failed ? MHD_HTTP_INTERNAL_SERVER_ERROR
                           : MHD_HTTP_ACCEPTED;
  return respond_json(s, c, method, url, code, out, note);
}

/* -- /approvals: approvals.c ---------------------------------------------- */

static enum MHD_Result on_approvals(server *s, struct MHD_Connection *c,
                                    const char *method, const char *url, request *rq)
{
  unsigned code;
  char note[1200];
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  json_t *out =
      rb_approvals_http(s->approvers, s->state_dir, method, url, auth,
                        rb_buf_str(&rq->body), rq->body.len, &code, note, sizeof note);
  if (code == MHD_HTTP_UNAUTHORIZED) {
    pthread_mutex_lock(&s->mu);
    s->auth_failures++;
    pthread_mutex_unlock(&s->mu);
  }
  return respond_json(s, c, method, url, code, out, note);
}

/* -- /slack/actions: slack.c ---------------------------------------------- */

static enum MHD_Result on_slack(server *s, struct MHD_Connection *c, const char *method,
                                const char *url, request *rq)
{
  unsigned code;
  int authed;
  char note[1600];
  json_t *out = rb_slack_http(
      s->slack, method, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Slack-Request-Timestamp"),
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Slack-Signature"),
      rb_buf_str(&rq->body), rq->body.len, &code, &authed, note, sizeof note);
  if (authed)
    rb_guard_authenticated(s->guard, c);
  else if (code == MHD_HTTP_UNAUTHORIZED) {
    pthread_mutex_lock(&s->mu);
    s->auth_failures++;
    pthread_mutex_unlock(&s->mu);
  }
  if (out == NULL) /* Slack wants an empty 200 */
    return respond(s, c, method, url, code, "text/plain", "", note);
  return respond_json(s, c, method, url, code, out, note);
}

/* -- /metrics ------------------------------------------------------------- */

static void metric(FILE *f, const char *name, const char *type, const char *help,
                   unsigned long v);

/* The dedup store's state; the lock is held. */
static void store_metrics(server *s, FILE *f)
{
  char what[600];
  unsigned long errors;
  int up = rb_dedup_health(s->dedup, what, sizeof what, &errors);
  metric(f, "runbook_store_up", "gauge",
         "1 when the dedup store takes claims, 0 when alerts get 503.",
         (unsigned long)up);
  metric(f, "runbook_store_errors_total", "counter", "Failed calls to the dedup store.",
         errors);
}

/* 200 with the store when it takes claims, else 503: a replica that can
 * not dedup must not be sent alerts. */
static enum MHD_Result on_healthz(server *s, struct MHD_Connection *c, const char *method,
                                  const char *url)
{
  char what[600], body[700];
  unsigned long errors;
  pthread_mutex_lock(&s->mu);
  int up = rb_dedup_health(s->dedup, what, sizeof what, &errors);
  pthread_mutex_unlock(&s->mu);
  snprintf(body, sizeof body, "%s\n%s%s%s", up ? "ok" : "unavailable",
           *what ? "store: " : "", what, *what ? "\n" : "");
  return respond(s, c, method, url, up ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                 "text/plain", body, NULL);
}

static void metric(FILE *f, const char *name, const char *type, const char *help,
                   unsigned long v)
{
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name, type, name, v);
}

static char *render_metrics(server *s)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL)
    return NULL;
  pthread_mutex_lock(&s->mu);
  metric(f, "runbook_alerts_received_total", "counter", "Alerts received.", s->received);
  metric(f, "runbook_alerts_matched_total", "counter",
         "Firing alerts that matched a rule.", s->matched);
  metric(f, "runbook_alerts_duplicate_total", "counter",
         "Matched alerts not started again (dedup by fingerprint).", s->duplicates);
  fprintf(f, "# HELP runbook_alerts_failed_total Matched alerts whose run could not "
             "start, by reason.\n# TYPE runbook_alerts_failed_total counter\n");
  for (int i = 0; i < F_N; i++)
    fprintf(f, "runbook_alerts_failed_total{reason=\"%s\"} %lu\n", fail_names[i],
            s->failed[i]);
  metric(f, "runbook_dedup_keys", "gauge", "Keys the dedup store holds.",
         (unsigned long)rb_dedup_count(s->dedup));
  store_metrics(s, f);
  metric(f, "runbook_runs_started_total", "counter", "Runs started.", s->started);
  metric(f, "runbook_runs_active", "gauge", "Runs running now.", (unsigned long)s->nkids);
  metric(f, "runbook_runs_queued", "gauge", "Runs waiting for a free slot.",
         (unsigned long)s->qlen);
  fprintf(f, "# HELP runbook_runs_finished_total Runs ended, by exit code.\n"
             "# TYPE runbook_runs_finished_total counter\n");
  for (int i = 0; i < 257; i++) {
    if (s->finished[i] == 0)
      continue;
    if (i == 256)
      fprintf(f, "runbook_runs_finished_total{exit_code=\"signal\"} %lu\n",
              s->finished[i]);
    else
      fprintf(f, "runbook_runs_finished_total{exit_code=\"%d\"} %lu\n", i,
              s->finished[i]);
  }
  unsigned long by_deadline, evicted;
  rb_guard_counts(s->guard, &by_deadline, &evicted);
  fprintf(f,
          "# HELP runbook_connections_closed_total Connections the listener closed, "
          "by why.\n# TYPE runbook_connections_closed_total counter\n"
          "runbook_connections_closed_total{why=\"deadline\"} %lu\n"
          "runbook_connections_closed_total{why=\"evicted\"} %lu\n",
          by_deadline, evicted);
  metric(f, "runbook_auth_failures_total", "counter",
         "Requests refused for missing or wrong credentials.", s->auth_failures);
  fprintf(f, "# HELP runbook_requests_total HTTP requests, by path and status code.\n"
             "# TYPE runbook_requests_total counter\n");
  for (int i = 0; i < s->nreqs; i++)
    fprintf(f, "runbook_requests_total{path=\"%s\",code=\"%u\"} %lu\n",
            path_names[s->reqs[i].path], s->reqs[i].code, s->reqs[i].n);
  pthread_mutex_unlock(&s->mu);
  rb_serve_run_metrics(s->state_dir, f); /* reads files: outside the lock */
  fclose(f);
  return buf;
}

/* -- dispatch --------------------------------------------------------------- */

/* A POST to an endpoint that reads JSON must say it sends JSON: a form or
 * text/plain (which a browser may send cross-site) is refused. */
static int json_content(server *s, struct MHD_Connection *c, const char *method,
                        const char *url)
{
  (void)s;
  int path = classify(url);
  if (strcmp(method, "POST") != 0 ||
      (path != P_ALERTS && path != P_GRAFANA && path != P_PAGERDUTY && path != P_JSON &&
       path != P_APPROVAL))
    return 1;
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0)
    return 0;
  return ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
  (void)version;
  server *s = cls;
  request *rq = *con_cls;
  if (rq == NULL) {
    rq = calloc(1, sizeof *rq);
    if (rq == NULL)
      return MHD_NO;
    rb_buf_init(&rq->body, BODY_LIMIT);
    *con_cls = rq;
    rb_guard_request_begins(s->guard, c);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > BODY_LIMIT) {
      rq->too_big = 1;
      rq->responded = 1;
      return respond_error(s, c, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                           "body larger than 1 MiB");
    }
    if (!json_content(s, c, method, url)) {
      rq->too_big = 1; /* the body is read and dropped */
      rq->responded = 1;
      return respond_error(s, c, method, url, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                           "Content-Type: expected application/json");
    }
    return MHD_YES;
  }
  if (rq->responded) {
    *upload_size = 0;
    return MHD_YES;
  }
  rq->responded = *upload_size == 0;
  if (*upload_size > 0) {
    if (!rq->too_big) {
      int rc = rb_buf_add(&rq->body, upload, *upload_size);
      if (rc == RB_BUF_ENOMEM)
        return MHD_NO;
      if (rc == RB_BUF_ETOOBIG) {
        rq->too_big = 1; /* the rest is read and dropped, then refused */
        rb_buf_free(&rq->body);
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (rq->too_big)
    return respond_error(s, c, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                         "body larger than 1 MiB");
  switch (classify(url)) {
  case P_ALERTS:
  case P_GRAFANA:
  case P_PAGERDUTY:
  case P_JSON:
    return on_alerts(s, c, method, url, rq);
  case P_HEALTHZ:
    return on_healthz(s, c, method, url);
  case P_METRICS: {
    char *m = render_metrics(s);
    enum MHD_Result r = respond(s, c, method, url, m ? MHD_HTTP_OK : 500,
                                "text/plain; version=0.0.4", m ? m : "", NULL);
    free(m);
    return r;
  }
  case P_APPROVALS:
  case P_APPROVAL:
    return on_approvals(s, c, method, url, rq);
  case P_SLACK:
    return on_slack(s, c, method, url, rq);
  default:
    return respond_error(s, c, method, url, MHD_HTTP_NOT_FOUND, "no such endpoint");
  }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  server *s = cls;
  (void)toe;
  rb_guard_request_ends(s->guard, c);
  request *rq = *con_cls;
  if (rq) {
    rb_buf_free(&rq->body);
    free(rq);
  }
  *con_cls = NULL;
}

/* -- start-up and the main loop -------------------------------------------- */

typedef struct {
  const char *listen;
  const char *rules;
  int insecure;
  int64_t dedup_ms;
} serve_opts;

static int parse_opts(int argc, char **argv, serve_opts *o)
{
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"rules", required_argument, NULL, 'r'},
                                       {"insecure-no-auth", no_argument, NULL, 'I'},
                                       {"dedup-window", required_argument, NULL, 'w'},
                                       {NULL, 0, NULL, 0}};
  char err[256];
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'l')
      o->listen = optarg;
    else if (c == 'r')
      o->rules = optarg;
    else if (c == 'I')
      o->insecure = 1;
    else if (c == 'w') {
      if (rb_parse_duration(optarg, &o->dedup_ms, err, sizeof err) != 0) {
        fprintf(stderr, "runbook: --dedup-window: %s\n", err);
        return -1;
      }
    } else
      return -1;
  }
  if (optind != argc) {
    fprintf(stderr, "runbook: serve takes no arguments ('%s')\n", argv[optind]);
    return -1;
  }
  return 0;
}

/* Parses "host:port" or "[v6]:port" into ss. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
  char host[128];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof host)
    return -1;
  snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || colon[1] == '\0' || port < 0 || port > 65535)
    return -1;
  memset(ss, 0, sizeof *ss);
  size_t hl = strlen(host);
  if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    host[hl - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
      return -1;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *sl = sizeof *a;
    return 0;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                &a->sin_addr) != 1)
    return -1;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *sl = sizeof *a;
  return 0;
}

static char *secret(const rb_config *cfg, const char *key, int *bad)
{
  char err[512];
  int absent = 0;
  char *v = rb_host_config_secret(cfg, "serve", key, &absent, err, sizeof err);
  if (v == NULL && !absent) {
    fprintf(stderr, "runbook: %s\n", err);
    *bad = 1;
  }
  return v;
}

static void wipe_free(char *p)
{
  if (p) {
    explicit_bzero(p, strlen(p));
    free(p);
  }
}

/* Every rule's runbook loads and gets its required parameters; a bad rule
 * stops start-up naming its index. */
static int check_rules(server *s, const char *path)
{
  for (size_t i = 0; i < rb_rules_count(s->rules); i++) {
    const char *name = rb_rules_runbook(s->rules, i);
    char err[1024];
    if (name == NULL)
      continue; /* the alert's annotation names it: checked when it comes */
    const json_t *info = book_info(s, name, err, sizeof err);
    if (info == NULL ||
        rb_serve_check_rule(info, rb_rules_vars(s->rules, i), err, sizeof err) != 0) {
      fprintf(stderr, "runbook: %s: rule %zu: %s\n", path, i, err);
      return -1;
    }
  }
  return 0;
}

static int open_dedup(server *s, const rb_config *cfg, const serve_opts *o)
{
  char dir[4200], err[1024];
  long max_keys;
  if (rb_host_config_int(cfg, "serve", "dedup_max_keys", &max_keys, err, sizeof err) !=
      0) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  snprintf(dir, sizeof dir, "%s/serve", s->state_dir);
  if (rb_mkdirs(s->state_dir) != 0) {
    fprintf(stderr, "runbook: serve: %s: %s\n", s->state_dir, strerror(errno));
    return -1;
  }
  /* [store] url: the key table shared with the other replicas (docs/store.md) */
  if (rb_host_config_string(cfg, "store", "url"))
    s->dedup = rb_dedup_open_pg(cfg, s->state_dir, o->dedup_ms, (size_t)max_keys, err,
                                sizeof err);
  else
    s->dedup = rb_dedup_open_file(dir, o->dedup_ms, (size_t)max_keys, rb_now_wall_ms(),
                                  err, sizeof err);
  if (s->dedup == NULL) {
    fprintf(stderr, "runbook: serve: dedup store: %s\n", err);
    return -1;
  }
  if (rb_host_config_string(cfg, "store", "url")) {
    if ((s->appr_pg = rb_approvals_pg_start(cfg, s->state_dir, err, sizeof err)) ==
        NULL) {
      fprintf(stderr, "runbook: serve: %s\n", err);
      return -1;
    }
    rb_approvals_pg_attach(s->appr_pg, s->approvers);
    s->mirror =
        rb_mirror_start(cfg, s->state_dir, resume_run, notify_stuck, s, err, sizeof err);
    char **env = s->mirror ? rb_mirror_env(s->child_env) : NULL;
    if (env == NULL) {
      fprintf(stderr, "runbook: serve: %s\n", s->mirror ? "out of memory" : err);
      return -1;
    }
    s->child_env = env;
  }
  return 0;
}

/* The connection limits and deadlines (keys.c has their defaults). */
static int read_limits(server *s, const rb_config *cfg)
{
  char err[512];
  long conns, per_ip, unauth;
  if (rb_host_config_int(cfg, "serve", "max_connections", &conns, err, sizeof err) ||
      rb_host_config_int(cfg, "serve", "per_ip_connections", &per_ip, err, sizeof err) ||
      rb_host_config_int(cfg, "serve", "max_unauthenticated", &unauth, err, sizeof err) ||
      rb_host_config_duration(cfg, "serve", "header_timeout", &s->limits.header_ms, err,
                              sizeof err) ||
      rb_host_config_duration(cfg, "serve", "request_timeout", &s->limits.request_ms, err,
                              sizeof err)) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  if (unauth > conns - 8 || unauth >= per_ip) {
    fprintf(stderr,
            "runbook: [serve] max_unauthenticated (%ld) must leave room: at most "
            "max_connections - 8 (%ld) and below per_ip_connections (%ld)\n",
            unauth, conns - 8, per_ip);
    return -1;
  }
  if (s->limits.header_ms <= 0 || s->limits.request_ms < s->limits.header_ms) {
    fprintf(stderr, "runbook: [serve] header_timeout must be > 0 and at most "
                    "request_timeout\n");
    return -1;
  }
  s->max_conns = (unsigned)conns;
  s->per_ip_conns = (unsigned)per_ip;
  s->limits.max_unauth = (unsigned)unauth;
  s->guard = rb_guard_new(&s->limits);
  return s->guard ? 0 : -1;
}

typedef struct {
  server *s;
  const rb_config *cfg;
  int bad;
} route_ctx;

static void add_route(const char *section, void *arg)
{
  route_ctx *x = arg;
  char err[512];
  if (x->bad)
    return;
  if (x->s->nroutes >= MAX_ROUTES) {
    fprintf(stderr, "runbook: [%s]: at most %d JSON routes\n", section, MAX_ROUTES);
    x->bad = 1;
    return;
  }
  rb_json_route *r = rb_json_route_new(x->cfg, section, err, sizeof err);
  if (r == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    x->bad = 1;
    return;
  }
  x->s->routes[x->s->nroutes++] = r;
}

/* [serve] pagerduty_secret: one or more secrets, none of them another
 * credential of the listener (a leak of one must not open the other). */
static int read_pd_secrets(server *s, const rb_config *cfg)
{
  char err[512];
  int bad = 0;
  char *v = secret(cfg, "pagerduty_secret", &bad);
  if (v == NULL)
    return bad ? -1 : 0;
  s->pd = rb_pd_secrets_parse(v, err, sizeof err);
  wipe_free(v);
  if (s->pd == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  if (rb_pd_secrets_contains(s->pd, s->token) ||
      rb_pd_secrets_contains(s->pd, s->hmac_key)) {
    fprintf(stderr,
            "runbook: [serve] pagerduty_secret: one of the secrets is the %s: "
            "give PagerDuty its own\n",
            rb_pd_secrets_contains(s->pd, s->token) ? "bearer token" : "HMAC key");
    return -1;
  }
  return 0;
}

static int setup(server *s, const rb_config *cfg, const serve_opts *o)
{
  char err[1024];
  int bad = 0;
  long max_runs;
  s->token = secret(cfg, "token", &bad);
  s->hmac_key = secret(cfg, "hmac_key", &bad);
  if (bad || read_pd_secrets(s, cfg) != 0)
    return -1;
  if (rb_serve_tls_load(cfg, &s->tls, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  s->insecure = o->insecure && s->token == NULL && s->hmac_key == NULL;
  if (s->token == NULL && s->hmac_key == NULL && s->pd == NULL && !o->insecure) {
    fprintf(stderr,
            "runbook: serve: no authentication configured: set [serve] token_env/"
            "token_file, hmac_key_env/hmac_key_file or pagerduty_secret_env/_file (or "
            "pass --insecure-no-auth)\n");
    return -1;
  }
  if (o->insecure && s->token == NULL && s->hmac_key == NULL)
    fprintf(stderr,
            "runbook serve: WARNING: --insecure-no-auth: anyone who can reach the "
            "listener can start runs (approvals still need an approver's token)\n");
  /* the table's bound (serve/keys.c) is MAX_RUNS_CAP */
  if (rb_host_config_int(cfg, "serve", "max_runs", &max_runs, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  s->max_runs = (int)max_runs;
  if (read_limits(s, cfg) != 0)
    return -1;
  route_ctx rx = {s, cfg, 0};
  rb_host_config_each_section(cfg, "serve.json.", add_route, &rx);
  if (rx.bad)
    return -1;
  const char *rules = o->rules ? o->rules : rb_host_config_string(cfg, "serve", "rules");
  if (rules == NULL) {
    fprintf(stderr,
            "runbook: serve: no rules file: pass --rules FILE or set [serve] rules\n");
    return -1;
  }
  s->rules = rb_rules_load(rules, err, sizeof err);
  if (s->rules == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  s->approvers = rb_approvers_load(cfg, s->token, err, sizeof err);
  if (s->approvers == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  int reused = 0;
  for (size_t i = 0; rb_pd_secret_at(s->pd, i) != NULL; i++)
    reused |= rb_approvers_has_token(s->approvers, rb_pd_secret_at(s->pd, i));
  if (reused) {
    fprintf(stderr, "runbook: [serve] pagerduty_secret: an approver's token is one of "
                    "the secrets: give PagerDuty its own\n");
    return -1;
  }
  const char *others[16] = {s->token, s->hmac_key};
  size_t nothers = 2;
  for (size_t i = 0; nothers < 16 && rb_pd_secret_at(s->pd, i) != NULL; i++)
    others[nothers++] = rb_pd_secret_at(s->pd, i);
  s->slack = rb_slack_new(cfg, s->state_dir, others, nothers, s->approvers, &bad, err,
                          sizeof err);
  if (bad) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  /* the listener's credentials never reach a run's environment */
  const char *drop[6 + RB_APPROVERS_MAX] = {
      rb_host_config_string(cfg, "serve", "token_env"),
      rb_host_config_string(cfg, "serve", "hmac_key_env"),
      rb_host_config_string(cfg, "serve", "pagerduty_secret_env"),
      rb_host_config_string(cfg, "store", "password_env")};
  size_t ndrop = 4 + rb_slack_env_names(cfg, drop + 4, 2);
  ndrop += rb_approvers_env_names(cfg, drop + ndrop, RB_APPROVERS_MAX);
  s->child_env = rb_serve_child_env(drop, ndrop);
  s->books = json_object();
  s->notify = rb_serve_notify_new(cfg, &bad, err, sizeof err);
  if (bad) {
    fprintf(stderr, "runbook: %s\n", err);
    return -1;
  }
  if (s->child_env == NULL || s->books == NULL || check_rules(s, rules) != 0 ||
      open_dedup(s, cfg, o) != 0)
    return -1;
  if (s->slack && s->appr_pg)
    rb_slack_set_store(s->slack, s->appr_pg); /* clicks through any replica */
  return s->slack && rb_slack_start(s->slack) != 0 ? -1 : 0;
}

/* Waits for signals with SIGCHLD/SIGTERM/SIGINT blocked everywhere, so no
 * handler runs inside the HTTP thread. Returns the signal that asks to stop. */
static int wait_for_stop(server *s, const sigset_t *set)
{
  for (;;) {
    struct timespec ts = {1, 0};
    int sig = sigtimedwait(set, NULL, &ts);
    reap(s); /* also after a timeout: a SIGCHLD may have been merged */
    pthread_mutex_lock(&s->mu);
    rb_dedup_tick(s->dedup); /* a shared store's heartbeat and cleanup */
    pthread_mutex_unlock(&s->mu);
    if (sig == SIGTERM || sig == SIGINT)
      return sig;
  }
}

static void drain(server *s, const sigset_t *set)
{
  pthread_mutex_lock(&s->mu);
  for (; s->qlen > 0; s->qlen--) {
    queued *x = &s->q[s->qhead];
    fprintf(stderr, "runbook serve: dropping queued run for alert %s\n", x->key);
    rb_dedup_forget(s->dedup, x->key); /* never started: a resend may start it */
    json_decref(x->argv);
    s->qhead = (s->qhead + 1) % QUEUE_MAX;
  }
  pthread_mutex_unlock(&s->mu);
  int64_t deadline = rb_now_mono_ms() + STOP_WAIT_MS;
  for (;;) {
    reap(s);
    pthread_mutex_lock(&s->mu);
    int left = s->nkids;
    pthread_mutex_unlock(&s->mu);
    if (left == 0 || rb_now_mono_ms() >= deadline) {
      if (left)
        fprintf(stderr,
                "runbook serve: %d runs still going after 30 s; leaving them to "
                "finish on their own (their timelines record the outcome)\n",
                left);
      return;
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    sigtimedwait(set, NULL, &ts);
  }
}

static void teardown(server *s)
{
  for (int i = 0; i < s->qlen; i++)
    json_decref(s->q[(s->qhead + i) % QUEUE_MAX].argv);
  rb_rules_free(s->rules);
  rb_approvals_pg_stop(s->appr_pg); /* before the approvers it forwards for */
  rb_mirror_stop(s->mirror);
  rb_dedup_free(s->dedup);
  rb_slack_free(s->slack);
  rb_approvers_free(s->approvers);
  json_decref(s->books);
  rb_serve_notify_free(s->notify);
  rb_guard_free(s->guard);
  for (int i = 0; i < s->nroutes; i++)
    rb_json_route_free(s->routes[i]);
  free(s->child_env);
  wipe_free(s->token);
  wipe_free(s->hmac_key);
  rb_pd_secrets_free(s->pd);
  rb_serve_tls_clear(&s->tls);
  pthread_mutex_destroy(&s->mu);
}

int rb_cli_serve(const rb_config *cfg, const char *state_dir, int argc, char **argv)
{
  serve_opts o = {NULL, NULL, 0, 3600 * 1000};
  if (parse_opts(argc, argv, &o) != 0) {
    fprintf(stderr, "(see runbook serve --help)\n");
    return RB_EXIT_USAGE;
  }
  const char *listen =
      o.listen ? o.listen : rb_host_config_string(cfg, "serve", "listen");
  if (listen == NULL)
    listen = "127.0.0.1:9095";
  struct sockaddr_storage ss;
  socklen_t sl;
  if (parse_listen(listen, &ss, &sl) != 0) {
    fprintf(stderr, "runbook: serve: bad listen address '%s' (want HOST:PORT)\n", listen);
    return RB_EXIT_USAGE;
  }
  server *s = calloc(1, sizeof *s);
  if (s == NULL)
    return RB_EXIT_FAILED;
  pthread_mutex_init(&s->mu, NULL);
  s->state_dir = state_dir;
  s->config_file = rb_host_config_file(cfg);
  int code = RB_EXIT_USAGE;
  if (setup(s, cfg, &o) != 0)
    goto out;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
                   (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                   (s->tls.cert ? MHD_USE_TLS : 0);
  /* the PEM strings stay alive (in s->tls) until the daemon is stopped */
  struct MHD_OptionItem tls_opts[] = {
      {s->tls.cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->tls.key},
      {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls.cert},
      {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)RB_SERVE_TLS_PRIORITIES},
      {MHD_OPTION_END, 0, NULL}};
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_CONNECTION_LIMIT, s->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      s->per_ip_conns, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)15,
      MHD_OPTION_NOTIFY_CONNECTION, rb_guard_notify, s->guard,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_ARRAY, tls_opts,
      MHD_OPTION_END);
  if (d == NULL) {
    fprintf(stderr, "runbook: serve: cannot listen on %s: %s\n", listen, strerror(errno));
    code = RB_EXIT_FAILED;
    goto out;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  char shown[160];
  snprintf(shown, sizeof shown, "%.*s:%u", (int)(strrchr(listen, ':') - listen), listen,
           di ? di->port : 0);
  fprintf(
      stderr,
      "runbook serve: listening on %s (%s, %zu rules, max %d runs, auth:%s%s%s%s, state "
      "%s)\n",
      shown, s->tls.cert ? "https" : "http", rb_rules_count(s->rules), s->max_runs,
      s->token ? " bearer" : "", s->hmac_key ? " hmac" : "", s->pd ? " pagerduty" : "",
      s->token || s->hmac_key || s->pd ? "" : " NONE", state_dir);
  int sig = wait_for_stop(s, &set);
  fprintf(stderr, "runbook serve: %s: no longer accepting, waiting for runs\n",
          sig == SIGTERM ? "SIGTERM" : "SIGINT");
  MHD_quiesce_daemon(d);
  MHD_stop_daemon(d);
  rb_guard_free(s->guard);
  s->guard = NULL;
  drain(s, &set);
  fprintf(stderr, "runbook serve: stopped\n");
  code = RB_EXIT_OK;
out:
  teardown(s);
  free(s);
  return code;
}
