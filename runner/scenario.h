/* scenario.h: drill scenarios: a JSON file that answers each check and wait
 * by step id (and may simulate an action's result or failure, and decide
 * approvals), plus what the drill is expected to do. */
#ifndef RB_SCENARIO_H
#define RB_SCENARIO_H

#include <jansson.h>

#include "runner/model.h"

/* Finds the scenario file: `name` itself when it is a path that exists,
 * else <dir of runbook>/scenarios/<runbook name>/<name>.json. */
int rb_scenario_find(const char *runbook_path, const char *runbook_name, const char *name,
                     char *out, size_t len);
/* Loads and checks a scenario against the model: it must be an object whose
 * "steps" object names only steps that exist; JSON errors name line and
 * column, shape errors name the field ("steps.verfy"). Caller decrefs. */
json_t *rb_scenario_load(const char *path, const rb_model *m, char *err, size_t errlen);
/* The answer for a step, or NULL when the scenario does not give one. The
 * shorthand `"id": true` is returned as {"value": true}; caller decrefs. */
json_t *rb_scenario_answer(const json_t *scenario, const char *step_id);

#endif
