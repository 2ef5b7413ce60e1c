/* Node identities and the peer handshake: TLS 1.3 on a connected TCP socket.
 *
 * Two modes, chosen by the config:
 *  - certificate mode (`tls: {ca, cert, key}`): both sides present a
 *    certificate chained to the cluster CA; a node's name must be a SAN
 *    dNSName of its certificate;
 *  - lab mode (`cluster_key`): the decoded cluster key is a TLS 1.3 external
 *    PSK (with ECDHE, so recorded links stay secret if the key leaks later).
 * Either way, once TLS is up the client sends a HELLO inside it (protocol
 * version, node name, flags) and the server answers with its own or with a
 * refusal and its reason; the names must be in our `peers:` list (both
 * directions), and in certificate mode in the peer's certificate.
 *
 * After that exchange no TLS record ever follows on the socket (no session
 * tickets, no read-ahead): the TLS session is kept only to export the keys
 * of sealed frames (transport/seal.h), which then travel on the raw fd. */
#ifndef FERRY_TRANSPORT_TLS_H
#define FERRY_TRANSPORT_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "transport/auth.h"
#include "transport/seal.h"

/* 3: TLS 1.3 + sealed frames (2 was an HMAC handshake before TLS). */
#define TLS_PROTO_VERSION 3
#define TLS_HELLO_MAGIC "FERRYH3" /* 8 bytes with its NUL */
#define TLS_REFUSE_MAGIC "FERRYNO"
#define TLS_PSK_IDENTITY "ferry-cluster-key-v1"

struct tls_ident_cfg {
	const char *node;
	/* Certificate mode when cert is set (then ca and key are required). */
	const char *ca, *cert, *key;
	/* Lab mode: the decoded cluster key, AUTH_KEY_MIN..AUTH_KEY_MAX bytes. */
	const uint8_t *psk;
	size_t psk_len;
	/* Node names allowed at the other end of a link. */
	const char *const *peers;
	size_t npeers;
	int insecure; /* insecure_transport: frames unsealed (CRC32C only) */
};

struct tls_ident;

/* Loads certificates/keys and builds the TLS context. 0 or -errno with
 * reason ("cannot load certificate ...: ..."). Logs once which AEAD this
 * CPU prefers. */
int tls_ident_new(const struct tls_ident_cfg *cfg, struct tls_ident **out, char *reason,
		  size_t len);
/* Certificate mode: re-reads ca, cert and key for new links; links already
 * up keep theirs. On failure the old context stays. 0 or -errno + reason.
 * Lab mode: 0, nothing to do. */
int tls_ident_reload(struct tls_ident *id, char *reason, size_t len);
void tls_ident_free(struct tls_ident *id);
const char *tls_ident_node(const struct tls_ident *id);
int tls_ident_insecure(const struct tls_ident *id);
int tls_ident_cert_mode(const struct tls_ident *id);

/* An authenticated TLS session on a link. */
struct tls_session {
	void *ssl; /* SSL *, for key export only */
	int is_server;
	int aead; /* enum seal_aead both sides agreed on (SEAL_NONE: insecure) */
	char peer[AUTH_NAME_LEN];
};

/* The handshake on a connected socket, blocking or not (made non-blocking
 * for it, blocking again after): poll() against one deadline of timeout_ms.
 * expect: as client, the node we mean to reach (NULL: any allowed peer).
 * 0, or -errno with reason filled and logged (event=auth_refused):
 * -EACCES (authentication or name check failed, refused by the peer),
 * -EPROTO (not a ferry peer, other version), -ECONNRESET, -ETIMEDOUT,
 * -ENOMEM. */
int tls_handshake(struct tls_ident *id, int fd, int is_server, const char *expect,
		  int timeout_ms, struct tls_session *out, char *reason, size_t len);

/* The keys of stream_id on this session (both directions, sequence numbers
 * at 0). 0 or -EIO. */
int tls_stream_keys(const struct tls_session *s, uint32_t stream_id, struct seal_stream *out);

void tls_session_free(struct tls_session *s);

/* Logs whether the kernel offers TLS offload (TCP_ULP "tls"); ferry does
 * not use it, the line is for operators comparing hosts. */
void tls_probe_ktls(void);

#endif
