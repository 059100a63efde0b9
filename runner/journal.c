/* journal.c: the timeline read back as a run journal, for `runbook resume`. */
#include "runner/journal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/timeline.h"
#include "stdlib/policy.h"
#include "runner/base/util.h"

typedef struct {
  const char *run;
  rb_journal *j;
  int seen;
} walk_ctx;

static const char *str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static void copy(char *dst, size_t len, const char *src)
{
  snprintf(dst, len, "%s", src);
}

static void on_run_event(rb_journal *j, const json_t *ev, const char *event,
                         const json_t *d)
{
  if (strcmp(event, "started") == 0) {
    if (json_object_get(d, "file"))
      copy(j->file, sizeof j->file, str(d, "file"));
    copy(j->runbook, sizeof j->runbook, str(ev, "runbook"));
    copy(j->mode, sizeof j->mode, str(ev, "mode"));
    copy(j->actor, sizeof j->actor, str(ev, "actor"));
    if (json_is_object(json_object_get(d, "params"))) {
      json_decref(j->params);
      j->params = json_deep_copy(json_object_get(d, "params"));
    }
    j->ended = 0;
    j->outcome[0] = '\0';
  } else if (strcmp(event, "finished") == 0) {
    j->ended = 1;
    copy(j->outcome, sizeof j->outcome, str(d, "outcome"));
  }
  /* A run-level "failed" (crash, watchdog, an unhandled step failure)
   * leaves the run resumable. */
}

/* Marks the latest open intent of the same operation as ended: a step's
 * operations run one after the other, so that is the one that ended. */
static void op_ended(json_t *ops, const json_t *d, const char *event)
{
  const char *op = str(d, "op");
  for (size_t i = json_array_size(ops); i > 0; i--) {
    json_t *o = json_array_get(ops, i - 1);
    if (strcmp(str(o, "op"), op) == 0 && json_object_get(o, "ended") == NULL) {
      json_object_set_new(o, "ended", json_string(event));
      if (json_object_get(d, "status"))
        json_object_set(o, "status", json_object_get(d, "status"));
      if (json_object_get(d, "exit_code"))
        json_object_set(o, "exit_code", json_object_get(d, "exit_code"));
      return;
    }
  }
}

static void on_step_event(rb_journal *j, const char *step, const char *kind,
                          const char *event, const json_t *d)
{
  int is_op = json_object_get(d, "op") != NULL;
  if (is_op) {
    if (j->in_doubt_ops && strcmp(event, "started") == 0)
      json_array_append_new(j->in_doubt_ops, json_deep_copy(d));
    else if (j->in_doubt_ops &&
             (strcmp(event, "finished") == 0 || strcmp(event, "failed") == 0))
      op_ended(j->in_doubt_ops, d, event);
    return;
  }
  if (json_is_object(json_object_get(d, "ctx"))) {
    json_decref(j->ctx);
    j->ctx = json_deep_copy(json_object_get(d, "ctx"));
  }
  if (strcmp(event, "started") == 0) {
    copy(j->last, sizeof j->last, step);
    copy(j->last_kind, sizeof j->last_kind, kind);
    json_array_append_new(j->path, json_string(step));
    j->in_doubt = rb_step_kind_parse(kind) == RB_STEP_ACTION;
    j->failed = 0;
    j->next[0] = '\0';
    json_decref(j->in_doubt_ops);
    j->in_doubt_ops = json_array();
  } else if (strcmp(event, "finished") == 0 || strcmp(event, "decision") == 0) {
    j->in_doubt = 0;
    const char *next = json_object_get(d, "branch") ? str(d, "branch") : str(d, "next");
    copy(j->next, sizeof j->next, next);
    if (rb_step_kind_is_terminal(rb_step_kind_parse(kind))) {
      /* The outcome step ran but the run's own end was not recorded:
       * resuming there records it. */
      copy(j->last, sizeof j->last, step);
      copy(j->last_kind, sizeof j->last_kind, kind);
      copy(j->next, sizeof j->next, step);
    }
  } else if (strcmp(event, "failed") == 0) {
    const char *on_error = str(d, "on_error");
    if (on_error[0]) {
      j->in_doubt = 0;
      copy(j->next, sizeof j->next, on_error);
    } else {
      j->failed = 1;
    }
  }
}

static int on_event(json_t *ev, void *arg)
{
  walk_ctx *w = arg;
  if (strcmp(str(ev, "run"), w->run) != 0)
    return 0;
  w->seen++;
  const json_t *d = json_object_get(ev, "detail");
  const char *event = str(ev, "event");
  if (strcmp(str(ev, "kind"), "run") == 0 || json_is_null(json_object_get(ev, "step")))
    on_run_event(w->j, ev, event, d);
  else
    on_step_event(w->j, str(ev, "step"), str(ev, "kind"), event, d);
  return 0;
}

int rb_journal_load(const char *path, const char *run_id, rb_journal *j, char *err,
                    size_t errlen)
{
  memset(j, 0, sizeof *j);
  j->path = json_array();
  walk_ctx w = {run_id, j, 0};
  if (rb_timeline_read(path, on_event, &w, NULL, err, errlen) != 0) {
    rb_journal_clear(j);
    return -1;
  }
  if (w.seen == 0) {
    rb_journal_clear(j);
    return rb_err(err, errlen, "%s has no events of run %s", path, run_id);
  }
  if (j->file[0] == '\0') {
    rb_journal_clear(j);
    return rb_err(err, errlen,
                  "run %s: its started event (with the runbook file) is missing", run_id);
  }
  return 0;
}

void rb_journal_clear(rb_journal *j)
{
  json_decref(j->params);
  json_decref(j->ctx);
  json_decref(j->path);
  json_decref(j->in_doubt_ops);
  j->params = j->ctx = j->path = j->in_doubt_ops = NULL;
}

int rb_journal_find_incident(const char *state_dir, const char *run_id, char *out,
                             size_t len, char *err, size_t errlen)
{
  char dir[4096], needle[160];
  if (rb_fmt(dir, sizeof dir, "%s/incidents", state_dir) ||
      rb_fmt(needle, sizeof needle, "\"run\":\"%s\"", run_id))
    return rb_err(err, errlen, "run id or state dir too long");
  DIR *d = opendir(dir);
  if (d == NULL)
    return rb_err(err, errlen, "no timeline under %s holds run %s", dir, run_id);
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n <= 6 || strcmp(e->d_name + n - 6, ".jsonl") != 0)
      continue;
    char path[4400];
    if (rb_fmt(path, sizeof path, "%s/%s", dir, e->d_name))
      continue;
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
      if (strstr(line, needle)) {
        found = rb_fmt(out, len, "%.*s", (int)(n - 6), e->d_name) == 0;
        break;
      }
    }
    free(line);
    fclose(f);
  }
  closedir(d);
  return found ? 0
               : rb_err(err, errlen, "no timeline under %s holds run %s", dir, run_id);
}
