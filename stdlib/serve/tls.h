/* tls.h: the listener's optional HTTPS: [serve] tls_cert_file and
 * tls_key_file read and checked at start, handed to libmicrohttpd. */
#ifndef RB_SERVE_TLS_H
#define RB_SERVE_TLS_H

#include <stddef.h>

#include "stdlib/rb_host.h"

/* GnuTLS priorities: its defaults, but TLS 1.2 and 1.3 only. */
#define RB_SERVE_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

typedef struct {
  char *cert; /* PEM, NUL-terminated; NULL: plain HTTP */
  char *key;
} rb_serve_tls;

/* Reads the two files when configured. Both or neither must be set; each
 * must be readable PEM, the key unencrypted and the certificate's. Returns
 * 0 (out->cert NULL when TLS is off) or -1 with err naming the key and the
 * file. Fail closed: a problem never falls back to plain HTTP. */
int rb_serve_tls_load(const rb_config *cfg, rb_serve_tls *out, char *err, size_t errlen);
/* Wipes the key. NULL-safe, idempotent. */
void rb_serve_tls_clear(rb_serve_tls *t);

#endif
