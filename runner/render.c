/* render.c: the decision tree as text, Mermaid, Graphviz dot and JSON, with
 * questions on the edges, writes and gates marked and one run's path lit. */
#include "runner/render.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  const rb_step *from;
  const char *to;
  const char *label; /* branch value, "on error", or "" for next */
} edge;

int rb_show_format_parse(const char *s, rb_show_format *out)
{
  static const char *const names[] = {"text", "mermaid", "dot", "json"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = (rb_show_format)i;
      return 0;
    }
  return -1;
}

/* How a step ends the run: its terminal outcome, or NONE. An escalate step
 * with no next hands the incident over and ends the run escalated. */
static rb_outcome step_outcome(const rb_step *s)
{
  if (s->kind == RB_STEP_ESCALATE && s->next == NULL)
    return RB_OUTCOME_ESCALATED;
  return rb_step_kind_outcome(s->kind);
}

static int is_gate(const rb_step *s)
{
  return s->kind == RB_STEP_APPROVAL || (s->kind == RB_STEP_ACTION && s->approval);
}

/* Every edge of the graph in declaration order: next, branches, on_error. */
static edge *collect_edges(const rb_model *m, size_t *n)
{
  size_t cap = 0;
  for (size_t i = 0; i < m->nsteps; i++)
    cap += m->steps[i].nbranches + 2;
  edge *e = calloc(cap ? cap : 1, sizeof *e);
  *n = 0;
  if (e == NULL)
    return NULL;
  for (size_t i = 0; i < m->nsteps; i++) {
    const rb_step *s = &m->steps[i];
    if (s->next)
      e[(*n)++] = (edge){s, s->next, ""};
    for (size_t b = 0; b < s->nbranches; b++)
      e[(*n)++] = (edge){s, s->branches[b].target, s->branches[b].key};
    if (s->on_error)
      e[(*n)++] = (edge){s, s->on_error, "on error"};
  }
  return e;
}

static int walked(const rb_walk *w)
{
  return w && w->path && json_array_size(w->path) > 0;
}

static int on_path(const rb_walk *w, const char *id)
{
  if (!walked(w))
    return 0;
  for (size_t i = 0; i < json_array_size(w->path); i++)
    if (strcmp(json_string_value(json_array_get(w->path, i)), id) == 0)
      return 1;
  return 0;
}

/* An edge is taken when the run started its target right after its source. */
static int edge_taken(const rb_walk *w, const edge *e)
{
  if (!walked(w))
    return 0;
  for (size_t i = 0; i + 1 < json_array_size(w->path); i++)
    if (strcmp(json_string_value(json_array_get(w->path, i)), e->from->id) == 0 &&
        strcmp(json_string_value(json_array_get(w->path, i + 1)), e->to) == 0)
      return 1;
  return 0;
}

static int is_stop(const rb_walk *w, const char *id)
{
  return walked(w) && w->stopped && strcmp(w->stopped, id) == 0;
}

static const char *stop_words(const rb_walk *w)
{
  return w->outcome && w->outcome[0] ? w->outcome : "stopped here";
}

/* -- text ------------------------------------------------------------------ */

static void text_marks(const rb_step *s, const rb_walk *w, FILE *out)
{
  fputs(rb_step_kind_name(s->kind), out);
  if (s->kind == RB_STEP_ACTION)
    fputs(", write", out);
  if (is_gate(s))
    fputs(", approval", out);
  rb_outcome o = step_outcome(s);
  if (o != RB_OUTCOME_NONE)
    fprintf(out, ", ends %s", rb_outcome_name(o));
  (void)w;
}

/* Lights the pair from -> to when the run took that edge. */
static int pair_taken(const rb_walk *w, const rb_step *from, const char *to)
{
  edge e = {from, to, ""};
  return edge_taken(w, &e);
}

/* One line per step reached; lit is 1 when the run came this way (the edge
 * into this line was taken), so a step shared by two branches is starred
 * only under the branch the run followed. */
