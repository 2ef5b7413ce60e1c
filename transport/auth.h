/* Peer handshake: protocol version check and mutual authentication of two
 * ferryd nodes that share a cluster key (HMAC-SHA256, OpenSSL libcrypto).
 *
 *   both sides send  HELLO (AUTH_HELLO_LEN bytes):
 *     "FERRYHS\0" | be16 version | be16 role | 32-byte nonce | 64-byte name
 *   both sides send  PROOF (32 bytes):
 *     HMAC-SHA256(key, "ferry-auth-v1" | be16 own role | own nonce |
 *                      peer nonce | own name field | peer name field)
 *   and check the peer's PROOF.
 *
 * The core is sans-IO (auth_new / auth_hello / auth_on_peer_hello /
 * auth_proof / auth_check_proof) so the io_uring loop can drive it;
 * auth_handshake_fd() runs the whole exchange on a socket for everyone else.
 * The handshake authenticates the peer only: frames after it are protected by
 * a CRC, not a MAC (see docs/protocol.md). */
#ifndef FERRY_TRANSPORT_AUTH_H
#define FERRY_TRANSPORT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_MAGIC "FERRYHS" /* 8 bytes on the wire with its NUL */
#define AUTH_MAGIC_LEN 8
/* 2: frames may carry FRAME_F_ZSTD, which a version-1 agent refuses
 * mid-stream; the handshake refuses the mix up front instead. */
#define AUTH_VERSION 2
#define AUTH_ROLE_CLIENT 1 /* the side that connected */
#define AUTH_ROLE_SERVER 2 /* the side that accepted */
#define AUTH_NONCE_LEN 32
/* Name field width. Names are 1..63 bytes of [A-Za-z0-9._:@-], NUL-padded,
 * so a peer_name buffer of AUTH_NAME_LEN bytes always fits one. */
#define AUTH_NAME_LEN 64
#define AUTH_HELLO_LEN (AUTH_MAGIC_LEN + 2 + 2 + AUTH_NONCE_LEN + AUTH_NAME_LEN) /* 108 */
#define AUTH_PROOF_LEN 32
#define AUTH_KEY_MIN 16
#define AUTH_KEY_MAX 1024

struct auth;

/* Reads a cluster key file into key (*key_len: in capacity, out length).
 * Trailing whitespace is trimmed so `echo ... > file` works. A file that
 * group or others can read is accepted with a warning in the log.
 * 0, or -errno with reason filled: -ENOENT/-EACCES/... (cannot open),
 * -EINVAL ("cluster key ... too short", not a regular file), -EFBIG (larger
 * than the capacity). */
int auth_load_key(const char *path, uint8_t *key, size_t *key_len, char *reason,
		  size_t reason_len);

/* key: AUTH_KEY_MIN..AUTH_KEY_MAX bytes (copied); my_name: see AUTH_NAME_LEN.
 * Draws the nonce. 0, -EINVAL, -ENOMEM or -EIO (no randomness). */
int auth_new(struct auth **out, const uint8_t *key, size_t key_len, int is_server,
	     const char *my_name);
void auth_free(struct auth *a);

void auth_hello(struct auth *a, uint8_t out[AUTH_HELLO_LEN]);

/* 0, or -EPROTO (bad magic, bad role, role clash, echoed nonce, bad name),
 * -EPROTONOSUPPORT (other handshake version). Reason in auth_reason(). */
int auth_on_peer_hello(struct auth *a, const uint8_t in[AUTH_HELLO_LEN]);

/* Only after auth_on_peer_hello succeeded (else the proof is all zeros and
 * auth_check_proof fails). */
void auth_proof(struct auth *a, uint8_t out[AUTH_PROOF_LEN]);

/* 0, -EACCES ("peer <name> failed authentication (wrong cluster key?)"),
 * -EINVAL (called out of order), -EIO (crypto library failure). */
int auth_check_proof(struct auth *a, const uint8_t in[AUTH_PROOF_LEN]);

/* The name the peer claimed in its HELLO ("" before); authenticated only
 * once auth_check_proof returned 0. */
const char *auth_peer_name(const struct auth *a);

/* Why the last step failed ("" if none did). */
const char *auth_reason(const struct auth *a);

/* The whole handshake on a connected socket, blocking or not: poll() against
 * a deadline of timeout_ms for all of it, never sleeps, reads no byte past the
 * peer's PROOF (frames follow on the same socket). Returns 0 and fills
 * peer_name, or -errno with reason filled and logged
 * (event=auth_refused peer_addr=... reason=...): -EPROTO (garbage, bad
 * HELLO), -EPROTONOSUPPORT, -EACCES (wrong key), -ECONNRESET (peer closed),
 * -ETIMEDOUT (peer silent), -EINVAL (bad arguments). */
int auth_handshake_fd(int fd, const uint8_t *key, size_t key_len, int is_server,
		      const char *my_name, int timeout_ms, char *peer_name,
		      size_t peer_name_len, char *reason, size_t reason_len);

#endif
