/* store.h: the run store: who owns a run (an exclusive lease held by the
 * live executor), the exec lock on (runbook, key), cancel requests, and
 * finding and listing runs. An interface with the state dir as its embedded
 * backend, so a shared database can back several machines later. */
#ifndef RB_STORE_H
#define RB_STORE_H

#include <stddef.h>

typedef struct rb_store rb_store;
typedef struct rb_lease rb_lease;

/* Who holds a lease: enough for an operator to find the process. */
typedef struct {
  long pid;
  char user[64];  /* the account of the real uid, not $USER */
  char host[256]; /* gethostname() */
  char since[32]; /* UTC, when the lease was taken */
  char run[64];   /* the run the holder executes */
  char what[64];  /* "exec", "resume", "cancel" */
} rb_owner;

/* One run as the store sees it, for `runbook runs`. */
typedef struct {
  char run[64];
  char incident[128];
  char runbook[256];
  char mode[16];
  char state[16]; /* running, waiting, interrupted, done */
  char step[256]; /* the last step that started, "" before the first */
  char since[32]; /* when the run (or its last resume) started */
  char outcome[32];
  int live;       /* a process holds the run's lease */
  rb_owner owner; /* when live */
} rb_run_info;

typedef int (*rb_run_cb)(const rb_run_info *r, void *arg);

/* A backend. Every function returns 0 or -1 with err unless it says more. */
typedef struct {
  const char *name;
  /* Takes lease `key` ("run/<id>" or "exec/<runbook>/<value>") for me.
   * Returns 0 with *out, 1 when a live process holds it (*holder filled), or
   * -1. A lease dies with the last process holding it, by construction. */
  int (*acquire)(rb_store *s, const char *key, const rb_owner *me, rb_lease **out,
                 rb_owner *holder, char *err, size_t errlen);
  /* Returns 1 with *holder when lease key is held, 0 when free, -1. */
  int (*holder)(rb_store *s, const char *key, rb_owner *holder, char *err, size_t errlen);
  /* Rewrites what the lease says about its holder. */
  int (*record_owner)(rb_lease *l, const rb_owner *me, char *err, size_t errlen);
  void (*release)(rb_lease *l); /* NULL-safe */
  /* The incident whose journal holds run. */
  int (*find_run)(rb_store *s, const char *run, char *incident, size_t len, char *err,
                  size_t errlen);
  /* Calls cb for every run, oldest first; a non-zero cb stops the walk. */
  int (*list_runs)(rb_store *s, rb_run_cb cb, void *arg, char *err, size_t errlen);
  /* Asks the run's executor to stop at its next safe point. Returns 1 when
   * a cancel was asked before (the first one stands). */
  int (*cancel)(rb_store *s, const char *run, const char *by, const char *reason,
                char *err, size_t errlen);
  /* Returns 1 with who asked and why when run has a cancel request, else 0. */
  int (*cancelled)(rb_store *s, const char *run, char *by, size_t blen, char *reason,
                   size_t rlen);
  void (*free)(rb_store *s);
  /* A document kept with a run (name: "plan.json"), replaced whole and
   * durably; where says where, for the operator. */
  int (*put_doc)(rb_store *s, const char *run, const char *name, const char *text,
                 size_t len, char *where, size_t wlen, char *err, size_t errlen);
  /* The document (malloc'd, NUL-terminated), or NULL: *absent is 1 when
   * the run has none, else err says why. */
  char *(*get_doc)(rb_store *s, const char *run, const char *name, int *absent, char *err,
                   size_t errlen);
} rb_store_ops;

struct rb_store {
  const rb_store_ops *ops;
};

/* The state-dir backend: <state_dir>/runs/<run>.lock, <state_dir>/locks/,
 * cancel requests next to the run's lock, journals under incidents/. Free
 * with rb_store_free. */
rb_store *rb_store_open_dir(const char *state_dir, char *err, size_t errlen);
void rb_store_free(rb_store *s);
/* The state-dir backend's list_runs (store_list.c): every run in the
 * journals under <dir>/incidents, its state told by its lease. */
int rb_store_dir_list(rb_store *s, const char *dir, rb_run_cb cb, void *arg, char *err,
                      size_t errlen);

/* The state-dir backend's documents (store_docs.c): <dir>/runs/<run>.<name>. */
int rb_store_dir_put_doc(const char *dir, const char *run, const char *name,
                         const char *text, size_t len, char *where, size_t wlen,
                         char *err, size_t errlen);
char *rb_store_dir_get_doc(const char *dir, const char *run, const char *name,
                           int *absent, char *err, size_t errlen);

/* Fills me with this process, the real account, the host and now. */
void rb_owner_self(rb_owner *me, const char *run, const char *what);
/* "pid 123 (alice@host, exec of run R since T)" */
void rb_owner_describe(const rb_owner *o, char *buf, size_t len);

/* Lease keys: "run/<run>" and "exec/<runbook>/<name>=<value>". */
int rb_store_run_key(const char *run, char *out, size_t len);
int rb_store_exec_key(const char *runbook, const char *name, const char *value, char *out,
                      size_t len);

/* Thin wrappers over the backend's ops. */
int rb_store_acquire(rb_store *s, const char *key, const rb_owner *me, rb_lease **out,
                     rb_owner *holder, char *err, size_t errlen);
int rb_store_holder(rb_store *s, const char *key, rb_owner *holder, char *err,
                    size_t errlen);
int rb_store_record_owner(rb_store *s, rb_lease *l, const rb_owner *me, char *err,
                          size_t errlen);
void rb_store_release(rb_store *s, rb_lease *l);
int rb_store_find_run(rb_store *s, const char *run, char *incident, size_t len, char *err,
                      size_t errlen);
int rb_store_list_runs(rb_store *s, rb_run_cb cb, void *arg, char *err, size_t errlen);
int rb_store_cancel(rb_store *s, const char *run, const char *by, const char *reason,
                    char *err, size_t errlen);
int rb_store_cancelled(rb_store *s, const char *run, char *by, size_t blen, char *reason,
                       size_t rlen);
int rb_store_put_doc(rb_store *s, const char *run, const char *name, const char *text,
                     size_t len, char *where, size_t wlen, char *err, size_t errlen);
char *rb_store_get_doc(rb_store *s, const char *run, const char *name, int *absent,
                       char *err, size_t errlen);

#endif