static void text_node(const rb_model *m, const rb_step *s, const char *label, int depth,
                      int lit_in, unsigned char *seen, const rb_walk *w, FILE *out)
{
  size_t idx = (size_t)(s - m->steps);
  const char *lit = walked(w) ? (lit_in ? "* " : "  ") : "";
  fprintf(out, "%s%*s%s%s", lit, depth * 3, "", label, s->id);
  if (seen[idx]) {
    fputs(" (see above)\n", out);
    return;
  }
  seen[idx] = 1;
  fputs(" [", out);
  text_marks(s, w, out);
  fprintf(out, "] %s", s->title ? s->title : "");
  if (is_stop(w, s->id))
    fprintf(out, "   <== %s", stop_words(w));
  fputc('\n', out);
  const char *tgt[3] = {s->next, s->on_error, NULL};
  if (tgt[0] && rb_model_find(m, tgt[0]))
    text_node(m, rb_model_find(m, tgt[0]), "-> ", depth + 1, pair_taken(w, s, tgt[0]),
              seen, w, out);
  for (size_t i = 0; i < s->nbranches; i++) {
    const rb_step *b = rb_model_find(m, s->branches[i].target);
    char lab[160];
    snprintf(lab, sizeof lab, "%s -> ", s->branches[i].key);
    if (b)
      text_node(m, b, lab, depth + 1, pair_taken(w, s, b->id), seen, w, out);
  }
  if (tgt[1] && rb_model_find(m, tgt[1]))
    text_node(m, rb_model_find(m, tgt[1]), "on error -> ", depth + 1,
              pair_taken(w, s, tgt[1]), seen, w, out);
}

static void render_text(const rb_model *m, const rb_walk *w, FILE *out)
{
  if (walked(w))
    fprintf(out, "run %s: * marks the steps it walked\n\n", w->run ? w->run : "?");
  unsigned char *seen = calloc(m->nsteps ? m->nsteps : 1, 1);
  const rb_step *s = rb_model_find(m, m->start);
  if (seen && s)
    text_node(m, s, "", 0, on_path(w, s->id), seen, w, out);
  free(seen);
}

/* -- mermaid --------------------------------------------------------------- */

/* Mermaid labels go inside "..."; a quote or angle bracket becomes an entity. */
static void mm_text(const char *s, FILE *out)
{
  for (; s && *s; s++) {
    if (*s == '"')
      fputs("#quot;", out);
    else if (*s == '<')
      fputs("#lt;", out);
    else if (*s == '>')
      fputs("#gt;", out);
    else if (*s == '#')
      fputs("#35;", out);
    else if (*s == '\n')
      fputc(' ', out);
    else
      fputc(*s, out);
  }
}

/* Mermaid ids must not collide with keywords (end, graph): prefix them. */
static void mm_node(const rb_step *s, FILE *out)
{
  static const char *const open[] = {"{", "[", "{", "[[", ">", "[/", "([", "{{", "(("};
  static const char *const close[] = {"}", "]", "}", "]]", "]", "/]", "])", "}}", "))"};
  int k;
  rb_outcome o = step_outcome(s);
  if (o == RB_OUTCOME_RESOLVED)
    k = 6;
  else if (o == RB_OUTCOME_ESCALATED)
    k = 7;
  else if (o == RB_OUTCOME_ABORTED)
    k = 8;
  else if (is_gate(s))
    k = 3;
  else if (s->kind == RB_STEP_CHECK || s->kind == RB_STEP_WAIT)
    k = 0;
  else if (s->kind == RB_STEP_NOTIFY)
    k = 4;
  else if (s->kind == RB_STEP_ESCALATE)
    k = 5;
  else
    k = 1;
  fprintf(out, "  s_%s%s\"", s->id, open[k]);
  mm_text(s->title ? s->title : s->id, out);
  fprintf(out, "<br/><small>%s", s->id);
  if (s->kind == RB_STEP_ACTION)
    fputs(" · write", out);
  if (is_gate(s))
    fputs(" · approval", out);
  fprintf(out, "</small>\"%s\n", close[k]);
}

static const char *mm_class(const rb_step *s)
{
  rb_outcome o = step_outcome(s);
  if (o != RB_OUTCOME_NONE)
    return rb_outcome_name(o);
  if (is_gate(s))
    return "gate";
  if (s->kind == RB_STEP_ACTION)
    return "write";
  return NULL;
}

