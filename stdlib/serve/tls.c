/* tls.c: the listener's certificate and key: read whole, parsed with
 * OpenSSL's libcrypto to fail at start (naming the file), not at handshake. */
#include "stdlib/serve/tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

#define PEM_MAX (1024 * 1024)

/* A whole small file as a NUL-terminated string, or NULL with err. */
static char *slurp(const char *key, const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0;
  if (f == NULL) {
    rb_err(err, errlen, "[serve] %s: %s: %s", key, path, strerror(errno));
    return NULL;
  }
  buf = malloc(PEM_MAX + 1);
  if (buf)
    n = fread(buf, 1, PEM_MAX + 1, f);
  int bad = buf == NULL || ferror(f) || n > PEM_MAX || n == 0;
  fclose(f);
  if (bad) {
    rb_err(err, errlen, "[serve] %s: %s: %s", key, path,
           buf == NULL ? "out of memory"
           : n == 0    ? "empty or unreadable"
                       : "larger than 1 MiB");
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* Refuses a passphrase: an encrypted key must not make the listener prompt. */
static int no_passphrase(char *buf, int size, int rw, void *u)
{
  (void)buf, (void)size, (void)rw, (void)u;
  return -1;
}

/* The key is a PEM private key and belongs to the certificate. */
static int check_pair(const rb_serve_tls *t, const char *cert_path, const char *key_path,
                      char *err, size_t errlen)
{
  BIO *cb = BIO_new_mem_buf(t->cert, -1), *kb = BIO_new_mem_buf(t->key, -1);
  X509 *x = cb ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
  EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
  int rc = -1;
  if (x == NULL)
    rb_err(err, errlen, "[serve] tls_cert_file: %s: not a PEM certificate", cert_path);
  else if (k == NULL)
    rb_err(err, errlen,
           "[serve] tls_key_file: %s: not a PEM private key (or one with a passphrase)",
           key_path);
  else if (X509_check_private_key(x, k) != 1)
    rb_err(err, errlen,
           "[serve] tls_key_file: %s: not the key of the certificate in tls_cert_file %s",
           key_path, cert_path);
  else
    rc = 0;
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cb);
  BIO_free(kb);
  return rc;
}

int rb_serve_tls_load(const rb_config *cfg, rb_serve_tls *out, char *err, size_t errlen)
{
  const char *cert = rb_host_config_string(cfg, "serve", "tls_cert_file");
  const char *key = rb_host_config_string(cfg, "serve", "tls_key_file");
  memset(out, 0, sizeof *out);
  if (cert == NULL && key == NULL)
    return 0;
  if (cert == NULL || key == NULL)
    return rb_err(err, errlen, "[serve] %s is set without %s: set both for HTTPS",
                  cert ? "tls_cert_file" : "tls_key_file",
                  cert ? "tls_key_file" : "tls_cert_file");
  out->cert = slurp("tls_cert_file", cert, err, errlen);
  out->key = out->cert ? slurp("tls_key_file", key, err, errlen) : NULL;
  if (out->key == NULL || check_pair(out, cert, key, err, errlen) != 0) {
    rb_serve_tls_clear(out);
    return -1;
  }
  return 0;
}

void rb_serve_tls_clear(rb_serve_tls *t)
{
  if (t == NULL)
    return;
  if (t->key)
    OPENSSL_cleanse(t->key, strlen(t->key));
  free(t->key);
  free(t->cert);
  t->key = t->cert = NULL;
}
