/* slack_post.c: the Slack side of approvals the listener sends: each pending
 * gate as a Block Kit message with buttons, then its progress and outcome. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "runner/base/util.h"
#include "stdlib/serve/slack_int.h"

#define ANSWER_MAX (64 * 1024)
#define RETRY_MS 15000
#define POSTING_STALE_MS 60000

/* -- the message ----------------------------------------------------------- */

/* Appends s to b with Slack's three mrkdwn escapes, cut at max bytes. */
static void esc(rb_buf *b, const char *s, size_t max)
{
  size_t n = 0;
  for (; s && *s && n < max; s++, n++) {
    if (*s == '&')
      rb_buf_add(b, "&amp;", 5);
    else if (*s == '<')
      rb_buf_add(b, "&lt;", 4);
    else if (*s == '>')
      rb_buf_add(b, "&gt;", 4);
    else
      rb_buf_add(b, s, 1);
  }
  if (s && *s)
    rb_buf_add(b, "...", 3);
}

static void text(rb_buf *b, const char *s)
{
  rb_buf_add(b, s, strlen(s));
}

static const char *str(const json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "?";
}

static void section(json_t *blocks, rb_buf *b)
{
  json_array_append_new(blocks,
                        json_pack("{s:s, s:{s:s, s:s}}", "type", "section", "text",
                                  "type", "mrkdwn", "text", rb_buf_str(b)));
  rb_buf_free(b);
}

/* What the gated action would send, one compact line per write. */
static void would_run(json_t *blocks, const json_t *ops)
{
  rb_buf b;
  rb_buf_init(&b, 4096);
  size_t i;
  json_t *op;
  text(&b, "Would run:\n```");
  json_array_foreach(ops, i, op)
  {
    char *line = json_dumps(op, JSON_COMPACT);
    if (b.len > 2400) {
      text(&b, "\n(more on the run's timeline)");
      free(line);
      break;
    }
    esc(&b, line ? line : "?", 300);
    text(&b, "\n");
    free(line);
  }
  text(&b, "```");
  if (json_array_size(ops) > 0)
    section(blocks, &b);
  else
    rb_buf_free(&b);
}

static void outcome(rb_buf *b, const json_t *dec)
{
  int yes = json_is_true(json_object_get(dec, "approved"));
  text(b, yes ? "*Approved* by " : "*Denied* by ");
  esc(b, str(dec, "by"), 300);
  text(b, " (");
  esc(b, str(dec, "via"), 40);
  text(b, ")");
  const char *c = json_string_value(json_object_get(dec, "comment"));
  if (!yes && c && *c) {
    text(b, ": ");
    esc(b, c, 300);
  }
}

static void needs(rb_buf *b, const json_t *req, const json_t *pol, const char *word)
{
  text(b, "Needs ");
  esc(b, str(req, "needs"), 600);
  text(b, "; denied unless decided by ");
  esc(b, str(req, "expires"), 40);
  if (word) {
    text(b, ".\nApproving needs the word `");
    esc(b, word, 64);
    text(b, "` (");
    esc(b, str(pol, "confirm_by"), 200);
    text(b, "): type it in the box, then Approve");
  }
}

/* The confirm box and the two buttons of a pending gate. */
static void buttons(json_t *blocks, const json_t *req, const char *word)
{
  char value[300];
  snprintf(value, sizeof value, "%s/%s", str(req, "run"), str(req, "step"));
  if (word) {
    char label[160];
    snprintf(label, sizeof label, "Type %s to approve", word);
    json_array_append_new(blocks, json_pack("{s:s, s:s, s:b, s:{s:s, s:s}, s:{s:s, s:s}}",
                                            "type", "input", "block_id", "rb_confirm",
                                            "optional", 1, "label", "type", "plain_text",
                                            "text", label, "element", "type",
                                            "plain_text_input", "action_id", "word"));
  }
  json_array_append_new(
      blocks, json_pack("{s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:{s:s, s:s}},"
                        "{s:s, s:s, s:s, s:s, s:{s:s, s:s}}]}",
                        "type", "actions", "block_id", "rb_gate", "elements", "type",
                        "button", "action_id", "rb_approve", "style", "primary", "value",
                        value, "text", "type", "plain_text", "text", "Approve", "type",
                        "button", "action_id", "rb_deny", "style", "danger", "value",
                        value, "text", "type", "plain_text", "text", "Deny"));
}

