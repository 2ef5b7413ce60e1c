/* The lab-mode cluster key and node names.
 *
 * In lab mode (no `tls:` section in the config) every node holds the same
 * cluster key file; transport/tls.c uses its decoded bytes as a TLS 1.3
 * external pre-shared key. The key must be random and long enough to resist
 * offline guessing (a recorded handshake lets an attacker test candidate
 * keys at leisure), so it is written as hex or base64 of at least
 * AUTH_KEY_MIN random bytes; anything else is refused at start. */
#ifndef FERRY_TRANSPORT_AUTH_H
#define FERRY_TRANSPORT_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Name buffer width. Names are 1..63 bytes of [A-Za-z0-9._:@-]. */
#define AUTH_NAME_LEN 64
#define AUTH_KEY_MIN 32  /* decoded bytes */
#define AUTH_KEY_MAX 256 /* decoded bytes */

/* 1 if name is 1..63 bytes of the node-name alphabet. */
int auth_name_ok(const char *name);

/* Decodes a key file's text (hex, else base64, no whitespace) into key
 * (cap bytes). 0; -EINVAL (neither encoding, or fewer than AUTH_KEY_MIN
 * bytes), -EFBIG (more than cap), -ENOMEM. Pure: unit-tested and fuzzed. */
int auth_decode_key(const uint8_t *text, size_t n, uint8_t *key, size_t *key_len, size_t cap);

/* Reads a cluster key file into key (*key_len: in capacity, out length).
 * Trailing whitespace is trimmed so `echo ... > file` works. A file that
 * group or others can read is accepted with a warning in the log.
 * 0, or -errno with reason filled: -ENOENT/-EACCES/... (cannot open),
 * -EINVAL (not a regular file, not hex/base64, too short: "... at least 32
 * random bytes ..."), -EFBIG (larger than the capacity). */
int auth_load_key(const char *path, uint8_t *key, size_t *key_len, char *reason,
		  size_t reason_len);

#endif
