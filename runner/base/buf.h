/* buf.h: the one capped growable byte buffer (append, appendf, reset, take),
 * kept NUL-terminated; exceeding the cap is an error, never a silent grow. */
#ifndef RB_BUF_H
#define RB_BUF_H

#include <stddef.h>

enum {
  RB_BUF_OK = 0,
  RB_BUF_ENOMEM = -1, /* realloc failed; the contents so far are kept */
  RB_BUF_ETOOBIG = -2 /* the append would pass the cap; nothing (or, for
                         rb_buf_add_upto, only what fits) was added */
};

typedef struct {
  char *data; /* NULL until the first append; then NUL-terminated */
  size_t len;
  size_t alloc;
  size_t max; /* bytes of content allowed, the terminating NUL not counted */
} rb_buf;

/* Starts an empty buffer holding at most max bytes (SIZE_MAX: no cap).
 * Allocates nothing; a zeroed rb_buf is not valid, init it. */
void rb_buf_init(rb_buf *b, size_t max);
/* Frees the memory and leaves b empty with its cap (NULL-safe). */
void rb_buf_free(rb_buf *b);
/* Empties b, keeping its memory for reuse. */
void rb_buf_reset(rb_buf *b);

/* Appends n bytes, all or none. */
int rb_buf_add(rb_buf *b, const void *p, size_t n);
/* Appends a C string. */
int rb_buf_adds(rb_buf *b, const char *s);
/* Appends what fits of n bytes: RB_BUF_ETOOBIG when some were cut. */
int rb_buf_add_upto(rb_buf *b, const void *p, size_t n);
/* Appends printf-formatted text, all or none. */
int rb_buf_addf(rb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The contents, "" while empty; valid until the next append or free. */
const char *rb_buf_str(const rb_buf *b);
/* Hands the contents over (caller frees; "" is malloc'd for an empty
 * buffer), leaving b empty; NULL when out of memory. */
char *rb_buf_take(rb_buf *b);

#endif
