/* slack.c: the [slack] settings and Slack's interactive callbacks: the
 * signature, the 5-minute window, one use per callback, the user mapping. */
#include "stdlib/serve/slack.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "runner/base/util.h"
#include "stdlib/serve/approvals_pg.h"
#include "stdlib/serve/slack_int.h"

/* -- the signature --------------------------------------------------------- */

int rb_slack_sign(const char *secret, const char *ts, const void *body, size_t len,
                  char *out, size_t outlen)
{
  size_t tl = strlen(ts);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  char *base = malloc(tl + len + 4);
  if (base == NULL || outlen < 68) {
    free(base);
    return -1;
  }
  memcpy(base, "v0:", 3);
  memcpy(base + 3, ts, tl);
  base[3 + tl] = ':';
  if (len)
    memcpy(base + 4 + tl, body, len);
  int ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)base,
                tl + len + 4, mac, &n) != NULL &&
           n == 32;
  free(base);
  if (!ok)
    return -1;
  memcpy(out, "v0=", 3);
  for (unsigned i = 0; i < n; i++)
    snprintf(out + 3 + 2 * i, 3, "%02x", mac[i]);
  OPENSSL_cleanse(mac, sizeof mac);
  return 0;
}

/* The timestamp header: decimal seconds, nothing else. */
static int parse_ts(const char *ts, int64_t *out)
{
  int64_t v = 0;
  if (ts == NULL || *ts == '\0' || strlen(ts) > 12)
    return -1;
  for (const char *p = ts; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (*p - '0');
  }
  *out = v;
  return 0;
}

int rb_slack_verify(const char *secret, const char *ts, const char *sig, const void *body,
                    size_t len, int64_t now_s)
{
  char want[80];
  int64_t t;
  if (secret == NULL || sig == NULL || parse_ts(ts, &t) != 0 || strlen(sig) != 67 ||
      rb_slack_sign(secret, ts, body, len, want, sizeof want) != 0)
    return RB_SLACK_BAD_SIGNATURE;
  int same = CRYPTO_memcmp(want, sig, 67) == 0;
  OPENSSL_cleanse(want, sizeof want);
  if (!same)
    return RB_SLACK_BAD_SIGNATURE;
  /* Signed, so the timestamp is Slack's: a replay beyond the window, or a
   * clock far off, is refused either way. */
  if (t < now_s - RB_SLACK_WINDOW_S || t > now_s + RB_SLACK_WINDOW_S)
    return RB_SLACK_STALE;
  return RB_SLACK_OK;
}

/* -- settings -------------------------------------------------------------- */

typedef struct {
  const char *want;
  int found;
} find_ctx;

static void find_section(const char *section, void *arg)
{
  find_ctx *f = arg;
  f->found |= strcmp(section, f->want) == 0;
}

typedef struct {
  rb_slack *sl;
  const rb_config *cfg;
  char *err;
  size_t errlen;
  int bad;
} users_ctx;