static void render_mermaid(const rb_model *m, const rb_walk *w, FILE *out)
{
  size_t ne = 0;
  edge *e = collect_edges(m, &ne);
  fputs("flowchart TD\n", out);
  for (size_t i = 0; i < m->nsteps; i++)
    mm_node(&m->steps[i], out);
  for (size_t i = 0; i < ne; i++) {
    fprintf(out, "  s_%s -->", e[i].from->id);
    if (e[i].label[0]) {
      fputs("|\"", out);
      mm_text(e[i].label, out);
      fputs("\"|", out);
    }
    fprintf(out, " s_%s\n", e[i].to);
  }
  fputs("  classDef write fill:#fff3cd,stroke:#b8860b\n"
        "  classDef gate fill:#fde2c8,stroke:#c05621,stroke-width:2px\n"
        "  classDef resolved fill:#c6f6d5,stroke:#2f855a\n"
        "  classDef escalated fill:#fed7d7,stroke:#c53030\n"
        "  classDef aborted fill:#e2e8f0,stroke:#4a5568\n"
        "  classDef taken stroke:#2b6cb0,stroke-width:4px\n"
        "  classDef stopped stroke:#d53f8c,stroke-width:5px,stroke-dasharray:6 3\n",
        out);
  for (size_t i = 0; i < m->nsteps; i++) {
    const rb_step *s = &m->steps[i];
    const char *c = mm_class(s);
    if (c)
      fprintf(out, "  class s_%s %s\n", s->id, c);
    if (is_stop(w, s->id))
      fprintf(out, "  class s_%s stopped\n", s->id);
    else if (on_path(w, s->id))
      fprintf(out, "  class s_%s taken\n", s->id);
  }
  for (size_t i = 0; i < ne; i++)
    if (edge_taken(w, &e[i]))
      fprintf(out, "  linkStyle %zu stroke:#2b6cb0,stroke-width:4px\n", i);
  free(e);
}

/* -- dot ------------------------------------------------------------------- */

static void dot_text(const char *s, FILE *out)
{
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    if (*s == '\n')
      fputs("\\n", out);
    else
      fputc(*s, out);
  }
}

static void dot_node(const rb_step *s, const rb_walk *w, FILE *out)
{
  const char *shape = "box", *fill = "white", *style = "filled";
  rb_outcome o = step_outcome(s);
  if (o == RB_OUTCOME_RESOLVED)
    shape = "doublecircle", fill = "#c6f6d5";
  else if (o == RB_OUTCOME_ESCALATED)
    shape = "doubleoctagon", fill = "#fed7d7";
  else if (o == RB_OUTCOME_ABORTED)
    shape = "Msquare", fill = "#e2e8f0";
  else if (is_gate(s))
    shape = "box3d", fill = "#fde2c8";
  else if (s->kind == RB_STEP_CHECK || s->kind == RB_STEP_WAIT)
    shape = "diamond", fill = "#ebf8ff";
  else if (s->kind == RB_STEP_NOTIFY)
    shape = "note", fill = "#f7fafc";
  else if (s->kind == RB_STEP_ESCALATE)
    shape = "house", fill = "#fed7d7";
  else if (s->kind == RB_STEP_ACTION)
    fill = "#fff3cd", style = "filled,rounded";
  fprintf(out, "  \"%s\" [shape=%s, style=\"%s%s\", fillcolor=\"%s\", label=\"", s->id,
          shape, style, is_gate(s) ? ",bold" : "", fill);
  dot_text(s->title ? s->title : s->id, out);
  fprintf(out, "\\n(%s%s%s)\"", s->id, s->kind == RB_STEP_ACTION ? ", write" : "",
          is_gate(s) ? ", approval" : "");
  if (is_stop(w, s->id))
    fprintf(out, ", color=\"#d53f8c\", penwidth=4, xlabel=\"%s\", class=\"stopped\"",
            stop_words(w));
  else if (on_path(w, s->id))
    fputs(", color=\"#2b6cb0\", penwidth=3, class=\"taken\"", out);
  fprintf(out, ", id=\"step_%s\"];\n", s->id);
}

