/* params.h: a run's parameters: the runbook's declared params merged with
 * --var values (or an alert's labels), defaults and required checks. */
#ifndef RB_PARAMS_H
#define RB_PARAMS_H

#include <jansson.h>

#include "runner/model.h"

/* Parses "key=value" into (*key, *value), both malloc'd. Returns 0 or -1
 * with err naming the argument. */
int rb_params_parse_var(const char *arg, char **key, char **value, char *err,
                        size_t errlen);
/* Builds the object name -> string of every declared param: the given value
 * (from vars, then fallback, e.g. a scenario's vars), else the default.
 * Unknown names in vars and missing required params are errors naming them.
 * Returns a new object, or NULL with err. */
json_t *rb_params_resolve(const rb_model *m, const json_t *vars, const json_t *fallback,
                          char *err, size_t errlen);

#endif
