/* model.c: the step graph as plain data and its validator. */
#include "runner/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[RB_OUTCOME_COUNT] = {"", "resolved", "escalated",
                                                            "aborted", "failed"};

const char *rb_outcome_name(rb_outcome o)
{
  return o >= 0 && o < RB_OUTCOME_COUNT ? outcome_names[o] : "";
}

rb_outcome rb_outcome_parse(const char *s)
{
  for (int o = 1; s && o < RB_OUTCOME_COUNT; o++)
    if (strcmp(s, outcome_names[o]) == 0)
      return (rb_outcome)o;
  return RB_OUTCOME_NONE;
}

rb_outcome rb_step_kind_outcome(rb_step_kind k)
{
  switch (k) {
  case RB_STEP_RESOLVED:
    return RB_OUTCOME_RESOLVED;
  case RB_STEP_ESCALATED:
    return RB_OUTCOME_ESCALATED;
  case RB_STEP_ABORTED:
    return RB_OUTCOME_ABORTED;
  default:
    return RB_OUTCOME_NONE;
  }
}

static const char *const param_types[] = {"string",  "number",   "integer",
                                          "boolean", "duration", "enum"};

const char *rb_param_type_name(rb_param_type t)
{
  return t <= RB_PARAM_ENUM ? param_types[t] : "?";
}

int rb_param_type_parse(const char *s, rb_param_type *out)
{
  for (int t = 0; t <= RB_PARAM_ENUM; t++)
    if (s && strcmp(s, param_types[t]) == 0) {
      *out = (rb_param_type)t;
      return 0;
    }
  return -1;
}

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

rb_model *rb_model_new(const char *file)
{
  rb_model *m = calloc(1, sizeof *m);
  if (m)
    m->file = dup_or_null(file ? file : "(runbook)");
  return m;
}

void rb_approval_policy_clear(rb_approval_policy *p)
{
  if (p == NULL)
    return;
  free(p->confirm);
  for (size_t i = 0; i < p->nfrom; i++)
    free(p->from[i]);
  free(p->from);
  memset(p, 0, sizeof *p);
}

void rb_model_free(rb_model *m)
{
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->nsteps; i++) {
    rb_step *s = &m->steps[i];
    free(s->id);
    free(s->title);
    free(s->next);
    free(s->on_error);
    rb_approval_policy_clear(&s->policy);
    for (size_t b = 0; b < s->nbranches; b++) {
      free(s->branches[b].key);
      free(s->branches[b].target);
    }
    free(s->branches);
  }
  for (size_t i = 0; i < m->nparams; i++) {
    free(m->params[i].name);
    free(m->params[i].def);
    free(m->params[i].description);
    free(m->params[i].pattern);
    for (size_t c = 0; c < m->params[i].nchoices; c++)
      free(m->params[i].choices[c]);
    free(m->params[i].choices);
  }
  free(m->params);
  free(m->by_id);
  free(m->steps);
  free(m->file);
  free(m->name);
  free(m->severity);
  rb_approval_policy_clear(&m->policy);
  free(m->title);
  free(m->description);
  free(m->start);
  free(m);
}

rb_step *rb_model_add_step(rb_model *m, const char *id)
{
  free(m->by_id);
  m->by_id = NULL;
  if (m->nsteps == m->cap_steps) {
    /* Doubling: growing by one made loading n steps cost n^2 copies. */
    size_t cap = m->cap_steps ? m->cap_steps * 2 : 16;
    rb_step *steps = realloc(m->steps, cap * sizeof *steps);
    if (steps == NULL)
      return NULL;
    m->steps = steps;
    m->cap_steps = cap;
  }
  rb_step *s = &m->steps[m->nsteps];
  memset(s, 0, sizeof *s);
  s->id = strdup(id);
  s->kind = RB_STEP_UNKNOWN;
  if (s->id == NULL)
    return NULL;
  m->nsteps++;
  return s;
}

rb_param *rb_model_add_param(rb_model *m, const char *name)
{
  rb_param *p = realloc(m->params, (m->nparams + 1) * sizeof *p);
  if (p == NULL)
    return NULL;
  m->params = p;
  rb_param *np = &m->params[m->nparams];
  memset(np, 0, sizeof *np);
  np->name = strdup(name);
  if (np->name == NULL)
    return NULL;
  m->nparams++;
  return np;
}

