#include "transport/peer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/auth.h"
#include "transport/link.h"

int peer_connect(const struct peer_key *k, const char *host, int port, int timeout_ms,
		 int *fd_out, char *peer_name, size_t peer_name_len, char *reason, size_t reason_len)
{
	int fd = -1, r;

	r = link_connect_tcp(host, port, timeout_ms, &fd);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot connect to peer %s:%d: %s", host, port,
			 strerror(-r));
		return r;
	}
	r = auth_handshake_fd(fd, k->key, k->len, 0, k->node, timeout_ms, peer_name,
			      peer_name_len, reason, reason_len);
	if (r < 0) {
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

int peer_accept(const struct peer_key *k, int fd, int timeout_ms, char *peer_name,
		size_t peer_name_len, char *reason, size_t reason_len)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	link_tune_peer(fd);
	return auth_handshake_fd(fd, k->key, k->len, 1, k->node, timeout_ms, peer_name,
				 peer_name_len, reason, reason_len);
}

int peer_send_msg(int fd, uint8_t type, uint32_t stream_id, const char *payload, size_t len,
		  int timeout_ms)
{
	struct frame_hdr h = {FRAME_VERSION, type, 0, stream_id, (uint32_t)len, (uint32_t)len, 0};
	uint8_t hdr[FRAME_HDR_LEN];
	int r;

	if (len > PEER_MSG_MAX)
		return -EMSGSIZE;
	frame_hdr_encode(&h, hdr);
	h.crc = frame_crc(hdr, payload, len);
	frame_hdr_encode(&h, hdr);
	r = link_send_all(fd, hdr, sizeof(hdr), timeout_ms);
	if (r == 0 && len)
		r = link_send_all(fd, payload, len, timeout_ms);
	return r;
}

int peer_recv_msg(int fd, int timeout_ms, struct frame_hdr *h, char *buf, size_t cap)
{
	uint8_t hdr[FRAME_HDR_LEN];
	int r;

	r = link_recv_all(fd, hdr, sizeof(hdr), timeout_ms);
	if (r < 0)
		return r;
	r = frame_hdr_decode(hdr, sizeof(hdr), h);
	if (r < 0)
		return r;
	/* Set-up messages are never compressed; refuse rather than decode. */
	if (h->flags & FRAME_F_COMPRESSED)
		return -EPROTO;
	if (h->wire_len + 1 > cap || h->wire_len > PEER_MSG_MAX)
		return -EMSGSIZE;
	r = link_recv_all(fd, buf, h->wire_len, timeout_ms);
	if (r < 0)
		return r;
	buf[h->wire_len] = '\0';
	return frame_check(h, hdr, buf);
}
