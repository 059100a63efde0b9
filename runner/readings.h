/* readings.h: what a wait's condition read at each poll (its second return
 * value), kept on the wait's decision event and shown on the poll line. */
#ifndef RB_READINGS_H
#define RB_READINGS_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

/* Readings journaled per wait; past it the middle ones go, first and last stay. */
#define RB_READINGS_MAX 64

/* The value at idx as a JSON scalar (number, string cut at 200 bytes,
 * boolean), or NULL for nil and for a value that is not a scalar. */
json_t *rb_reading_take(lua_State *L, int idx);
/* "0.031", "3.1%", "true": how a reading reads on a line. */
void rb_reading_format(const json_t *v, char *buf, size_t len);
/* Appends poll's reading r (stolen; NULL: the poll read nothing) to
 * detail.readings, creating it at the first reading. */
void rb_readings_add(json_t *detail, json_t *r, int poll);
/* "3.1% -> 0.4%" from detail.readings (first and last), or "" with none. */
void rb_readings_span(const json_t *detail, char *buf, size_t len);

#endif