json_t *rb_slack_message(const json_t *req)
{
  const json_t *dec = json_object_get(req, "decision");
  const json_t *pol = json_object_get(req, "policy");
  const char *word = json_string_value(json_object_get(pol, "confirm"));
  json_t *blocks = json_array();
  rb_buf b;
  rb_buf_init(&b, 8192);
  text(&b, dec ? "*Approval*: " : "*Approval needed*: ");
  esc(&b, str(req, "question"), 600);
  static const char *const ids[][2] = {{"runbook", "\nrunbook `"},
                                       {"incident", "` incident `"},
                                       {"run", "` run `"},
                                       {"step", "` step `"}};
  for (size_t i = 0; i < 4; i++) {
    text(&b, ids[i][1]);
    esc(&b, str(req, ids[i][0]), 128);
  }
  text(&b, "`");
  section(blocks, &b);
  rb_buf_init(&b, 8192);
  if (dec)
    outcome(&b, dec);
  else
    needs(&b, req, pol, word);
  section(blocks, &b);
  would_run(blocks, json_object_get(req, "would_run"));
  if (!dec)
    buttons(blocks, req, word);
  /* the notification's text is mrkdwn too: escaped as the blocks are */
  rb_buf_init(&b, 2048);
  text(&b, !dec                                             ? "Approval needed: "
           : json_is_true(json_object_get(dec, "approved")) ? "Approved: "
                                                            : "Denied: ");
  esc(&b, str(req, "question"), 600);
  text(&b, " (run ");
  esc(&b, str(req, "run"), 128);
  text(&b, ", step ");
  esc(&b, str(req, "step"), 128);
  text(&b, ")");
  json_t *m = json_pack("{s:s, s:o}", "text", rb_buf_str(&b), "blocks", blocks);
  rb_buf_free(&b);
  return m;
}

/* -- HTTP ------------------------------------------------------------------ */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
  rb_buf *b = arg;
  if (b->len + size * n <= ANSWER_MAX)
    rb_buf_add(b, p, size * n);
  return size * n;
}

/* POSTs body to url as JSON, with the bot token when bearer. Returns the
 * answer's JSON (or an empty object) for a 2xx, else NULL with err. */
static json_t *post(const rb_slack *sl, const char *url, int bearer, const json_t *body,
                    char *err, size_t errlen)
{
  char auth[1200] = "";
  /* the listener's own secrets and URL credentials never go to Slack */
  char *raw = json_dumps(body, JSON_COMPACT);
  char *data = raw ? rb_host_redact(raw) : NULL;
  free(raw);
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json; "
                                                 "charset=utf-8");
  if (bearer && snprintf(auth, sizeof auth, "Authorization: Bearer %s", sl->bot_token) <
                    (int)sizeof auth)
    h = curl_slist_append(h, auth);
  explicit_bzero(auth, sizeof auth);
  rb_buf ans;
  rb_buf_init(&ans, ANSWER_MAX + 1);
  json_t *out = NULL;
  if (data == NULL || c == NULL || h == NULL) {
    rb_err(err, errlen, "out of memory");
    goto out;
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK)
    rb_err(err, errlen, "%s", curl_easy_strerror(cc));
  else if (status < 200 || status > 299)
    rb_err(err, errlen, "answered HTTP %ld", status);
  else if ((out = json_loadb(rb_buf_str(&ans), ans.len, 0, NULL)) == NULL)
    out = json_object(); /* a response_url answers "ok" as text */
out:
  for (struct curl_slist *p = h; p; p = p->next)
    explicit_bzero(p->data, strlen(p->data));
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  rb_buf_free(&ans);
  free(data);
  return out;
}

/* A Web API method (chat.postMessage, chat.update): its answer when
 * "ok" is true, else NULL with Slack's error. */
static json_t *api(const rb_slack *sl, const char *method, const json_t *body, char *err,
                   size_t errlen)
{
  char url[700];
  snprintf(url, sizeof url, "%s/%s", sl->api, method);
  json_t *a = post(sl, url, 1, body, err, errlen);
  if (a && !json_is_true(json_object_get(a, "ok"))) {
    rb_err(err, errlen, "%s: %s", method,
           json_string_value(json_object_get(a, "error"))
               ? json_string_value(json_object_get(a, "error"))
               : "not ok");
    json_decref(a);
    return NULL;
  }
  return a;
}