/* A Slack user id: U or W and upper-case letters and digits. */
static int slack_id(const char *s)
{
  size_t n = strlen(s);
  if (n < 3 || n > 32 || (s[0] != 'U' && s[0] != 'W'))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

static void add_user(const char *section, void *arg)
{
  users_ctx *c = arg;
  const char *id = rb_host_config_string(c->cfg, section, "slack_user");
  const char *name = section + strlen("approver.");
  if (c->bad || id == NULL)
    return;
  const char *had = json_string_value(json_object_get(c->sl->users, id));
  if (had && strcmp(had, name) == 0)
    return; /* each_section may name a section once per key */
  if (!slack_id(id))
    c->bad = rb_err(c->err, c->errlen,
                    "[%s] slack_user: '%s' is not a Slack user id (U or W, then "
                    "capitals and digits)",
                    section, id);
  else if (had)
    c->bad = rb_err(c->err, c->errlen,
                    "[%s] slack_user: %s is [approver.%s]'s already: one approver each",
                    section, id, had);
  else
    json_object_set_new(c->sl->users, id, json_string(name));
}

/* The secrets: present, long enough, and none equal to another credential. */
static int read_secrets(rb_slack *sl, const rb_config *cfg, const char *const *others,
                        size_t nothers, const rb_approvers *ap, char *err, size_t errlen)
{
  int absent = 0;
  sl->bot_token = rb_host_config_secret(cfg, "slack", "bot_token", &absent, err, errlen);
  if (sl->bot_token == NULL)
    return absent ? rb_err(err, errlen, "[slack]: set bot_token_env or bot_token_file")
                  : -1;
  sl->secret =
      rb_host_config_secret(cfg, "slack", "signing_secret", &absent, err, errlen);
  if (sl->secret == NULL)
    return absent ? rb_err(err, errlen,
                           "[slack]: set signing_secret_env or signing_secret_file")
                  : -1;
  if (strlen(sl->secret) < 16)
    return rb_err(err, errlen, "[slack] signing_secret: shorter than 16 characters");
  int same =
      rb_approvers_has_token(ap, sl->secret) || strcmp(sl->secret, sl->bot_token) == 0;
  for (size_t i = 0; i < nothers; i++)
    same |= others[i] && strcmp(others[i], sl->secret) == 0;
  if (same)
    return rb_err(err, errlen,
                  "[slack] signing_secret: equals another credential of the listener "
                  "(alert token, HMAC key, PagerDuty secret, an approver's token or the "
                  "bot token)");
  return 0;
}

/* api_url, its origin (scheme://host[:port]) and the channel. */
static int read_places(rb_slack *sl, const rb_config *cfg, char *err, size_t errlen)
{
  const char *api = rb_host_config_string(cfg, "slack", "api_url");
  const char *ch = rb_host_config_string(cfg, "slack", "channel");
  const char *host = api ? strstr(api, "://") : NULL;
  if (api == NULL || host == NULL ||
      (strncmp(api, "https://", 8) != 0 && strncmp(api, "http://", 7) != 0) ||
      strlen(api) >= sizeof sl->api)
    return rb_err(err, errlen, "[slack] api_url: expected an http(s) URL");
  snprintf(sl->api, sizeof sl->api, "%s", api);
  size_t n = strlen(sl->api);
  while (n > 0 && sl->api[n - 1] == '/')
    sl->api[--n] = '\0';
  const char *slash = strchr(host + 3, '/');
  snprintf(sl->origin, sizeof sl->origin, "%.*s",
           (int)(slash ? (size_t)(slash - api) : strlen(api)), api);
  if (ch == NULL || *ch == '\0' || strlen(ch) >= sizeof sl->channel ||
      strpbrk(ch, " \t\"\\"))
    return rb_err(err, errlen, "[slack] channel: set the channel id to post to");
  snprintf(sl->channel, sizeof sl->channel, "%s", ch);
  return 0;
}

static int init_sync(rb_slack *sl)
{
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&sl->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&sl->mu, NULL);
  return rc;
}

rb_slack *rb_slack_new(const rb_config *cfg, const char *state_dir,
                       const char *const *others, size_t nothers, const rb_approvers *ap,
                       int *bad, char *err, size_t errlen)
{
  find_ctx f = {"slack", 0};
  *bad = 0;
  rb_host_config_each_section(cfg, "slack", find_section, &f);
  if (!f.found)
    return NULL;
  rb_slack *sl = calloc(1, sizeof *sl);
  if (sl == NULL || init_sync(sl) != 0) {
    free(sl);
    *bad = rb_err(err, errlen, "out of memory");
    return NULL;
  }
  sl->users = json_object();
  sl->outbox = json_array();
  sl->retry = json_object();
  snprintf(sl->state_dir, sizeof sl->state_dir, "%s", state_dir);
  users_ctx u = {sl, cfg, err, errlen, 0};
  if (rb_fmt(sl->dir, sizeof sl->dir, "%s/serve/slack", state_dir) != 0)
    u.bad = rb_err(err, errlen, "state dir path too long");
  if (!u.bad && (read_places(sl, cfg, err, errlen) != 0 ||
                 read_secrets(sl, cfg, others, nothers, ap, err, errlen) != 0))
    u.bad = 1;
  if (!u.bad)
    rb_host_config_each_section(cfg, "approver.", add_user, &u);
  char seen[4300];
  if (!u.bad &&
      (rb_fmt(seen, sizeof seen, "%s/seen", sl->dir) != 0 || rb_mkdirs(seen) != 0))
    u.bad = rb_err(err, errlen, "cannot create %s/seen: %s", sl->dir, strerror(errno));
  if (u.bad) {
    rb_slack_free(sl);
    *bad = 1;
    return NULL;
  }
  return sl;
}

