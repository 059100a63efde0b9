/* show.c: `runbook check`, `show` and the list: a runbook loaded and
 * validated without running, and its readable outline. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/exec.h"
#include "runner/util.h"

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

static void outline(const rb_model *m, const rb_step *s, const char *label, int depth,
                    unsigned char *seen, FILE *out)
{
  char indent[256];
  int n = depth * 3 < (int)sizeof indent - 1 ? depth * 3 : (int)sizeof indent - 1;
  memset(indent, ' ', (size_t)n);
  indent[n] = '\0';
  size_t idx = (size_t)(s - m->steps);
  const char *extra = s->approval ? ", approval" : "";
  if (seen[idx]) {
    fprintf(out, "%s%s%s (see above)\n", indent, label, s->id);
    return;
  }
  seen[idx] = 1;
  fprintf(out, "%s%s%s [%s%s] %s\n", indent, label, s->id, rb_step_kind_name(s->kind),
          extra, s->title ? s->title : "");
  if (s->next) {
    const rb_step *n2 = rb_model_find(m, s->next);
    if (n2)
      outline(m, n2, "-> ", depth + 1, seen, out);
  }
  for (size_t i = 0; i < s->nbranches; i++) {
    const rb_step *b = rb_model_find(m, s->branches[i].target);
    char lab[160];
    snprintf(lab, sizeof lab, "%s -> ", s->branches[i].key);
    if (b)
      outline(m, b, lab, depth + 1, seen, out);
  }
  if (s->on_error) {
    const rb_step *e = rb_model_find(m, s->on_error);
    if (e)
      outline(m, e, "on error -> ", depth + 1, seen, out);
  }
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
  if (!show) {
    fprintf(out, "%s: ok (%s, %zu steps)\n", path, m->name, m->nsteps);
  } else {
    fprintf(out, "%s: %s\n", m->name, m->title);
    if (m->description)
      fprintf(out, "  %s\n", m->description);
    for (size_t i = 0; i < m->nparams; i++)
      fprintf(out, "  param %s%s%s%s%s\n", m->params[i].name,
              m->params[i].def ? " = " : "", m->params[i].def ? m->params[i].def : "",
              m->params[i].is_required ? " (required)" : "",
              m->params[i].description ? "" : "");
    fputc('\n', out);
    unsigned char *seen = calloc(m->nsteps ? m->nsteps : 1, 1);
    const rb_step *s = rb_model_find(m, m->start);
    if (seen && s)
      outline(m, s, "", 0, seen, out);
    free(seen);
  }
  rb_model_free(m);
  sb_free(sb);
  return RB_EXIT_OK;
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
