/* approvals.c: answering approval gates over HTTP; the approver is
 * whoever the bearer token belongs to, never a field of the request. */
#include "stdlib/serve/approvals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stdlib/serve/alerts.h"
#include "stdlib/rb_host.h"
#include "runner/base/util.h"

typedef struct {
  char name[128];
  char *token;
} approver;

struct rb_approvers {
  approver v[RB_APPROVERS_MAX];
  size_t n;
  rb_approvals_forward forward; /* or NULL */
  void *forward_arg;
};

void rb_approvers_set_forward(rb_approvers *a, rb_approvals_forward fn, void *arg)
{
  a->forward = fn;
  a->forward_arg = arg;
}

typedef struct {
  rb_approvers *a;
  const rb_config *cfg;
  const char *alert_token;
  char *err;
  size_t errlen;
  int bad;
} load_ctx;

static void load_one(const char *section, void *arg)
{
  load_ctx *c = arg;
  const char *name = section + strlen("approver.");
  if (c->bad || c->a->n >= RB_APPROVERS_MAX) {
    c->bad = 1;
    return;
  }
  for (size_t i = 0; i < c->a->n; i++)
    if (strcmp(c->a->v[i].name, name) == 0)
      return; /* each_section may name a section once per key */
  int absent = 0;
  char *tok = rb_host_config_secret(c->cfg, section, "token", &absent, c->err, c->errlen);
  if (tok == NULL && absent && rb_host_config_string(c->cfg, section, "slack_user"))
    return; /* answers from Slack only (slack.c) */
  if (tok == NULL) {
    if (absent)
      rb_err(c->err, c->errlen, "[%s]: set token_env or token_file (or slack_user)",
             section);
    c->bad = 1;
    return;
  }
  if (strlen(tok) < 16 || (c->alert_token && strcmp(tok, c->alert_token) == 0)) {
    rb_err(c->err, c->errlen,
           strlen(tok) < 16
               ? "[%s]: the token is shorter than 16 characters"
               : "[%s]: the token is the alert token: give approvers their own",
           section);
    explicit_bzero(tok, strlen(tok));
    free(tok);
    c->bad = 1;
    return;
  }
  approver *p = &c->a->v[c->a->n++];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->token = tok;
}

rb_approvers *rb_approvers_load(const rb_config *cfg, const char *alert_token, char *err,
                                size_t errlen)
{
  rb_approvers *a = calloc(1, sizeof *a);
  if (a == NULL) {
    rb_err(err, errlen, "out of memory");
    return NULL;
  }
  load_ctx c = {a, cfg, alert_token, err, errlen, 0};
  rb_host_config_each_section(cfg, "approver.", load_one, &c);
  if (c.bad) {
    rb_approvers_free(a);
    return NULL;
  }
  return a;
}

void rb_approvers_free(rb_approvers *a)
{
  if (a == NULL)
    return;
  for (size_t i = 0; i < a->n; i++) {
    explicit_bzero(a->v[i].token, strlen(a->v[i].token));
    free(a->v[i].token);
  }
  free(a);
}

size_t rb_approvers_count(const rb_approvers *a)
{
  return a ? a->n : 0;
}

typedef struct {
  const rb_config *cfg;
  const char **out;
  size_t n, max;
} env_ctx;

static void env_one(const char *section, void *arg)
{
  env_ctx *c = arg;
  const char *v = rb_host_config_string(c->cfg, section, "token_env");
  for (size_t i = 0; v && i < c->n; i++)
    if (strcmp(c->out[i], v) == 0)
      return;
  if (v && c->n < c->max)
    c->out[c->n++] = v;
}

size_t rb_approvers_env_names(const rb_config *cfg, const char **out, size_t max)
{
  env_ctx c = {cfg, out, 0, max};
  rb_host_config_each_section(cfg, "approver.", env_one, &c);
  return c.n;
}

int rb_approvers_has_token(const rb_approvers *a, const char *tok)
{
  int found = 0;
  for (size_t i = 0; a && tok && i < a->n; i++)
    found |= rb_alerts_ct_equal(tok, a->v[i].token);
  return found;
}

/* The approver whose token the header carries, or NULL. Every token is
 * compared (in constant time), so the time does not tell which matched. */