int rb_slack_start(rb_slack *sl)
{
  /* before a second thread exists: libcurl's global set-up is not safe
   * to race (the notify channel posts from the HTTP thread) */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -1;
  sl->curl = 1;
  if (pthread_create(&sl->th, NULL, rb_slack_thread, sl) != 0)
    return -1;
  sl->started = 1;
  if (json_object_size(sl->users) == 0)
    fprintf(stderr, "runbook serve: slack: no [approver.NAME] has a slack_user: every "
                    "click will be refused\n");
  return 0;
}

static void wipe(char *p)
{
  if (p) {
    explicit_bzero(p, strlen(p));
    free(p);
  }
}

void rb_slack_free(rb_slack *sl)
{
  if (sl == NULL)
    return;
  if (sl->started) {
    pthread_mutex_lock(&sl->mu);
    sl->stop = 1;
    pthread_cond_signal(&sl->cv);
    pthread_mutex_unlock(&sl->mu);
    pthread_join(sl->th, NULL);
  }
  if (sl->curl)
    curl_global_cleanup();
  pthread_cond_destroy(&sl->cv);
  pthread_mutex_destroy(&sl->mu);
  json_decref(sl->users);
  json_decref(sl->outbox);
  json_decref(sl->retry);
  wipe(sl->bot_token);
  wipe(sl->secret);
  free(sl);
}

void rb_slack_set_store(rb_slack *sl, struct rb_approvals_pg *pg)
{
  if (sl)
    sl->pg = pg;
}

size_t rb_slack_env_names(const rb_config *cfg, const char **out, size_t max)
{
  static const char *const keys[] = {"bot_token_env", "signing_secret_env"};
  size_t n = 0;
  for (size_t i = 0; i < 2 && n < max; i++) {
    const char *v = rb_host_config_string(cfg, "slack", keys[i]);
    if (v)
      out[n++] = v;
  }
  return n;
}

/* -- callbacks ------------------------------------------------------------- */

/* What one click says, from the signed payload. */
typedef struct {
  char user[40], username[100], run[130], step[130], url[1024], channel[64], ts[64];
  const char *word; /* inside the payload, or NULL */
  int approve;
} click;

static int hexval(char c)
{
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* The decoded value of field key of a form body (malloc'd), or NULL. */
static char *form_value(const char *body, size_t len, const char *key, size_t *outlen)
{
  size_t kl = strlen(key), i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && body[end] != '&')
      end++;
    if (end - i > kl && memcmp(body + i, key, kl) == 0 && body[i + kl] == '=') {
      char *out = malloc(end - i), *w = out;
      for (size_t r = i + kl + 1; out && r < end; r++) {
        int h = r + 2 < end ? hexval(body[r + 1]) : -1,
            l = h >= 0 ? hexval(body[r + 2]) : -1;
        if (body[r] == '%' && h >= 0 && l >= 0) {
          *w++ = (char)(h * 16 + l);
          r += 2;
        } else {
          *w++ = body[r] == '+' ? ' ' : body[r];
        }
      }
      if (out)
        *outlen = (size_t)(w - out);
      return out;
    }
    i = end + 1;
  }
  return NULL;
}

static int copy(char *dst, size_t len, const json_t *v)
{
  const char *s = json_string_value(v);
  return s && *s && rb_fmt(dst, len, "%s", s) == 0 ? 0 : -1;
}

/* A run or step id as the approvals store spells them (approval.c). */
static int gate_id(const char *s)
{
  if (*s == '\0' || strstr(s, "..") || strlen(s) > 128)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
      return 0;
  return 1;
}