static void render_dot(const rb_model *m, const rb_walk *w, FILE *out)
{
  size_t ne = 0;
  edge *e = collect_edges(m, &ne);
  fputs("digraph runbook {\n  graph [rankdir=TB, fontname=\"Helvetica\", label=\"", out);
  dot_text(m->title ? m->title : m->name, out);
  fputs("\", labelloc=t];\n  node [fontname=\"Helvetica\", fontsize=11];\n"
        "  edge [fontname=\"Helvetica\", fontsize=10];\n",
        out);
  for (size_t i = 0; i < m->nsteps; i++)
    dot_node(&m->steps[i], w, out);
  for (size_t i = 0; i < ne; i++) {
    fprintf(out, "  \"%s\" -> \"%s\" [label=\"", e[i].from->id, e[i].to);
    dot_text(e[i].label, out);
    fputc('"', out);
    if (strcmp(e[i].label, "on error") == 0)
      fputs(", style=dashed", out);
    if (edge_taken(w, &e[i]))
      fputs(", color=\"#2b6cb0\", penwidth=3, class=\"taken\"", out);
    fputs("];\n", out);
  }
  fputs("}\n", out);
  free(e);
}

/* -- json ------------------------------------------------------------------ */

json_t *rb_render_json(const rb_model *m, const rb_walk *w)
{
  json_t *nodes = json_array(), *edges = json_array();
  for (size_t i = 0; i < m->nsteps; i++) {
    const rb_step *s = &m->steps[i];
    rb_outcome o = step_outcome(s);
    json_t *n = json_pack("{s:s, s:s, s:s?, s:b, s:b, s:b}", "id", s->id, "kind",
                          rb_step_kind_name(s->kind), "title", s->title, "write",
                          s->kind == RB_STEP_ACTION, "approval", is_gate(s), "taken",
                          on_path(w, s->id));
    json_object_set_new(n, "outcome",
                        o == RB_OUTCOME_NONE ? json_null()
                                             : json_string(rb_outcome_name(o)));
    if (s->line)
      json_object_set_new(n, "line", json_integer(s->line));
    json_array_append_new(nodes, n);
  }
  size_t ne = 0;
  edge *e = collect_edges(m, &ne);
  for (size_t i = 0; i < ne; i++) {
    const char *kind = !e[i].label[0]                        ? "next"
                       : strcmp(e[i].label, "on error") == 0 ? "on_error"
                                                             : "branch";
    json_array_append_new(edges,
                          json_pack("{s:s, s:s, s:s, s:s?, s:b}", "from", e[i].from->id,
                                    "to", e[i].to, "kind", kind, "value",
                                    strcmp(kind, "branch") == 0 ? e[i].label : NULL,
                                    "taken", edge_taken(w, &e[i])));
  }
  free(e);
  json_t *doc = json_pack("{s:s, s:s?, s:s, s:o, s:o}", "runbook", m->name, "title",
                          m->title, "start", m->start, "nodes", nodes, "edges", edges);
  /* what a program needs to call it (the alert listener checks its rules) */
  json_t *params = json_array();
  for (size_t i = 0; i < m->nparams; i++) {
    const rb_param *p = &m->params[i];
    json_t *o = json_pack("{s:s, s:b, s:s}", "name", p->name, "required", p->is_required,
                          "type", rb_param_type_name(p->type));
    if (p->def)
      json_object_set_new(o, "default", json_string(p->def));
    json_array_append_new(params, o);
  }
  json_object_set_new(doc, "params", params);
  if (m->file)
    json_object_set_new(doc, "file", json_string(m->file));
  if (walked(w))
    json_object_set_new(doc, "run",
                        json_pack("{s:s?, s:O, s:s?, s:s?}", "id", w->run, "path",
                                  w->path, "stopped", w->stopped, "outcome",
                                  w->outcome && w->outcome[0] ? w->outcome : NULL));
  return doc;
}

void rb_render(const rb_model *m, rb_show_format f, const rb_walk *w, FILE *out)
{
  if (f == RB_SHOW_TEXT) {
    render_text(m, w, out);
  } else if (f == RB_SHOW_MERMAID) {
    render_mermaid(m, w, out);
  } else if (f == RB_SHOW_DOT) {
    render_dot(m, w, out);
  } else {
    json_t *doc = rb_render_json(m, w);
    json_dumpf(doc, out, JSON_INDENT(2));
    fputc('\n', out);
    json_decref(doc);
  }
}
