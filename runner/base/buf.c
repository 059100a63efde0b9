/* buf.c: the capped growable byte buffer: doubling growth up to the cap,
 * so appends stay amortised O(1) and no caller writes its own realloc loop. */
#include "runner/base/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RB_BUF_FIRST 256

void rb_buf_init(rb_buf *b, size_t max)
{
  b->data = NULL;
  b->len = b->alloc = 0;
  b->max = max;
}

void rb_buf_free(rb_buf *b)
{
  if (b == NULL)
    return;
  free(b->data);
  rb_buf_init(b, b->max);
}

void rb_buf_reset(rb_buf *b)
{
  b->len = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

/* Makes room for n more bytes and the NUL; n is within the cap. */
static int reserve(rb_buf *b, size_t n)
{
  size_t need = b->len + n + 1;
  if (need <= b->alloc)
    return RB_BUF_OK;
  size_t a = b->alloc ? b->alloc : RB_BUF_FIRST;
  while (a < need)
    a = a > SIZE_MAX / 2 ? need : a * 2;
  /* no point allocating past what the cap allows */
  if (b->max < SIZE_MAX && a > b->max + 1)
    a = b->max + 1 > need ? b->max + 1 : need;
  char *p = realloc(b->data, a);
  if (p == NULL)
    return RB_BUF_ENOMEM;
  b->data = p;
  b->alloc = a;
  return RB_BUF_OK;
}

int rb_buf_add(rb_buf *b, const void *p, size_t n)
{
  if (n > b->max - b->len)
    return RB_BUF_ETOOBIG;
  int rc = reserve(b, n);
  if (rc != RB_BUF_OK)
    return rc;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return RB_BUF_OK;
}

int rb_buf_adds(rb_buf *b, const char *s)
{
  return rb_buf_add(b, s, strlen(s));
}

int rb_buf_add_upto(rb_buf *b, const void *p, size_t n)
{
  size_t room = b->max - b->len;
  if (n <= room)
    return rb_buf_add(b, p, n);
  int rc = room > 0 ? rb_buf_add(b, p, room) : RB_BUF_OK;
  return rc == RB_BUF_OK ? RB_BUF_ETOOBIG : rc;
}

int rb_buf_addf(rb_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return RB_BUF_ENOMEM;
  if ((size_t)n > b->max - b->len)
    return RB_BUF_ETOOBIG;
  int rc = reserve(b, (size_t)n);
  if (rc != RB_BUF_OK)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return RB_BUF_OK;
}

const char *rb_buf_str(const rb_buf *b)
{
  return b->data ? b->data : "";
}

char *rb_buf_take(rb_buf *b)
{
  char *p = b->data ? b->data : strdup("");
  rb_buf_init(b, b->max);
  return p;
}