/* Reads the click from a block_actions payload; NULL or what is wrong. */
static const char *parse_click(const json_t *p, click *c)
{
  const json_t *user = json_object_get(p, "user");
  const json_t *act = json_array_get(json_object_get(p, "actions"), 0);
  const char *aid = json_string_value(json_object_get(act, "action_id"));
  const char *val = json_string_value(json_object_get(act, "value"));
  const json_t *ch = json_object_get(json_object_get(p, "channel"), "id");
  const json_t *ts = json_object_get(json_object_get(p, "container"), "message_ts");
  const char *slash = val ? strchr(val, '/') : NULL;
  const char *type = json_string_value(json_object_get(p, "type"));
  if (type == NULL || strcmp(type, "block_actions") != 0)
    return "payload: expected a block_actions callback";
  if (copy(c->user, sizeof c->user, json_object_get(user, "id")) || !slack_id(c->user))
    return "payload: user.id missing or not a Slack user id";
  if (aid == NULL || (strcmp(aid, "rb_approve") != 0 && strcmp(aid, "rb_deny") != 0) ||
      slash == NULL || (size_t)(slash - val) >= sizeof c->run ||
      rb_fmt(c->step, sizeof c->step, "%s", slash + 1) != 0)
    return "payload: not a click on an Approve or Deny button of runbook";
  snprintf(c->run, sizeof c->run, "%.*s", (int)(slash - val), val);
  if (!gate_id(c->run) || !gate_id(c->step))
    return "payload: the button's value is not RUN/STEP";
  if (copy(c->url, sizeof c->url, json_object_get(p, "response_url")) ||
      copy(c->channel, sizeof c->channel, ch) || copy(c->ts, sizeof c->ts, ts))
    return "payload: response_url, channel.id or container.message_ts missing";
  if (copy(c->username, sizeof c->username, json_object_get(user, "username")))
    snprintf(c->username, sizeof c->username, "?");
  c->approve = strcmp(aid, "rb_approve") == 0;
  const json_t *vals = json_object_get(json_object_get(p, "state"), "values");
  c->word = json_string_value(json_object_get(
      json_object_get(json_object_get(vals, "rb_confirm"), "word"), "value"));
  return NULL;
}

/* Tells the one who clicked, and only them (ephemeral), why. */
static void tell(rb_slack *sl, const click *c, const char *msg)
{
  if (!rb_slack_url_allowed(sl, c->url)) {
    fprintf(stderr, "runbook serve: slack: not following response_url outside "
                    "hooks.slack.com and [slack] api_url\n");
    return;
  }
  rb_slack_queue(sl, c->url,
                 json_pack("{s:s, s:b, s:s}", "response_type", "ephemeral",
                           "replace_original", 0, "text", msg));
}

/* Puts a refusal the Slack channel made on the run's timeline. */
static void refuse(rb_slack *sl, const click *c, const char *name, const char *why)
{
  char id[64], msg[512];
  snprintf(id, sizeof id, "slack:%s", c->user);
  rb_approval_answer a = {name ? name : id, NULL, c->approve, "", "slack", NULL};
  rb_host_approval_refuse(sl->state_dir, c->run, c->step, &a, why, msg, sizeof msg);
}

/* 1 the first time a refused signature is seen: a replay sent again and
 * again is on the timeline once, not once per copy. */
static int first_refusal(rb_slack *sl, const char *sig)
{
  char p[4400];
  if (rb_fmt(p, sizeof p, "%s/seen/%.64s.refused", sl->dir, sig + 3) != 0)
    return 0;
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

/* Remembers the signature, durably; 1 when it was seen before. */
static int replayed(rb_slack *sl, const char *sig, int *failed)
{
  char p[4400], dir[4300];
  *failed = rb_fmt(dir, sizeof dir, "%s/seen", sl->dir) != 0 ||
            rb_fmt(p, sizeof p, "%s/%.64s", dir, sig + 3) != 0;
  int fd = *failed ? -1 : open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    *failed |= errno != EEXIST;
    return !*failed;
  }
  fsync(fd);
  close(fd);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd); /* the name itself survives a crash */
    close(dfd);
  }
  /* new here; with a shared store it must be new on every replica too (a
   * store that can not say fails closed) */
  int shared = sl->pg ? rb_approvals_pg_slack_seen(sl->pg, sig) : 0;
  *failed = shared < 0;
  return shared == 1;
}

static json_t *reply(unsigned *code, unsigned c, const char *msg, char *note, size_t len)
{
  *code = c;
  snprintf(note, len, "(slack: %s)", msg);
  return c == 200 ? NULL : json_pack("{s:s}", "error", msg);
}

static const char *mark_str(const json_t *m, const char *k)
{
  const char *v = json_string_value(json_object_get(m, k));
  return v ? v : "";
}

/* 1 when the click came from the message posted for its gate. */
static int from_our_message(rb_slack *sl, const click *c)
{
  pthread_mutex_lock(&sl->mu);
  json_t *m = rb_slack_mark_get(sl, c->run, c->step);
  if (m == NULL) /* decided: the answer is then told so */
    m = rb_slack_mark_read(sl, c->run, c->step, ".done.json");
  pthread_mutex_unlock(&sl->mu);
  int ours = m && strcmp(mark_str(m, "channel"), c->channel) == 0 &&
             strcmp(mark_str(m, "ts"), c->ts) == 0;
  json_decref(m);
  return ours;
}