int rb_slack_url_allowed(const rb_slack *sl, const char *url)
{
  static const char hooks[] = "https://hooks.slack.com/";
  size_t n = strlen(sl->origin);
  return strncmp(url, hooks, sizeof hooks - 1) == 0 ||
         (strncmp(url, sl->origin, n) == 0 && url[n] == '/');
}

void rb_slack_queue(rb_slack *sl, const char *url, json_t *body)
{
  pthread_mutex_lock(&sl->mu);
  json_array_append_new(sl->outbox, json_pack("{s:s, s:o}", "url", url, "body", body));
  pthread_cond_signal(&sl->cv);
  pthread_mutex_unlock(&sl->mu);
}

static void drain_outbox(rb_slack *sl)
{
  pthread_mutex_lock(&sl->mu);
  json_t *box = sl->outbox;
  sl->outbox = json_array();
  pthread_mutex_unlock(&sl->mu);
  size_t i;
  json_t *m;
  json_array_foreach(box, i, m)
  {
    char err[512];
    json_t *a = post(sl, str(m, "url"), 0, json_object_get(m, "body"), err, sizeof err);
    if (a == NULL)
      fprintf(stderr, "runbook serve: slack: response_url: %s\n", err);
    json_decref(a);
  }
  json_decref(box);
}

/* -- marks: which gates were posted, under dir/posted/RUN/STEP.json ---------- */

static int mark_path(const rb_slack *sl, const char *run, const char *step,
                     const char *suffix, char *out, size_t len)
{
  return rb_fmt(out, len, "%s/posted/%s/%s%s", sl->dir, run, step, suffix);
}

json_t *rb_slack_mark_get(const rb_slack *sl, const char *run, const char *step)
{
  return rb_slack_mark_read(sl, run, step, ".json");
}

json_t *rb_slack_mark_read(const rb_slack *sl, const char *run, const char *step,
                           const char *suffix)
{
  char p[4800];
  if (mark_path(sl, run, step, suffix, p, sizeof p) != 0)
    return NULL;
  json_t *m = json_load_file(p, 0, NULL);
  if (!json_is_object(m)) {
    json_decref(m);
    return NULL;
  }
  return m;
}

int rb_slack_mark_put(const rb_slack *sl, const char *run, const char *step,
                      const json_t *mark)
{
  char p[4800], tmp[4900];
  if (mark_path(sl, run, step, ".json", p, sizeof p) != 0 ||
      rb_fmt(tmp, sizeof tmp, "%s.tmp.%d", p, (int)getpid()) != 0)
    return -1;
  if (json_dump_file(mark, tmp, JSON_COMPACT) != 0 || rename(tmp, p) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* Takes the gate for posting: creates its mark exclusively (a second
 * listener on the state dir then leaves it), or takes over a claim left by
 * a listener that died while posting. 1 when this one posts. */
static int claim(const rb_slack *sl, const char *run, const char *step)
{
  char dir[4600], p[4800], done[4800];
  struct stat st;
  if (rb_fmt(dir, sizeof dir, "%s/posted/%s", sl->dir, run) != 0 ||
      mark_path(sl, run, step, ".json", p, sizeof p) != 0 ||
      mark_path(sl, run, step, ".done.json", done, sizeof done) != 0 ||
      stat(done, &st) == 0 || rb_mkdirs(dir) != 0)
    return 0;
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST && stat(p, &st) == 0 && st.st_size <= 2 &&
      (int64_t)st.st_mtime * 1000 + POSTING_STALE_MS < rb_now_wall_ms())
    fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC); /* a dead claim */
  if (fd < 0)
    return 0;
  int ok = write(fd, "{}", 2) == 2;
  close(fd);
  return ok;
}

static void unclaim(const rb_slack *sl, const char *run, const char *step)
{
  char p[4800];
  if (mark_path(sl, run, step, ".json", p, sizeof p) == 0)
    unlink(p);
}

/* The gate is over for Slack: its mark is kept as .done.json. */
static void mark_done(const rb_slack *sl, const char *run, const char *step)
{
  char p[4800], done[4800];
  if (mark_path(sl, run, step, ".json", p, sizeof p) == 0 &&
      mark_path(sl, run, step, ".done.json", done, sizeof done) == 0)
    rename(p, done);
}

/* -- the thread ------------------------------------------------------------ */

