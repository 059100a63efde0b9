/* drill.c: what a drill simulates beyond step answers: the simulated clock
 * a wait polls on, so a five-minute verification takes milliseconds. */
#include <jansson.h>

#include "runner/exec.h"

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
