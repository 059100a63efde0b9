/* box.c: the userdata that owns C memory during a stdlib call; __close and
 * __gc both free it, so neither a raise nor a forgotten free leaks. */
#include "stdlib/box.h"

#include <lauxlib.h>

#define BOX_META "runbook.box"

void rb_box_drop(rb_box *b)
{
  if (b != NULL && b->p != NULL && b->fr != NULL)
    b->fr(b->p, b->n);
  if (b != NULL) {
    b->p = NULL;
    b->n = 0;
  }
}

static int box_free(lua_State *L)
{
  rb_box_drop(luaL_checkudata(L, 1, BOX_META));
  return 0;
}

rb_box *rb_box_push(lua_State *L, rb_box_free_fn fr)
{
  rb_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->n = 0;
  b->fr = fr;
  if (luaL_newmetatable(L, BOX_META)) {
    lua_pushcfunction(L, box_free);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, box_free);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  lua_toclose(L, -1);
  return b;
}

void rb_box_hold(rb_box *b, void *p, size_t n)
{
  b->p = p;
  b->n = n;
}
