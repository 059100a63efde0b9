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
/* Checks text against p's type, choices and pattern. With out, stores the
 * typed value (a JSON string, real, integer or boolean; a duration stays
 * the text, which every module takes). Returns 0, or -1 with err saying
 * what p expects ("must be a number, not 'abc'"). */
int rb_param_check(const rb_param *p, const char *text, json_t **out, char *err,
                   size_t errlen);
/* Builds the object name -> typed value of every declared param: the given
 * value (from vars, then fallback, e.g. a scenario's vars), else the
 * default. Unknown names in vars, missing required params and values of the
 * wrong type are errors naming them. Returns a new object, or NULL with err. */
json_t *rb_params_resolve(const rb_model *m, const json_t *vars, const json_t *fallback,
                          char *err, size_t errlen);

#endif