int rb_step_add_branch(rb_step *s, const char *key, const char *target)
{
  rb_branch *b = realloc(s->branches, (s->nbranches + 1) * sizeof *b);
  if (b == NULL)
    return -1;
  s->branches = b;
  b[s->nbranches].key = strdup(key);
  b[s->nbranches].target = strdup(target);
  if (!b[s->nbranches].key || !b[s->nbranches].target) {
    free(b[s->nbranches].key);
    free(b[s->nbranches].target);
    return -1;
  }
  s->nbranches++;
  return 0;
}

static int cmp_id(const void *a, const void *b)
{
  return strcmp((*(rb_step *const *)a)->id, (*(rb_step *const *)b)->id);
}

int rb_model_index(rb_model *m)
{
  free(m->by_id);
  m->by_id = m->nsteps ? malloc(m->nsteps * sizeof *m->by_id) : NULL;
  if (m->by_id == NULL)
    return m->nsteps ? -1 : 0;
  for (size_t i = 0; i < m->nsteps; i++)
    m->by_id[i] = &m->steps[i];
  qsort(m->by_id, m->nsteps, sizeof *m->by_id, cmp_id);
  return 0;
}

rb_step *rb_model_find(const rb_model *m, const char *id)
{
  if (id == NULL)
    return NULL;
  if (m->by_id != NULL) {
    size_t lo = 0, hi = m->nsteps;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp(m->by_id[mid]->id, id);
      if (c == 0)
        return m->by_id[mid];
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    return NULL;
  }
  for (size_t i = 0; i < m->nsteps; i++)
    if (strcmp(m->steps[i].id, id) == 0)
      return &m->steps[i];
  return NULL;
}

const rb_param *rb_model_find_param(const rb_model *m, const char *name)
{
  for (size_t i = 0; i < m->nparams; i++)
    if (strcmp(m->params[i].name, name) == 0)
      return &m->params[i];
  return NULL;
}

const char *rb_step_branch(const rb_step *s, const char *key)
{
  const char *def = NULL;
  for (size_t i = 0; i < s->nbranches; i++) {
    if (strcmp(s->branches[i].key, key) == 0)
      return s->branches[i].target;
    if (strcmp(s->branches[i].key, "default") == 0)
      def = s->branches[i].target;
  }
  return def;
}

/* -- validation ----------------------------------------------------------- */

typedef struct {
  const rb_model *m;
  char *out;
  size_t len, used;
  int count;
} vctx;

