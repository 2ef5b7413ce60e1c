/* Peer links, set-up side: connect or accept, authenticate, and exchange
 * small framed messages (OPEN, CONTROL, ABORT) with blocking calls and
 * deadlines. The engine uses this for its control channel and to open a data
 * link before handing the socket to the relay, which takes over the bytes. */
#ifndef FERRY_TRANSPORT_PEER_H
#define FERRY_TRANSPORT_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "transport/frame.h"

/* Largest message accepted on the set-up path (a VM spec fits easily). */
#define PEER_MSG_MAX (256u * 1024u)

struct peer_key {
	uint8_t key[256];
	size_t len;
	char node[64]; /* our own node name, sent in the handshake */
};

/* TCP connect + handshake as client. reason says what failed. */
int peer_connect(const struct peer_key *k, const char *host, int port, int timeout_ms,
		 int *fd_out, char *peer_name, size_t peer_name_len, char *reason, size_t reason_len);
/* Handshake as server on an accepted socket (made blocking here). */
int peer_accept(const struct peer_key *k, int fd, int timeout_ms, char *peer_name,
		size_t peer_name_len, char *reason, size_t reason_len);

/* One frame with an uncompressed payload (text/JSON). */
int peer_send_msg(int fd, uint8_t type, uint32_t stream_id, const char *payload, size_t len,
		  int timeout_ms);
/* Receives one frame; payload NUL-terminated into buf (cap includes NUL).
 * -ETIMEDOUT, -ECONNRESET (peer closed), -EPROTO/-EBADMSG (bad frame),
 * -EMSGSIZE (over cap). */
int peer_recv_msg(int fd, int timeout_ms, struct frame_hdr *h, char *buf, size_t cap);

#endif
