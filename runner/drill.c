/* drill.c: what a drill simulates beyond step answers: the simulated clock
 * a wait polls on, and the call-level answers a step's own code reads. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/exec.h"
#include "runner/base/util.h"
#include "runner/drill_match.h"

/* The condition's value at the poll'th poll (0-based): the scenario's
 * "values" in turn, the last one holding once they run out, or its one
 * "value" at every poll. */
static int value_at(const json_t *ans, size_t poll)
{
  const json_t *vals = json_object_get(ans, "values");
  if (vals == NULL)
    return json_is_true(json_object_get(ans, "value"));
  size_t n = json_array_size(vals);
  return json_is_true(json_array_get(vals, poll < n ? poll : n - 1));
}

int rb_drill_wait(rb_exec *ex, const rb_step *s, const json_t *ans, json_t *detail)
{
  int64_t every = s->every_ms > 0 ? s->every_ms : 10000;
  int64_t timeout = s->timeout_ms > 0 ? s->timeout_ms : ex->step_timeout_ms;
  int64_t t = 0;
  size_t polls = 0;
  int met = 0;
  /* The schedule of poll_condition in exec: a poll at once, then one each
   * `every` while the next would come before the step's timeout. */
  for (;;) {
    met = value_at(ans, polls++);
    if (met || t + every >= timeout)
      break;
    t += every;
  }
  ex->sim_ms += t;
  json_object_set_new(detail, "polls", json_integer((json_int_t)polls));
  json_object_set_new(detail, "waited_ms", json_integer(t));
  json_object_set_new(detail, "simulated", json_true());
  return met;
}

/* -- call-level answers --------------------------------------------------- */

int rb_drill_runs_code(rb_exec *ex, const rb_step *s)
{
  if (ex->o->mode != RB_MODE_DRILL || json_object_get(ex->scenario, "calls") == NULL)
    return 0;
  return json_object_get(json_object_get(ex->scenario, "steps"), s->id) == NULL;
}

/* Edit distance of a and b (each cut at 512 bytes), for the closest answer. */
static size_t distance(const char *a, const char *b)
{
  size_t n = strlen(a) < 512 ? strlen(a) : 512, m = strlen(b) < 512 ? strlen(b) : 512;
  size_t row[513];
  for (size_t j = 0; j <= m; j++)
    row[j] = j;
  for (size_t i = 1; i <= n; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[m];
}

/* The drill's clock in unix seconds: now plus the simulated time spent
 * (the running wait's polls included), for the series' sample times. */
static double sim_now(const rb_exec *ex)
{
  int64_t every = ex->cur && ex->cur->every_ms > 0 ? ex->cur->every_ms : 10000;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)(ex->sim_ms + ex->sim_poll * every) / 1000.0;
}

/* A prom answer at this poll as prom.lua reads it: {"value": n, "time": t},
 * {"vector": [series with their time]} or {"fail": "..."}. "values" in turn
 * (the last holds), else the entry's one form. */
static json_t *at_poll(const rb_exec *ex, const json_t *a)
{
  const json_t *vals = json_object_get(a, "values");
  size_t n = json_array_size(vals), i = (size_t)ex->sim_poll;
  const json_t *v = vals ? json_array_get(vals, i < n ? i : n - 1) : NULL;
  double now = sim_now(ex);
  if (v == NULL && json_object_get(a, "fail"))
    return json_pack("{s:O}", "fail", json_object_get(a, "fail"));
  if (v == NULL)
    v = json_object_get(a, "vector");
  if (v == NULL)
    v = json_object_get(a, "value");
  if (json_is_object(v)) /* {"fail": ...} at this poll */
    return json_deep_copy(v);
  if (!json_is_array(v))
    return json_pack("{s:O, s:f}", "value", v, "time", now);
  json_t *vec = json_deep_copy(v), *x;
  json_array_foreach(vec, i, x)
  {
    if (!json_object_get(x, "time"))
      json_object_set_new(x, "time", json_real(now));
    if (!json_object_get(x, "labels"))
      json_object_set_new(x, "labels", json_object());
  }
  return json_pack("{s:o}", "vector", vec);
}

