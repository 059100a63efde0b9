/* knownhosts.h: host key verification against OpenSSH known_hosts files
 * (plain and hashed "|1|" names, [host]:port, wildcards, @revoked), the
 * OpenSSH SHA256 fingerprint, and the line an operator adds to trust a key. */
#ifndef RB_SSH_KNOWNHOSTS_H
#define RB_SSH_KNOWNHOSTS_H

#include <stddef.h>

typedef enum {
  RB_KH_OK = 0,  /* the key is listed for this host */
  RB_KH_UNKNOWN, /* nothing is listed for this host */
  RB_KH_CHANGED, /* other keys are listed for this host: refuse */
  RB_KH_REVOKED, /* the key is marked @revoked */
  RB_KH_CERT,    /* only a @cert-authority line covers the host: unsupported */
} rb_ssh_kh_status;

typedef struct rb_ssh_knownhosts rb_ssh_knownhosts;

/* Reads path. A missing file is an empty list (every host unknown); lines
 * that are not understood (other markers, unknown formats) are skipped, as
 * OpenSSH does; @cert-authority lines are kept to refuse the hosts they cover
 * by name. Caller frees with rb_ssh_knownhosts_free. */
rb_ssh_knownhosts *rb_ssh_knownhosts_load(const char *path, char *err, size_t errlen);
/* Parses text (for tests); name is used in messages. */
rb_ssh_knownhosts *rb_ssh_knownhosts_parse(const char *text, const char *name, char *err,
                                           size_t errlen);
void rb_ssh_knownhosts_free(rb_ssh_knownhosts *kh);
const char *rb_ssh_knownhosts_path(const rb_ssh_knownhosts *kh);

/* The name OpenSSH looks a host up by: "addr" on port 22, "[addr]:port"
 * otherwise. Returns 0 or -1 when buf is too small. */
int rb_ssh_knownhosts_name(const char *addr, int port, char *buf, size_t len);

/* Writes the libssh2 host key method preference for the key types listed
 * for the host ("ssh-ed25519,ecdsa-sha2-nistp256"), so the handshake asks
 * the server for a key we can verify. Returns the number of types (0: the
 * host is unknown and buf is left empty). */
int rb_ssh_knownhosts_methods(const rb_ssh_knownhosts *kh, const char *addr, int port,
                              char *buf, size_t len);

/* Checks the server's key blob (SSH wire format, which names its type).
 * known (may be NULL) receives the key types listed for the host, for
 * messages. */
rb_ssh_kh_status rb_ssh_knownhosts_check(const rb_ssh_knownhosts *kh, const char *addr,
                                         int port, const unsigned char *blob,
                                         size_t bloblen, char *known, size_t knownlen);

/* The known_hosts line ("[127.0.0.1]:2202 ssh-ed25519 AAAA...") that trusts
 * blob for the host. Caller frees. NULL on a malformed blob. */
char *rb_ssh_knownhosts_line(const char *addr, int port, const unsigned char *blob,
                             size_t bloblen);
/* Appends that line to the file the list was loaded from (trust on first
 * use) and to the list in memory. Returns 0 or -1 with err. */
int rb_ssh_knownhosts_add(rb_ssh_knownhosts *kh, const char *addr, int port,
                          const unsigned char *blob, size_t bloblen, char *err,
                          size_t errlen);

/* "SHA256:" + unpadded base64 of a SHA-256 digest, as ssh-keygen -l prints. */
void rb_ssh_fingerprint(const unsigned char digest[32], char *buf, size_t len);
/* The key type named at the start of a wire-format blob ("ssh-ed25519"),
 * written into buf. Returns 0 or -1 on a malformed blob. */
int rb_ssh_blob_type(const unsigned char *blob, size_t bloblen, char *buf, size_t len);

/* Base64 (standard alphabet). encode writes a NUL-terminated string, padded
 * unless nopad; returns its length or -1 when out is too small. decode
 * returns the number of bytes or -1 on bad input or a small out. */
long rb_ssh_base64_encode(const unsigned char *in, size_t n, char *out, size_t outlen,
                          int nopad);
long rb_ssh_base64_decode(const char *in, size_t n, unsigned char *out, size_t outlen);

/* HMAC-SHA1 as used by hashed known_hosts names. */
void rb_ssh_hmac_sha1(const unsigned char *key, size_t keylen, const unsigned char *msg,
                      size_t msglen, unsigned char out[20]);

#endif
