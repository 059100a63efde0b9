/* render.h: pictures of a runbook's decision tree (text, Mermaid, Graphviz
 * dot, JSON) and of the path one run took through it, read from its journal. */
#ifndef RB_RENDER_H
#define RB_RENDER_H

#include <jansson.h>
#include <stdio.h>

#include "runner/config.h"
#include "runner/model.h"

typedef enum { RB_SHOW_TEXT, RB_SHOW_MERMAID, RB_SHOW_DOT, RB_SHOW_JSON } rb_show_format;

/* The path one run walked, for highlighting. path: array of step ids in the
 * order they started (NULL: no run). stopped: the last step that started;
 * outcome: "resolved"/"escalated"/"aborted" when the run ended, "failed" when
 * it failed, "" while it has not ended (waiting at a gate, crashed). */
typedef struct {
  const char *run;
  const json_t *path;
  const char *stopped;
  const char *outcome;
} rb_walk;

/* Returns 0 and sets *out for "text", "mermaid", "dot", "json"; -1 otherwise. */
int rb_show_format_parse(const char *s, rb_show_format *out);
/* Writes the picture of m (with w highlighted when w and w->path are set). */
void rb_render(const rb_model *m, rb_show_format f, const rb_walk *w, FILE *out);
/* The JSON picture (see docs/show.md): nodes, edges and the walk. New ref. */
json_t *rb_render_json(const rb_model *m, const rb_walk *w);

/* `runbook show`: loads the runbook at path and prints its picture in f;
 * with run set, that run's path (from its journal under state_dir) lit and
 * where it stopped marked. Returns an exit code; errors go to stderr. */
int rb_run_show(const char *path, const rb_config *cfg, rb_show_format f,
                const char *state_dir, const char *run, FILE *out, int report_fd);

#endif