/* The message is then updated through this click's response_url. */
static void keep_response_url(rb_slack *sl, const click *c)
{
  pthread_mutex_lock(&sl->mu);
  json_t *m = rb_slack_mark_get(sl, c->run, c->step);
  if (m && rb_slack_url_allowed(sl, c->url)) {
    json_object_set_new(m, "response_url", json_string(c->url));
    json_object_set_new(m, "response_at", json_integer(rb_now_wall_ms()));
    json_object_set_new(m, "response_uses", json_integer(0));
    rb_slack_mark_put(sl, c->run, c->step, m);
  }
  pthread_cond_signal(&sl->cv);
  pthread_mutex_unlock(&sl->mu);
  json_decref(m);
}

/* What the holder said of a click forwarded to it, as a sentence. */
static void forwarded_result(const click *c, const char *name, const json_t *out,
                             unsigned fc, char *why, size_t len)
{
  const char *r = json_string_value(json_object_get(out, "replica"));
  const char *err = json_string_value(json_object_get(out, "error"));
  const char *needs = json_string_value(json_object_get(out, "needs"));
  if (fc == 200)
    snprintf(why, len, "%s %s step %s of %s (replica %s); needs %s", name,
             c->approve ? "approves" : "denies", c->step, c->run, r ? r : "?",
             needs ? needs : "?");
  else if (fc == 202)
    snprintf(why, len,
             "%s's answer to step %s of %s is queued for replica %s, which did not "
             "answer in 5 s",
             name, c->step, c->run, r ? r : "?");
  else
    snprintf(why, len, "%s could not answer (replica %s): %s%s", name, r ? r : "?",
             err ? err : "refused",
             err && strstr(err, "(confirm)") ? "; type the word in the box, then Approve"
                                             : "");
}

/* A click on a message another replica posted: checked against the
 * message that replica published for the gate, the user mapped here, and
 * the answer handed to the holder, whose gate applies its policy. */
static json_t *through_store(rb_slack *sl, const click *c, const char *name,
                             unsigned *code, char *note, size_t notelen)
{
  char r[512], why[1600], comment[200];
  int h = rb_approvals_pg_slack_holder(sl->pg, c->run, c->step, c->channel, c->ts, r,
                                       sizeof r);
  if (h < 0)
    return reply(code, 503, "the shared store is unavailable", note, notelen);
  if (h == 0) {
    snprintf(why, sizeof why,
             "refused: the click came from a message no replica posted for step '%s' "
             "of run %s (or the gate is no longer pending)",
             c->step, c->run);
    refuse(sl, c, name, why); /* on this replica's timeline, if the run is here */
    tell(sl, c, why);
    return reply(code, 200, why, note, notelen);
  }
  if (name == NULL) {
    snprintf(why, sizeof why,
             "refused: Slack user %s is not an approver (the listener's config maps a "
             "Slack user with slack_user = \"%s\" in an [approver.NAME] section)",
             c->user, c->user);
    tell(sl, c, why);
    return reply(code, 200, why, note, notelen);
  }
  snprintf(comment, sizeof comment, "Slack user %s (@%s)", c->user, c->username);
  rb_approval_answer a = {name, NULL, c->approve, comment, "slack", c->word};
  unsigned fc = 0;
  char fnote[512];
  json_t *out =
      rb_approvals_pg_forward(sl->pg, c->run, c->step, &a, &fc, fnote, sizeof fnote);
  if (out == NULL)
    snprintf(why, sizeof why, "%s could not answer: step '%s' of run %s is not pending",
             name, c->step, c->run);
  else
    forwarded_result(c, name, out, fc, why, sizeof why);
  json_decref(out);
  tell(sl, c, why);
  return reply(code, 200, why, note, notelen);
}

/* A click that is Slack's own, recent and new: the gate's message, the
 * user's approver, then the answer under the gate's policy. Anything
 * refused is told to the user and is a 200, as Slack wants. */
