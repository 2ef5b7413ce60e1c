/* Peer links, set-up side: connect or accept, run the TLS handshake
 * (transport/tls.h), and exchange small sealed messages (OPEN, CONTROL,
 * ABORT) with blocking calls and deadlines. The engine uses this for its
 * control channel and to open a data link before handing the socket, with
 * the stream's keys, to the relay. */
#ifndef FERRY_TRANSPORT_PEER_H
#define FERRY_TRANSPORT_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "transport/frame.h"
#include "transport/seal.h"
#include "transport/tls.h"

struct json_object;

/* Largest message accepted on the set-up path (a VM spec fits easily). */
#define PEER_MSG_MAX (256u * 1024u)
/* The stream id of a link's own set-up and control messages. */
#define PEER_CTL_STREAM 0

/* One authenticated link. */
struct peer_link {
	int fd;
	char peer[AUTH_NAME_LEN]; /* the authenticated node name */
	struct seal_stream ctl;   /* stream PEER_CTL_STREAM, both directions */
	struct tls_session tls;   /* for the keys of further streams */
};

/* TCP connect + handshake as client. expect: the node we mean to reach;
 * the link is refused unless the peer authenticates as exactly that node
 * (NULL: any node in peers:). 0 or -errno with reason. */
int peer_connect(struct tls_ident *id, const char *host, int port, const char *expect,
		 int timeout_ms, struct peer_link **out, char *reason, size_t reason_len);
/* Handshake as server on an accepted socket (made blocking here). Takes
 * the fd, also on failure. */
int peer_accept(struct tls_ident *id, int fd, int timeout_ms, struct peer_link **out,
		char *reason, size_t reason_len);

/* The keys of a data stream on this link (stream_id != PEER_CTL_STREAM). */
int peer_link_stream_keys(struct peer_link *l, uint32_t stream_id, struct seal_stream *out);
/* Frees the link but keeps the socket open and returns it (for the relay). */
int peer_link_take_fd(struct peer_link *l);
/* Closes the socket and frees. NULL is fine. */
void peer_link_close(struct peer_link *l);

/* One frame with an uncompressed payload (text/JSON) on the control stream. */
int peer_send_msg(struct peer_link *l, uint8_t type, const char *payload, size_t len,
		  int timeout_ms);
/* Receives one frame of the control stream; payload NUL-terminated into buf
 * (cap includes NUL). -ETIMEDOUT, -ECONNRESET (peer closed), -EPROTO
 * (bad header), -EBADMSG (failed authentication or CRC), -EMSGSIZE (over cap).
 * After a failure the link is unusable (its sequence is lost). */
int peer_recv_msg(struct peer_link *l, int timeout_ms, struct frame_hdr *h, char *buf,
		  size_t cap);

/* Control messages: a JSON object in a CONTROL frame. */
int peer_send_json(struct peer_link *l, struct json_object *msg);
/* -errno with err ("no answer from the peer agent in time", "peer aborted: ..."). */
int peer_recv_json(struct peer_link *l, int timeout_ms, struct json_object **msg, char *err,
		   size_t errlen);

#endif
