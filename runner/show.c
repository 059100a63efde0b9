/* show.c: `runbook check`, `show` and the list: a runbook loaded and
 * validated without running, and its readable outline. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/escalation.h"
#include "runner/exec.h"
#include "runner/journal.h"
#include "runner/render.h"
#include "runner/base/util.h"

static void quiet_print(void *arg, const char *text, int is_warning)
{
  (void)arg;
  fprintf(stderr, "%s%s\n", is_warning ? "warning: " : "", text);
}

static int null_emit(rb_host *h, const char *event, json_t *detail)
{
  (void)h;
  (void)event;
  json_decref(detail);
  return 0;
}

/* The text picture's preamble: name, title, description, parameters. */
static void header(const rb_model *m, FILE *out)
{
  fprintf(out, "%s: %s\n", m->name, m->title);
  if (m->description)
    fprintf(out, "  %s\n", m->description);
  for (size_t i = 0; i < m->nparams; i++)
    fprintf(out, "  param %s%s%s%s\n", m->params[i].name, m->params[i].def ? " = " : "",
            m->params[i].def ? m->params[i].def : "",
            m->params[i].is_required ? " (required)" : "");
  fputc('\n', out);
}

int rb_run_check(const char *path, const rb_config *cfg, int show, FILE *out,
                 int report_fd)
{
  rb_host host;
  memset(&host, 0, sizeof host);
  host.config = cfg;
  host.emit = null_emit;
  host.mode = RB_MODE_DRY_RUN;
  sb_state *sb = NULL;
  rb_model *m = NULL;
  int code = rb_runbook_load(path, cfg, &host, quiet_print, NULL, &sb, &m, report_fd);
  if (code != RB_EXIT_OK)
    return code;
  if (!show && rb_escalation_check_targets(sb, m, cfg, stderr, out) > 0) {
    code = RB_EXIT_INVALID;
  } else if (!show) {
    fprintf(out, "%s: ok (%s, %zu steps)\n", path, m->name, m->nsteps);
  } else {
    header(m, out);
    rb_render(m, RB_SHOW_TEXT, NULL, out);
  }
  rb_model_free(m);
  sb_free(sb);
  return code;
}

int rb_run_describe(const char *path, const rb_config *cfg, char *name, size_t nlen,
                    char *title, size_t tlen, char *err, size_t errlen, int rfd)
{
  rb_host host;
  memset(&host, 0, sizeof host);
  host.config = cfg;
  host.emit = null_emit;
  sb_state *sb = NULL;
  rb_model *m = NULL;
  char e[4096];
  if (rb_runbook_open(path, cfg, &host, quiet_print, NULL, rfd, &sb, &m, e, sizeof e) !=
      RB_EXIT_OK) {
    e[strcspn(e, "\n")] = '\0'; /* the first problem is enough for a list */
    return rb_err(err, errlen, "%s", e);
  }
  snprintf(name, nlen, "%s", m->name ? m->name : "?");
  snprintf(title, tlen, "%s", m->title ? m->title : "");
  rb_model_free(m);
  sb_free(sb);
  return 0;
}

/* Loads run's journal into j and fills w from it (path, where it stopped,
 * how it ended). Returns 0, or -1 with err. */
static int load_walk(const char *state_dir, const char *run, rb_journal *j, rb_walk *w,
                     char *err, size_t errlen)
{
  char incident[256], tl[4400];
  if (rb_journal_find_incident(state_dir, run, incident, sizeof incident, err, errlen) !=
      0)
    return -1;
  if (rb_incident_path(state_dir, incident, tl, sizeof tl) != 0)
    return rb_err(err, errlen, "run %s: incident '%s' has no valid path", run, incident);
  if (rb_journal_load(tl, run, j, err, errlen) != 0)
    return -1;
  /* A terminal step records no "started": it is where the run ended. */
  size_t n = json_array_size(j->path);
  if (j->last[0] &&
      (n == 0 || strcmp(json_string_value(json_array_get(j->path, n - 1)), j->last) != 0))
    json_array_append_new(j->path, json_string(j->last));
  w->run = run;
  w->path = j->path;
  w->stopped = j->last;
  w->outcome = j->ended ? j->outcome : j->failed ? "failed" : "";
  return 0;
}

int rb_run_show(const char *path, const rb_config *cfg, rb_show_format f,
                const char *state_dir, const char *run, FILE *out, int report_fd)
{
  rb_host host;
  memset(&host, 0, sizeof host);
  host.config = cfg;
  host.emit = null_emit;
  host.mode = RB_MODE_DRY_RUN;
  sb_state *sb = NULL;
  rb_model *m = NULL;
  rb_journal j;
  memset(&j, 0, sizeof j);
  rb_walk w = {NULL, NULL, NULL, NULL};
  char err[1024];
  int code = rb_runbook_load(path, cfg, &host, quiet_print, NULL, &sb, &m, report_fd);
  if (code != RB_EXIT_OK)
    goto out;
  if (run && load_walk(state_dir, run, &j, &w, err, sizeof err) != 0) {
    fprintf(stderr, "runbook: %s\n", err);
    code = RB_EXIT_FAILED;
    goto out;
  }
  if (run && j.runbook[0] && strcmp(j.runbook, m->name) != 0) {
    fprintf(stderr, "runbook: run %s is of runbook '%s', not '%s'\n", run, j.runbook,
            m->name);
    code = RB_EXIT_USAGE;
    goto out;
  }
  if (f == RB_SHOW_TEXT)
    header(m, out);
  rb_render(m, f, run ? &w : NULL, out);
out:
  rb_journal_clear(&j);
  rb_model_free(m);
  sb_free(sb);
  return code;
}