static json_t *act(rb_slack *sl, const click *c, unsigned *code, char *note,
                   size_t notelen)
{
  const char *name = json_string_value(json_object_get(sl->users, c->user));
  char msg[1024], why[1400], comment[200];
  int ours = from_our_message(sl, c);
  if (!ours && sl->pg) /* another replica's message, perhaps */
    return through_store(sl, c, name, code, note, notelen);
  if (!ours) {
    snprintf(why, sizeof why,
             "refused: the click came from a message this listener did not post for "
             "step '%s' of run %s",
             c->step, c->run);
    refuse(sl, c, name, why);
    tell(sl, c, why);
    return reply(code, 200, why, note, notelen);
  }
  if (name == NULL) {
    snprintf(why, sizeof why,
             "refused: Slack user %s is not an approver (the listener's config maps a "
             "Slack user with slack_user = \"%s\" in an [approver.NAME] section)",
             c->user, c->user);
    refuse(sl, c, NULL, why);
    tell(sl, c, why);
    return reply(code, 200, why, note, notelen);
  }
  snprintf(comment, sizeof comment, "Slack user %s (@%s)", c->user, c->username);
  rb_approval_answer a = {name, NULL, c->approve, comment, "slack", c->word};
  int rc = rb_host_approval_answer(sl->state_dir, c->run, c->step, &a, msg, sizeof msg);
  if (rc != RB_APPROVAL_OK) {
    snprintf(why, sizeof why, "%s could not answer: %s%s", name, msg,
             strstr(msg, "(confirm)") ? "; type the word in the box, then Approve" : "");
    tell(sl, c, why);
    return reply(code, 200, why, note, notelen);
  }
  keep_response_url(sl, c);
  snprintf(why, sizeof why, "%s %s step %s of %s; needs %s", name,
           c->approve ? "approves" : "denies", c->step, c->run, msg);
  return reply(code, 200, why, note, notelen);
}

/* The window and the one use, then act. v is rb_slack_verify's verdict. */
static json_t *checked(rb_slack *sl, const click *c, int v, const char *sig,
                       unsigned *code, char *note, size_t notelen)
{
  const char *name = json_string_value(json_object_get(sl->users, c->user));
  int failed = 0;
  if (v == RB_SLACK_STALE) {
    if (first_refusal(sl, sig))
      refuse(sl, c, name,
             "refused: the Slack callback's timestamp is more than 5 minutes from the "
             "listener's clock (a replay, or a clock that is off)");
    return reply(code, 401, "X-Slack-Request-Timestamp: more than 5 minutes from now",
                 note, notelen);
  }
  if (replayed(sl, sig, &failed)) {
    if (first_refusal(sl, sig))
      refuse(sl, c, name,
             "refused: a replayed Slack callback (its signature was used before)");
    return reply(code, 409, "this callback was used before", note, notelen);
  }
  if (failed)
    return reply(code, 500, "cannot record the callback as used", note, notelen);
  return act(sl, c, code, note, notelen);
}

static int form_type(const char *ct)
{
  static const char want[] = "application/x-www-form-urlencoded";
  size_t n = sizeof want - 1;
  return ct && strncasecmp(ct, want, n) == 0 &&
         (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

json_t *rb_slack_http(rb_slack *sl, const char *method, const char *ctype, const char *ts,
                      const char *sig, const char *body, size_t len, unsigned *code,
                      int *authed, char *note, size_t notelen)
{
  *authed = 0;
  if (sl == NULL)
    return reply(code, 404, "Slack is not configured ([slack])", note, notelen);
  if (strcmp(method, "POST") != 0)
    return reply(code, 405, "use POST", note, notelen);
  if (!form_type(ctype))
    return reply(code, 415, "Content-Type: expected application/x-www-form-urlencoded",
                 note, notelen);
  int v =
      rb_slack_verify(sl->secret, ts, sig, body ? body : "", len, (int64_t)time(NULL));
  if (v == RB_SLACK_BAD_SIGNATURE)
    return reply(code, 401, "missing or wrong X-Slack-Signature", note, notelen);
  *authed = 1;
  size_t plen = 0;
  char *raw = form_value(body ? body : "", len, "payload", &plen);
  json_t *p = raw ? json_loadb(raw, plen, 0, NULL) : NULL;
  free(raw);
  click c;
  memset(&c, 0, sizeof c);
  const char *bad = p ? parse_click(p, &c) : "body: expected payload=JSON";
  json_t *out = bad ? reply(code, 400, bad, note, notelen)
                    : checked(sl, &c, v, sig, code, note, notelen);
  json_decref(p);
  return out;
}
