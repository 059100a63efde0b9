/* sha256.h: SHA-256 (FIPS 180-4) of a buffer, for the timeline's hash chain
 * and http's write intents. Built in so the core binary does not load
 * libcrypto at every start. */
#ifndef RB_SHA256_H
#define RB_SHA256_H

#include <stddef.h>

/* Writes the 64 lowercase hex digits of SHA-256(buf[0..len)) and a NUL. */
void rb_sha256_hex(const void *buf, size_t len, char out[65]);

#endif
