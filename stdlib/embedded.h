/* embedded.h: the stdlib modules written in Lua, compiled into the binary by
 * stdlib/embed.cmake so that `require` never reads them from disk. */
#ifndef RB_EMBEDDED_H
#define RB_EMBEDDED_H

#include <stddef.h>

typedef struct {
  const char *name; /* module name as required: "flags", "prom", ... */
  const char *src;  /* Lua source text */
  size_t len;
} rb_embedded_module;

/* Terminated by an entry whose name is NULL. */
extern const rb_embedded_module rb_embedded_modules[];

#endif
