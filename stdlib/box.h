/* box.h: C memory held across Lua API calls, owned by a userdata so that a
 * raise (the memory budget, a bad value) frees it instead of leaking it. */
#ifndef RB_BOX_H
#define RB_BOX_H

#include <lua.h>
#include <stddef.h>

typedef void (*rb_box_free_fn)(void *p, size_t n);

typedef struct {
  void *p;
  size_t n;
  rb_box_free_fn fr;
} rb_box;

/* Pushes an empty box that frees what it holds with fr, and marks its slot
 * to-be-closed: it is freed when the C function returns or raises, or at the
 * latest by the garbage collector. Raises (holding nothing yet) on OOM. */
rb_box *rb_box_push(lua_State *L, rb_box_free_fn fr);
/* Hands p (n elements) to the box; call right after allocating. */
void rb_box_hold(rb_box *b, void *p, size_t n);
/* Frees what the box holds now (idempotent). */
void rb_box_drop(rb_box *b);

#endif
