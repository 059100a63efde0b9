/* notify.c: the alert listener's own posts to a [notify.NAME] channel
 * (Slack incoming webhook or generic JSON webhook) when an alert's run can
 * not start, so the people on call learn that no automation is running. */
#include "stdlib/serve/notify.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

struct rb_serve_notify {
  char section[160];
  int slack;
  char *url; /* a secret: registered with the redactor by rb_config_secret */
};

typedef struct {
  const char *want;
  int found;
} find_ctx;

static void find_section(const char *section, void *arg)
{
  find_ctx *f = arg;
  f->found |= strcmp(section, f->want) == 0;
}

rb_serve_notify *rb_serve_notify_new(const rb_config *cfg, int *bad, char *err,
                                     size_t errlen)
{
  *bad = 0;
  const char *name = rb_host_config_string(cfg, "serve", "notify");
  if (name == NULL)
    return NULL;
  rb_serve_notify *n = calloc(1, sizeof *n);
  if (n == NULL) {
    *bad = rb_err(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(n->section, sizeof n->section, "notify.%s", name);
  find_ctx f = {n->section, 0};
  rb_host_config_each_section(cfg, "notify.", find_section, &f);
  const char *type = rb_host_config_string(cfg, n->section, "type");
  int absent = 0;
  if (!f.found) {
    rb_err(err, errlen, "[serve] notify = \"%s\": there is no [%s] section", name,
           n->section);
  } else if (type && strcmp(type, "slack") != 0 && strcmp(type, "webhook") != 0) {
    rb_err(err, errlen, "[%s] type: expected \"slack\" or \"webhook\"", n->section);
  } else if ((n->url = rb_host_config_secret(cfg, n->section, "url", &absent, err,
                                             errlen)) == NULL) {
    if (absent)
      rb_err(err, errlen, "[%s]: no url_env or url_file", n->section);
  } else {
    n->slack = type && strcmp(type, "slack") == 0;
    return n;
  }
  *bad = 1;
  rb_serve_notify_free(n);
  return NULL;
}

void rb_serve_notify_free(rb_serve_notify *n)
{
  if (n == NULL)
    return;
  if (n->url) {
    explicit_bzero(n->url, strlen(n->url));
    free(n->url);
  }
  free(n);
}

const char *rb_serve_notify_name(const rb_serve_notify *n)
{
  return n ? n->section : NULL;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
  (void)p;
  (void)arg;
  return size * n;
}

/* The JSON body: Slack wants {"text"}; a generic webhook gets the fields. */
static char *body_for(const rb_serve_notify *n, const json_t *ev, const char *incident)
{
  const json_t *d = json_object_get(ev, "detail");
  const char *book = json_string_value(json_object_get(ev, "runbook"));
  const char *actor = json_string_value(json_object_get(ev, "actor"));
  const char *msg = json_string_value(json_object_get(d, "error"));
  const char *event = json_string_value(json_object_get(ev, "event"));
  event = event ? event : "?";
  const char *run = json_string_value(json_object_get(d, "run"));
  json_t *j;
  char text[1200];
  if (n->slack && strcmp(event, "run_needs_human") == 0) {
    snprintf(text, sizeof text,
             "runbook serve: run %.100s of runbook %.128s for incident %.100s, taken "
             "over from a dead replica, stopped and waits for a human: %.600s",
             run ? run : "?", book ? book : "?", incident, msg ? msg : "?");
    j = json_pack("{s:s}", "text", text);
  } else if (n->slack) {
    snprintf(text, sizeof text,
             "runbook serve: %.200s did not start runbook %.128s for incident "
             "%.100s: %.600s",
             actor ? actor : "an alert", book ? book : "?", incident, msg ? msg : "?");
    j = json_pack("{s:s}", "text", text);
  } else {
    j = json_pack("{s:s, s:s, s:O?, s:O?}", "event", event, "incident", incident,
                  "runbook", json_object_get(ev, "runbook"), "actor",
                  json_object_get(ev, "actor"));
    json_object_update(j, (json_t *)d);
  }
  char *txt = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return txt;
}

int rb_serve_notify_post(const rb_serve_notify *n, const json_t *ev, const char *incident,
                         char *err, size_t errlen)
{
  char *body = body_for(n, ev, incident);
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  int rc = -1;
  if (body == NULL || c == NULL || h == NULL) {
    rb_err(err, errlen, "out of memory");
    goto out;
  }
  curl_easy_setopt(c, CURLOPT_URL, n->url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK)
    rb_err(err, errlen, "[%s]: %s", n->section, curl_easy_strerror(cc));
  else if (status < 200 || status > 299)
    rb_err(err, errlen, "[%s]: answered HTTP %ld", n->section, status);
  else
    rc = 0;
out:
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(body);
  return rc;
}