static void problem(vctx *v, const rb_step *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(vctx *v, const rb_step *s, const char *fmt, ...)
{
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char line[1024];
  if (s)
    snprintf(line, sizeof line, "%s:%d: step '%s': %s\n", v->m->file,
             s->line ? s->line : v->m->line, s->id, what);
  else
    snprintf(line, sizeof line, "%s:%d: %s\n", v->m->file, v->m->line, what);
  size_t n = strlen(line);
  if (v->out && v->used + n < v->len) {
    memcpy(v->out + v->used, line, n + 1);
    v->used += n;
  }
  v->count++;
}

static int has_branch(const rb_step *s, const char *key)
{
  for (size_t i = 0; i < s->nbranches; i++)
    if (strcmp(s->branches[i].key, key) == 0)
      return 1;
  return 0;
}

static void check_target(vctx *v, const rb_step *s, const char *what, const char *target)
{
  if (target && rb_model_find(v->m, target) == NULL)
    problem(v, s, "%s goes to unknown step '%s'", what, target);
}

static void check_step(vctx *v, const rb_step *s)
{
  if (s->kind == RB_STEP_UNKNOWN) {
    problem(v, s,
            "unknown step kind (declare it with check, action, wait, approval, "
            "notify, escalate, resolved, escalated or aborted)");
    return;
  }
  if (s->title == NULL || s->title[0] == '\0')
    problem(v, s, "has no title (every step needs one: it is what on-call reads)");
  check_target(v, s, "next", s->next);
  check_target(v, s, "on_error", s->on_error);
  for (size_t i = 0; i < s->nbranches; i++) {
    char what[160];
    snprintf(what, sizeof what, "branch '%s'", s->branches[i].key);
    check_target(v, s, what, s->branches[i].target);
  }
  int terminal = rb_step_kind_is_terminal(s->kind);
  if (terminal && (s->next || s->nbranches))
    problem(v, s, "is a %s step and ends the run: it cannot have next or branches",
            rb_step_kind_name(s->kind));
  switch (s->kind) {
  case RB_STEP_CHECK:
    if (!has_branch(s, "default") && !(has_branch(s, "true") && has_branch(s, "false")))
      problem(v, s,
              "check branches must cover both true and false, or declare a default");
    if (!s->has_run)
      problem(v, s, "check has no run function");
    break;
  case RB_STEP_WAIT:
    if (!(has_branch(s, "true") && has_branch(s, "false")) && !has_branch(s, "default"))
      problem(v, s,
              "wait branches must cover true (condition met) and false (timed out)");
    if (!s->has_run)
      problem(v, s, "wait has no until_ condition function");
    break;
  case RB_STEP_ACTION:
    if (!s->has_run)
      problem(v, s, "action has no run function");
    /* fallthrough */
  case RB_STEP_NOTIFY:
    if (!s->next && !s->nbranches)
      problem(v, s,
              "has no next step (end the run with a resolved, escalated or aborted "
              "step)");
    break;
  case RB_STEP_APPROVAL:
    if (!s->next && !rb_step_branch(s, "approved"))
      problem(v, s, "approval needs next (or on.approved) for when it is approved");
    break;
  default:
    break;
  }
}

static void mark(const rb_model *m, const char *id, unsigned char *seen)
{
  /* Iterative walk with an explicit stack: runbooks can be large. */
  size_t *stack = malloc((m->nsteps + 1) * sizeof *stack * 4);
  size_t sp = 0, cap = (m->nsteps + 1) * 4;
  if (stack == NULL)
    return;
  const rb_step *first = rb_model_find(m, id);
  if (first)
    stack[sp++] = (size_t)(first - m->steps);
  while (sp > 0) {
    size_t i = stack[--sp];
    if (seen[i])
      continue;
    seen[i] = 1;
    const rb_step *s = &m->steps[i];
    const char *targets[3] = {s->next, s->on_error, NULL};
    for (size_t t = 0; t < 2 + s->nbranches; t++) {
      const char *tid = t < 2 ? targets[t] : s->branches[t - 2].target;
      const rb_step *n = tid ? rb_model_find(m, tid) : NULL;
      if (n && !seen[n - m->steps]) {
        if (sp == cap) {
          size_t *ns = realloc(stack, cap * 2 * sizeof *ns);
          if (ns == NULL)
            break;
          stack = ns;
          cap *= 2;
        }
        stack[sp++] = (size_t)(n - m->steps);
      }
    }
  }
  free(stack);
}

int rb_model_validate(const rb_model *m, char *out, size_t len)
{
  vctx v = {m, out, len, 0, 0};
  if (out && len)
    out[0] = '\0';
  if (m->name == NULL || m->name[0] == '\0')
    problem(&v, NULL, "runbook has no name");
  if (m->title == NULL || m->title[0] == '\0')
    problem(&v, NULL, "runbook has no title");
  if (m->nsteps == 0) {
    problem(&v, NULL, "runbook has no steps");
    return v.count;
  }
  if (m->start == NULL)
    problem(&v, NULL, "runbook has no start step (set start = \"<step id>\")");
  else if (rb_model_find(m, m->start) == NULL)
    problem(&v, NULL, "start goes to unknown step '%s'", m->start);
  for (size_t i = 0; i < m->nsteps; i++)
    check_step(&v, &m->steps[i]);
  if (m->start && rb_model_find(m, m->start)) {
    unsigned char *seen = calloc(m->nsteps, 1);
    if (seen) {
      mark(m, m->start, seen);
      for (size_t i = 0; i < m->nsteps; i++)
        if (!seen[i])
          problem(&v, &m->steps[i], "is unreachable from start step '%s'", m->start);
      free(seen);
    }
  }
  return v.count;
}
