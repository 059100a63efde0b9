/* readings.c: a wait's readings: the value its condition returns after the
 * verdict, one per poll, journaled so the postmortem says "3.1% -> 0.4%". */
#include "runner/readings.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

json_t *rb_reading_take(lua_State *L, int idx)
{
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return json_integer((json_int_t)lua_tointeger(L, idx));
    return json_real(lua_tonumber(L, idx)); /* NaN/Inf: NULL, no reading */
  case LUA_TBOOLEAN:
    return json_boolean(lua_toboolean(L, idx));
  case LUA_TSTRING: {
    size_t n = 0;
    const char *s = lua_tolstring(L, idx, &n);
    if (n > 200) /* a reading is a figure, not a report; cut on a UTF-8 start */
      for (n = 200; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--)
        ;
    return json_stringn(s, n); /* NULL when it is not UTF-8 */
  }
  default:
    return NULL;
  }
}

void rb_reading_format(const json_t *v, char *buf, size_t len)
{
  if (json_is_string(v))
    snprintf(buf, len, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, len, "%.4g", json_real_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
  else
    snprintf(buf, len, "?");
}

void rb_readings_add(json_t *detail, json_t *r, int poll)
{
  json_t *list = json_object_get(detail, "readings");
  if (list == NULL) {
    if (r == NULL)
      return;
    list = json_array();
    json_object_set_new(detail, "readings", list);
    /* polls before the first reading read nothing */
    for (int i = 1; i < poll && i <= RB_READINGS_MAX / 2; i++)
      json_array_append_new(list, json_null());
  }
  if (json_array_size(list) >= RB_READINGS_MAX) {
    json_array_remove(list, RB_READINGS_MAX / 2);
    json_t *dropped = json_object_get(detail, "readings_dropped");
    json_object_set_new(detail, "readings_dropped",
                        json_integer(dropped ? json_integer_value(dropped) + 1 : 1));
  }
  json_array_append_new(list, r ? r : json_null());
}

void rb_readings_span(const json_t *detail, char *buf, size_t len)
{
  const json_t *list = json_object_get(detail, "readings");
  const json_t *first = NULL, *last = NULL;
  size_t i;
  json_t *v;
  buf[0] = '\0';
  json_array_foreach(list, i, v)
  {
    if (json_is_null(v))
      continue;
    if (first == NULL)
      first = v;
    last = v;
  }
  if (first == NULL)
    return;
  char a[220], b[220];
  rb_reading_format(first, a, sizeof a);
  rb_reading_format(last, b, sizeof b);
  if (first == last)
    snprintf(buf, len, "%s", a);
  else
    snprintf(buf, len, "%s -> %s", a, b);
}
