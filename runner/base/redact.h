/* redact.h: the process-wide set of secret values that must never reach the
 * timeline, the terminal or logs, and the functions that scrub them out. */
#ifndef RB_REDACT_H
#define RB_REDACT_H

#include <jansson.h>
#include <stddef.h>

#define RB_REDACTED "[REDACTED]"

/* Registers a secret value (copied). Values shorter than 4 bytes are refused,
 * as scrubbing them would mangle ordinary text. Returns 0 or -1. The set is
 * process-wide on purpose: every output path must see every secret. */
int rb_redact_add(const char *secret);
/* Forgets every secret, wiping the copies (explicit_bzero). */
void rb_redact_clear(void);
/* Returns a malloc'd copy of s with every registered secret replaced by
 * RB_REDACTED, and the userinfo and sensitive query parameters of URLs
 * (token=, key=, password=, secret=, signature=) masked. Caller frees. */
char *rb_redact_str(const char *s);
/* Scrubs every string in v in place, and masks the values of object members
 * whose key names a credential (authorization, cookie, password, token,
 * secret, api_key, private-token, x-api-key). */
void rb_redact_json(json_t *v);

#endif
