/* store.c: the run store's front: calls into whichever backend is open, so
 * the executor and the commands never name one. */
#include "runner/store.h"

int rb_store_acquire(rb_store *s, const char *key, const rb_owner *me, rb_lease **out,
                     rb_owner *holder, char *err, size_t errlen)
{
  return s->ops->acquire(s, key, me, out, holder, err, errlen);
}

int rb_store_holder(rb_store *s, const char *key, rb_owner *holder, char *err,
                    size_t errlen)
{
  return s->ops->holder(s, key, holder, err, errlen);
}

int rb_store_record_owner(rb_store *s, rb_lease *l, const rb_owner *me, char *err,
                          size_t errlen)
{
  return s->ops->record_owner(l, me, err, errlen);
}

void rb_store_release(rb_store *s, rb_lease *l)
{
  if (s != NULL)
    s->ops->release(l);
}

int rb_store_find_run(rb_store *s, const char *run, char *incident, size_t len, char *err,
                      size_t errlen)
{
  return s->ops->find_run(s, run, incident, len, err, errlen);
}

int rb_store_list_runs(rb_store *s, rb_run_cb cb, void *arg, char *err, size_t errlen)
{
  return s->ops->list_runs(s, cb, arg, err, errlen);
}

int rb_store_cancel(rb_store *s, const char *run, const char *by, const char *reason,
                    char *err, size_t errlen)
{
  return s->ops->cancel(s, run, by, reason, err, errlen);
}

int rb_store_cancelled(rb_store *s, const char *run, char *by, size_t blen, char *reason,
                       size_t rlen)
{
  return s->ops->cancelled(s, run, by, blen, reason, rlen);
}

int rb_store_put_doc(rb_store *s, const char *run, const char *name, const char *text,
                     size_t len, char *where, size_t wlen, char *err, size_t errlen)
{
  return s->ops->put_doc(s, run, name, text, len, where, wlen, err, errlen);
}

char *rb_store_get_doc(rb_store *s, const char *run, const char *name, int *absent,
                       char *err, size_t errlen)
{
  return s->ops->get_doc(s, run, name, absent, err, errlen);
}

void rb_store_free(rb_store *s)
{
  if (s != NULL)
    s->ops->free(s);
}