static const char *who(const rb_approvers *a, const char *auth)
{
  const char *found = NULL;
  if (a == NULL || auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
    return NULL;
  for (size_t i = 0; i < a->n; i++)
    if (rb_alerts_ct_equal(auth + 7, a->v[i].token) && found == NULL)
      found = a->v[i].name;
  return found;
}

static json_t *fail(unsigned *code, unsigned c, const char *msg, char *note, size_t len)
{
  *code = c;
  snprintf(note, len, "%s", msg);
  return json_pack("{s:s}", "error", msg);
}

/* The body of an answer: {approve: bool, comment?: string}; nothing else,
 * in particular no "by": the credential says who answers. */
static const char *check_body(const json_t *j)
{
  static const char *const known[] = {"approve", "comment", "confirm", NULL};
  const char *k;
  json_t *v;
  if (!json_is_object(j))
    return "body: expected a JSON object";
  json_object_foreach((json_t *)j, k, v)
  {
    size_t i = 0;
    while (known[i] && strcmp(known[i], k) != 0)
      i++;
    if (known[i] == NULL)
      return strcmp(k, "by") == 0 ? "by: the approver is the credential's name; remove it"
                                  : "unknown field (want approve, comment, confirm)";
  }
  const json_t *cm = json_object_get(j, "comment");
  if (!json_is_boolean(json_object_get(j, "approve")))
    return "approve: expected true or false";
  const json_t *cf = json_object_get(j, "confirm");
  if (cm && (!json_is_string(cm) || json_string_length(cm) > 511))
    return "comment: expected a string (at most 511 characters)";
  if (cf && (!json_is_string(cf) || json_string_length(cf) > 63))
    return "confirm: expected the gate's confirm word (a string)";
  return NULL;
}

static json_t *answer(const rb_approvers *ap, const char *who_, const char *state_dir,
                      const char *url, const char *body, size_t len, unsigned *code,
                      char *note, size_t notelen)
{
  char run[128], step[128], msg[1024];
  const char *p = url + strlen("/approvals/"), *slash = strchr(p, '/');
  if (slash == NULL || slash == p || strchr(slash + 1, '/') || slash[1] == '\0' ||
      (size_t)(slash - p) >= sizeof run || strlen(slash + 1) >= sizeof step)
    return fail(code, 404, "use /approvals/RUN/STEP", note, notelen);
  snprintf(run, sizeof run, "%.*s", (int)(slash - p), p);
  snprintf(step, sizeof step, "%s", slash + 1);
  json_t *j = json_loadb(body ? body : "", len, 0, NULL);
  const char *bad = check_body(j);
  if (bad) {
    json_decref(j);
    return fail(code, 400, bad, note, notelen);
  }
  const json_t *cm = json_object_get(j, "comment");
  rb_approval_answer a = {who_,
                          NULL,
                          json_is_true(json_object_get(j, "approve")),
                          cm ? json_string_value(cm) : "",
                          "http",
                          json_string_value(json_object_get(j, "confirm"))};
  int rc = rb_host_approval_answer(state_dir, run, step, &a, msg, sizeof msg);
  json_t *fwd = rc == RB_APPROVAL_NOT_FOUND && ap->forward
                    ? ap->forward(ap->forward_arg, run, step, &a, code, note, notelen)
                    : NULL;
  json_decref(j);
  if (fwd)
    return fwd;
  static const unsigned codes[] = {200, 500, 404, 403, 409};
  if (rc != RB_APPROVAL_OK)
    return fail(code, codes[-rc], msg, note, notelen);
  *code = 200;
  snprintf(note, notelen, "(%s %s by %s)", a.approve ? "approve" : "deny", step, who_);
  return json_pack("{s:s, s:s, s:b, s:s, s:s}", "run", run, "step", step, "approved",
                   a.approve, "by", who_, "needs", msg);
}

json_t *rb_approvals_http(const rb_approvers *a, const char *state_dir,
                          const char *method, const char *url, const char *auth,
                          const char *body, size_t len, unsigned *code, char *note,
                          size_t notelen)
{
  int list = strcmp(url, "/approvals") == 0;
  note[0] = '\0';
  if (strcmp(method, list ? "GET" : "POST") != 0)
    return fail(code, 405, list ? "use GET" : "use POST", note, notelen);
  const char *name = who(a, auth);
  if (name == NULL)
    return fail(code, 401, "an approver's credential is needed ([approver.NAME] token)",
                note, notelen);
  if (!list)
    return answer(a, name, state_dir, url, body, len, code, note, notelen);
  char err[512];
  json_t *p = rb_host_approval_pending(state_dir, err, sizeof err);
  if (p == NULL)
    return fail(code, 500, err, note, notelen);
  *code = 200;
  return p;
}
