/* fanout.h: runs one command on many hosts from one process over libssh2,
 * with verified host keys, rolling batches, a failure threshold, timeouts,
 * capped output, and a pool that keeps one authenticated session per host. */
#ifndef RB_SSH_FANOUT_H
#define RB_SSH_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "stdlib/ssh/inventory.h"

/* Connection settings shared by every host of a pool ([ssh] config). */
typedef struct {
  const char *known_hosts;    /* NULL = ~/.ssh/known_hosts */
  const char *identity;       /* NULL = ~/.ssh/id_ed25519, then ~/.ssh/id_ecdsa */
  const char *user;           /* NULL = $USER */
  int port;                   /* 0 = 22 */
  int use_agent;              /* try ssh-agent first when SSH_AUTH_SOCK is set */
  int trust_on_first_use;     /* labs only: accept and record unknown keys */
  int64_t connect_timeout_ms; /* TCP + handshake + auth, 0 = 10 s */
} rb_ssh_settings;

typedef struct rb_ssh_pool rb_ssh_pool;

/* Copies s. Sessions are opened lazily by rb_ssh_run and kept until
 * rb_ssh_pool_free, which disconnects them. Caller frees. */
rb_ssh_pool *rb_ssh_pool_new(const rb_ssh_settings *s, char *err, size_t errlen);
void rb_ssh_pool_free(rb_ssh_pool *p);
/* SSH handshakes done so far (tests: reuse means one per host). */
long rb_ssh_pool_handshakes(const rb_ssh_pool *p);
/* Number of live sessions held. */
size_t rb_ssh_pool_size(const rb_ssh_pool *p);

/* A count given as a number or a percentage of the hosts ("3", "25%"). */
typedef struct {
  int value; /* -1 = not set */
  int pct;   /* value is a percentage */
} rb_ssh_count;

/* Parses "3" or "25%" (0..100). Returns 0 or -1 with err naming what. */
int rb_ssh_parse_count(const char *s, const char *what, rb_ssh_count *out, char *err,
                       size_t errlen);
/* Hosts per batch for n hosts (at least 1; n when unset). */
size_t rb_ssh_batch_size(rb_ssh_count batch, size_t n);
/* Failures tolerated for n hosts; SIZE_MAX when unset. */
size_t rb_ssh_fail_limit(rb_ssh_count max_fail, size_t n);

typedef struct {
  char *host, *address, *user;
  int port;
  int ok;        /* exit 0 and no error */
  int skipped;   /* never started: max_fail was exceeded first */
  int timed_out; /* the command outlived its timeout and was terminated */
  int truncated; /* stdout or stderr went over the cap */
  int reused;    /* ran on a session opened by an earlier command */
  int exit_code; /* -1 when none was received */
  char *signal;  /* "TERM" when the command died of a signal, else NULL */
  char *out, *errout;
  size_t out_len, err_len;
  int64_t duration_ms;
  char *error; /* NULL when ok; names the host, e.g. "ssh app-2 (10.0.0.2:22): ..." */
} rb_ssh_result;

typedef struct {
  size_t total, done, failed, running, skipped;
  int heartbeat;       /* nothing finished: only time passed */
  const char *waiting; /* the host running longest, NULL when none runs */
  int64_t elapsed_ms;  /* since the fan-out started */
} rb_ssh_progress;

/* "ssh: 3/5 hosts done, 1 failed, 2 running (waiting for app-4), 12 s". */
void rb_ssh_progress_line(const rb_ssh_progress *p, char *buf, size_t len);

typedef struct {
  int parallel;          /* hosts at once; 0 = 20 */
  rb_ssh_count batch;    /* rolling batches in inventory order */
  rb_ssh_count max_fail; /* stop starting hosts once failures exceed it */
  int64_t timeout_ms;    /* per command; 0 = none */
  size_t output_max;     /* bytes kept per stream; 0 = 64 KiB */
  /* Preflight: connect, verify the host key and authenticate, then stop: no
   * channel is opened, the command is not sent, an unknown key is not
   * recorded by trust_on_first_use. A host that got that far is ok (exit 0)
   * and its session stays pooled; timeout_ms then bounds the connection. */
  int preflight;
  /* Called as each host finishes (r is borrowed), as progress changes, and
   * for notes worth the timeline (a key trusted on first use). May be NULL. */
  void (*on_result)(void *arg, const rb_ssh_result *r);
  void (*on_progress)(void *arg, const rb_ssh_progress *p);
  void (*on_note)(void *arg, const char *host, const char *msg);
  void *arg;
} rb_ssh_opts;

/* Runs command on every host and fills *results (n entries, in host order;
 * caller frees with rb_ssh_results_free). Per-host failures are results, not
 * errors: returns -1 only when the run could not start (bad options, out of
 * memory), with err. */
int rb_ssh_run(rb_ssh_pool *p, const rb_ssh_host *hosts, size_t n, const char *command,
               const rb_ssh_opts *o, rb_ssh_result **results, char *err, size_t errlen);
void rb_ssh_results_free(rb_ssh_result *r, size_t n);

/* Key type of a private key file ("ssh-ed25519", "ssh-rsa", ...) from its
 * .pub sibling or the key itself; *encrypted set when it has a passphrase.
 * Returns 0 or -1 when it cannot tell. */
int rb_ssh_key_type(const char *path, char *buf, size_t len, int *encrypted);

#endif
