/* host_services.c: the runner side of the host interface (stdlib/rb_host.h)
 * that is not about the run's gates: config reads, redaction, timelines,
 * approvals and the sandbox's memory budget, each a thin call inward. */
#include <pthread.h>
#include <stddef.h>

#include "runner/approval.h"
#include "runner/base/redact.h"
#include "runner/config.h"
#include "runner/stats.h"
#include "runner/base/util.h"
#include "runner/supervise.h"
#include "runner/timeline.h"
#include "sandbox/sandbox.h"
#include "stdlib/rb_host.h"

/* Used when a C module runs outside a sandbox (unit tests, fuzzers). */
#define RB_HOST_DEF_MEMORY ((size_t)64 << 20)

size_t rb_host_memory_limit(lua_State *L)
{
  sb_state *sb = sb_from_lua(L);
  return sb ? sb_memory_limit(sb) : RB_HOST_DEF_MEMORY;
}

const char *rb_host_config_file(const rb_config *c)
{
  return rb_config_file(c);
}

int rb_host_config_int(const rb_config *c, const char *section, const char *key,
                       long *out, char *err, size_t errlen)
{
  return rb_config_get_int(c, section, key, out, err, errlen);
}

int rb_host_config_bool(const rb_config *c, const char *section, const char *key,
                        int *out, char *err, size_t errlen)
{
  return rb_config_get_bool(c, section, key, out, err, errlen);
}

int rb_host_config_duration(const rb_config *c, const char *section, const char *key,
                            int64_t *out_ms, char *err, size_t errlen)
{
  return rb_config_get_duration(c, section, key, out_ms, err, errlen);
}

const char *rb_host_config_string(const rb_config *c, const char *section,
                                  const char *key)
{
  return rb_config_get_string(c, section, key);
}

char *rb_host_config_secret(const rb_config *c, const char *section, const char *key,
                            int *absent, char *err, size_t errlen)
{
  return rb_config_secret(c, section, key, absent, err, errlen);
}

int rb_host_config_secret_env(const rb_config *c, const char *var, char *where,
                              size_t len)
{
  return rb_config_secret_env(c, var, where, len);
}

void rb_host_config_each_section(const rb_config *c, const char *prefix,
                                 void (*fn)(const char *section, void *arg), void *arg)
{
  rb_config_each_section(c, prefix, fn, arg);
}

char *rb_host_redact(const char *s)
{
  return rb_redact_str(s);
}

rb_timeline *rb_host_timeline_open(const char *path, int do_fsync, int *repaired,
                                   char *err, size_t errlen)
{
  return rb_timeline_open(path, do_fsync, repaired, err, errlen);
}

int rb_host_timeline_append(rb_timeline *tl, json_t *ev, char *err, size_t errlen)
{
  return rb_timeline_append(tl, ev, err, errlen);
}

void rb_host_timeline_close(rb_timeline *tl)
{
  rb_timeline_free(tl);
}

int rb_host_approval_answer(const char *state_dir, const char *run_id,
                            const char *step_id, const rb_approval_answer *a, char *msg,
                            size_t msglen)
{
  return rb_approval_answer_gate(state_dir, run_id, step_id, a, msg, msglen);
}

json_t *rb_host_approval_pending(const char *state_dir, char *err, size_t errlen)
{
  return rb_approval_pending(state_dir, err, errlen);
}

/* The listener asks at every scrape, possibly from two threads at once: one
 * cache, so that each scrape re-reads only the timelines that changed. */
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static rb_stats_cache *stats_cache;

json_t *rb_host_stats(const char *state_dir, int64_t since_ms, char *err, size_t errlen)
{
  json_t *doc = NULL;
  pthread_mutex_lock(&stats_mu);
  if (stats_cache == NULL)
    stats_cache = rb_stats_cache_new();
  if (stats_cache == NULL)
    rb_err(err, errlen, "out of memory");
  else
    doc = rb_stats_collect(stats_cache, state_dir, since_ms, rb_now_wall_ms(), NULL, 0,
                           err, errlen);
  pthread_mutex_unlock(&stats_mu);
  return doc;
}

int rb_host_approval_refuse(const char *state_dir, const char *run_id,
                            const char *step_id, const rb_approval_answer *a,
                            const char *why, char *msg, size_t msglen)
{
  return rb_approval_refuse(state_dir, run_id, step_id, a, why, msg, msglen);
}

json_t *rb_host_approval_status(const char *state_dir, const char *run_id,
                                const char *step_id, char *err, size_t errlen)
{
  return rb_approval_status(state_dir, run_id, step_id, err, errlen);
}

void rb_host_command_started(pid_t pgid, const char *summary)
{
  rb_supervise_command_started(pgid, summary);
}

void rb_host_command_ended(pid_t pgid)
{
  rb_supervise_command_ended(pgid);
}