/* 1 when the request expired more than grace_ms ago. */
static int expired(const json_t *req, int64_t grace_ms)
{
  char now[40];
  const char *exp = json_string_value(json_object_get(req, "expires"));
  rb_format_ts(rb_now_wall_ms() - grace_ms, now, sizeof now);
  return exp != NULL && strcmp(exp, now) < 0; /* the same ISO 8601 form */
}

static void post_one(rb_slack *sl, const json_t *req)
{
  const char *run = str(req, "run"), *step = str(req, "step");
  char key[300], err[512];
  snprintf(key, sizeof key, "%s/%s", run, step);
  json_t *when = json_object_get(sl->retry, key);
  if ((when && json_integer_value(when) > rb_now_wall_ms()) || !claim(sl, run, step))
    return;
  json_t *msg = rb_slack_message(req);
  json_object_set_new(msg, "channel", json_string(sl->channel));
  json_t *a = api(sl, "chat.postMessage", msg, err, sizeof err);
  json_decref(msg);
  if (a == NULL || !json_is_string(json_object_get(a, "ts"))) {
    fprintf(stderr, "runbook serve: slack: cannot post the request of %s: %s\n", key,
            a ? "no ts in the answer" : err);
    unclaim(sl, run, step);
    json_object_set_new(sl->retry, key, json_integer(rb_now_wall_ms() + RETRY_MS));
    json_decref(a);
    return;
  }
  json_object_del(sl->retry, key);
  /* Slack answers with the channel's id, which the clicks then carry. */
  const char *ch = json_string_value(json_object_get(a, "channel"));
  json_t *mark =
      json_pack("{s:s, s:s, s:s, s:O, s:I}", "run", run, "step", step, "channel",
                ch ? ch : sl->channel, "ts", json_object_get(a, "ts"), "answers",
                (json_int_t)json_array_size(json_object_get(req, "answered")));
  pthread_mutex_lock(&sl->mu);
  if (rb_slack_mark_put(sl, run, step, mark) != 0)
    fprintf(stderr, "runbook serve: slack: cannot record the post of %s\n", key);
  pthread_mutex_unlock(&sl->mu);
  fprintf(stderr, "runbook serve: slack: posted the request of %s to %s\n", key,
          sl->channel);
  json_decref(mark);
  json_decref(a);
}

/* New gates, looked for once a second: the scan reads every run's
 * approvals directory. */
static void post_new(rb_slack *sl)
{
  char err[512];
  if (rb_now_wall_ms() - sl->scanned_at < 1000)
    return;
  sl->scanned_at = rb_now_wall_ms();
  json_t *pending = rb_host_approval_pending(sl->state_dir, err, sizeof err);
  size_t i;
  json_t *r;
  json_array_foreach(pending, i, r)
  {
    if (!expired(r, 0))
      post_one(sl, r);
  }
  json_decref(pending);
}

/* Replaces the posted message: through the last click's response_url while
 * Slack still takes it (5 uses, 30 minutes), else with chat.update. */
static void update(rb_slack *sl, const char *run, const char *step, const json_t *mark,
                   const json_t *req)
{
  json_t *msg = rb_slack_message(req), *a;
  const char *url = json_string_value(json_object_get(mark, "response_url"));
  json_int_t at = json_integer_value(json_object_get(mark, "response_at"));
  json_int_t uses = json_integer_value(json_object_get(mark, "response_uses"));
  char err[512];
  int via_url = url && uses < RB_SLACK_RESPONSE_USES &&
                rb_now_wall_ms() - at < RB_SLACK_RESPONSE_MS;
  if (via_url) {
    json_object_set_new(msg, "replace_original", json_true());
    a = post(sl, url, 0, msg, err, sizeof err);
  } else {
    json_object_set(msg, "channel", json_object_get(mark, "channel"));
    json_object_set(msg, "ts", json_object_get(mark, "ts"));
    a = api(sl, "chat.update", msg, err, sizeof err);
  }
  if (a == NULL)
    fprintf(stderr, "runbook serve: slack: cannot update the message of %s/%s: %s\n", run,
            step, err);
  json_decref(a);
  json_decref(msg);
  pthread_mutex_lock(&sl->mu);
  json_t *now = rb_slack_mark_get(sl, run, step);
  if (now) {
    if (via_url && json_equal(json_object_get(now, "response_url"),
                              json_object_get(mark, "response_url")))
      json_object_set_new(now, "response_uses", json_integer(uses + 1));
    json_object_set(now, "answers", json_object_get(mark, "answers"));
    rb_slack_mark_put(sl, run, step, now);
  }
  pthread_mutex_unlock(&sl->mu);
  json_decref(now);
}