/* What the module is given: the entry without its note, defaults filled. */
static json_t *result_of(const rb_exec *ex, const char *module, const json_t *a)
{
  if (strcmp(module, "prom") == 0)
    return at_poll(ex, a);
  json_t *r = json_deep_copy(a);
  json_object_del(r, "note");
  if (strcmp(module, "cmd") == 0 || strcmp(module, "ssh") == 0) {
    if (!json_object_get(r, "exit"))
      json_object_set_new(r, "exit", json_integer(0));
    const char *const out[] = {"stdout", "stderr"};
    for (int k = 0; k < 2; k++)
      if (!json_object_get(r, out[k]))
        json_object_set_new(r, out[k], json_string(""));
  } else if (strcmp(module, "http") == 0 && !json_object_get(r, "status")) {
    json_object_set_new(r, "status", json_integer(200));
  }
  return r;
}

/* The error for a read no entry covers, naming the closest entry. */
static int unanswered(rb_exec *ex, const char *module, const json_t *call,
                      const json_t *list, char *err, size_t errlen)
{
  char *want = rb_drill_describe(module, call, 1), *closest = NULL;
  size_t best = (size_t)-1, i;
  json_t *a;
  json_array_foreach(list, i, a)
  {
    char *have = rb_drill_describe(module, a, 1);
    size_t d = want && have ? distance(want, have) : (size_t)-1;
    if (d < best) {
      best = d;
      free(closest);
      closest = rb_drill_describe(module, a, 0);
    }
    free(have);
  }
  rb_err(err, errlen,
         "%s %s is answered by no entry of the scenario's calls.%s (closest: %s)", module,
         want ? want : "?", module, closest ? closest : "none");
  free(want);
  free(closest);
  /* Kept by the run too: a pcall in the runbook must not hide it. */
  snprintf(ex->unanswered, sizeof ex->unanswered, "%s", err ? err : "");
  return -1;
}

/* "inventory": the hosts the scenario says a target group stands for. */
static int inventory_answer(rb_exec *ex, const json_t *call, json_t **out)
{
  const json_t *inv = json_object_get(ex->scenario, "inventory");
  const json_t *hosts =
      json_object_get(inv, json_string_value(json_object_get(call, "target")));
  if (hosts == NULL)
    return 0;
  *out = json_pack("{s:O}", "hosts", hosts);
  return 1;
}

/* The run's answer for one call, or 0/-1 (rb_host_drill_answer). */
static int drill_answer(rb_exec *ex, const char *module, const json_t *call, json_t **out,
                        char *err, size_t errlen)
{
  if (strcmp(module, "inventory") == 0)
    return inventory_answer(ex, call, out);
  const json_t *list = json_object_get(json_object_get(ex->scenario, "calls"), module);
  if (list == NULL)
    return 0;
  if (call == NULL) { /* does the scenario answer this module at all? */
    *out = json_true();
    return 1;
  }
  size_t i;
  json_t *a;
  json_array_foreach(list, i, a)
  {
    if (rb_drill_entry_matches(module, a, call)) {
      *out = result_of(ex, module, a);
      return 1;
    }
  }
  /* A write no entry answers succeeds as would_run, as without calls. */
  if (json_is_true(json_object_get(call, "optional")))
    return 0;
  return unanswered(ex, module, call, list, err, errlen);
}

int rb_host_drill_answer(lua_State *L, const char *module, const json_t *call,
                         json_t **out, char *err, size_t errlen)
{
  rb_host *h = rb_host_get(L);
  *out = NULL;
  /* Only the executor's host (inside its rb_exec) carries a scenario. */
  rb_exec *ex = h ? h->priv : NULL;
  if (h == NULL || h->mode != RB_MODE_DRILL || ex == NULL || &ex->host != h)
    return 0;
  return drill_answer(ex, module, call, out, err, errlen);
}
