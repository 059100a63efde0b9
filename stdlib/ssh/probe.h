/* probe.h: one blocking handshake that fetches a server's ed25519 or ECDSA
 * host key, for the message that tells an operator which line to add. */
#ifndef RB_SSH_PROBE_H
#define RB_SSH_PROBE_H

#include <stddef.h>
#include <stdint.h>

/* Connects to addr:port within timeout_ms, asks for an ed25519 or ECDSA host
 * key and writes its known_hosts line (malloc'd, into *line) and its SHA256
 * fingerprint. The key is not trusted by this: it is printed for the
 * operator to check out of band. Returns 0 or -1 with err. */
int rb_ssh_probe_hostkey(const char *addr, int port, int64_t timeout_ms, char **line,
                         char *fp, size_t fplen, char *err, size_t errlen);

#endif