/* One posted gate: tells Slack about new answers and the decision. A gate
 * whose run went away without deciding is closed 30 s after it expired. */
static void follow_one(rb_slack *sl, const char *run, const char *step)
{
  char err[512];
  pthread_mutex_lock(&sl->mu);
  json_t *mark = rb_slack_mark_get(sl, run, step);
  pthread_mutex_unlock(&sl->mu);
  if (mark == NULL || json_object_get(mark, "ts") == NULL) {
    json_decref(mark); /* still being posted */
    return;
  }
  json_t *req = rb_host_approval_status(sl->state_dir, run, step, err, sizeof err);
  if (req == NULL) {
    mark_done(sl, run, step);
    json_decref(mark);
    return;
  }
  if (!json_object_get(req, "decision") && expired(req, 30000))
    json_object_set_new(req, "decision",
                        json_pack("{s:b, s:s, s:s, s:s}", "approved", 0, "by", "nobody",
                                  "via", "expired", "comment",
                                  "no decision was recorded before the deadline"));
  json_t *dec = json_object_get(req, "decision");
  json_int_t n = (json_int_t)json_array_size(json_object_get(req, "answered"));
  if (dec || n != json_integer_value(json_object_get(mark, "answers"))) {
    json_object_set_new(mark, "answers", json_integer(n));
    update(sl, run, step, mark, req);
  }
  if (dec)
    mark_done(sl, run, step);
  json_decref(req);
  json_decref(mark);
}

static int ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && strcmp(s + n - k, suffix) == 0;
}

static void follow_posted(rb_slack *sl)
{
  char base[4400];
  if (rb_fmt(base, sizeof base, "%s/posted", sl->dir) != 0)
    return;
  DIR *d = opendir(base);
  struct dirent *run;
  while (d && (run = readdir(d)) != NULL) {
    char rdir[4700];
    if (run->d_name[0] == '.' || rb_fmt(rdir, sizeof rdir, "%s/%s", base, run->d_name))
      continue;
    DIR *rd = opendir(rdir);
    struct dirent *f;
    while (rd && (f = readdir(rd)) != NULL) {
      char step[300];
      if (!ends_with(f->d_name, ".json") || ends_with(f->d_name, ".done.json") ||
          strstr(f->d_name, ".tmp.") ||
          rb_fmt(step, sizeof step, "%.*s", (int)(strlen(f->d_name) - 5), f->d_name))
        continue;
      follow_one(sl, run->d_name, step);
    }
    if (rd)
      closedir(rd);
  }
  if (d)
    closedir(d);
}

/* Forgets signatures older than the window could let back in. */
static void prune_seen(rb_slack *sl)
{
  char base[4400];
  if (rb_now_wall_ms() - sl->pruned_at < 60000 ||
      rb_fmt(base, sizeof base, "%s/seen", sl->dir) != 0)
    return;
  sl->pruned_at = rb_now_wall_ms();
  DIR *d = opendir(base);
  struct dirent *f;
  while (d && (f = readdir(d)) != NULL) {
    char p[4700];
    struct stat st;
    if (f->d_name[0] != '.' && rb_fmt(p, sizeof p, "%s/%s", base, f->d_name) == 0 &&
        stat(p, &st) == 0 && st.st_mtime + RB_SLACK_SEEN_KEEP_S < time(NULL))
      unlink(p);
  }
  if (d)
    closedir(d);
}

void *rb_slack_thread(void *arg)
{
  rb_slack *sl = arg;
  pthread_mutex_lock(&sl->mu);
  while (!sl->stop) {
    pthread_mutex_unlock(&sl->mu);
    drain_outbox(sl);
    post_new(sl);
    follow_posted(sl);
    prune_seen(sl);
    pthread_mutex_lock(&sl->mu);
    if (sl->stop || json_array_size(sl->outbox) > 0)
      continue;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 250 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&sl->cv, &sl->mu, &ts);
  }
  pthread_mutex_unlock(&sl->mu);
  drain_outbox(sl); /* what the last clicks were told */
  return NULL;
}
