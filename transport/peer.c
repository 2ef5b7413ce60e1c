#include "transport/peer.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/link.h"

/* Handshake done on fd: builds the link. Closes fd on failure. */
static int link_up(struct tls_ident *id, int fd, int is_server, const char *expect,
		   int timeout_ms, struct peer_link **out, char *reason, size_t reason_len)
{
	struct peer_link *l = calloc(1, sizeof(*l));
	int r = -ENOMEM;

	if (!l) {
		snprintf(reason, reason_len, "out of memory");
		goto out_close;
	}
	r = tls_handshake(id, fd, is_server, expect, timeout_ms, &l->tls, reason, reason_len);
	if (r < 0)
		goto out_close;
	r = tls_stream_keys(&l->tls, PEER_CTL_STREAM, &l->ctl);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot derive the link's keys");
		goto out_close;
	}
	l->fd = fd;
	snprintf(l->peer, sizeof(l->peer), "%s", l->tls.peer);
	*out = l;
	return 0;
out_close:
	if (l)
		tls_session_free(&l->tls);
	free(l);
	close(fd);
	return r;
}

int peer_connect(struct tls_ident *id, const char *host, int port, const char *expect,
		 int timeout_ms, struct peer_link **out, char *reason, size_t reason_len)
{
	int fd = -1, r;

	r = link_connect_tcp(host, port, timeout_ms, &fd);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot connect to peer %s:%d: %s", host, port,
			 strerror(-r));
		return r;
	}
	return link_up(id, fd, 0, expect, timeout_ms, out, reason, reason_len);
}

int peer_accept(struct tls_ident *id, int fd, int timeout_ms, struct peer_link **out,
		char *reason, size_t reason_len)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	link_tune_peer(fd);
	return link_up(id, fd, 1, NULL, timeout_ms, out, reason, reason_len);
}

int peer_link_stream_keys(struct peer_link *l, uint32_t stream_id, struct seal_stream *out)
{
	if (stream_id == PEER_CTL_STREAM)
		return -EINVAL;
	return tls_stream_keys(&l->tls, stream_id, out);
}

int peer_link_take_fd(struct peer_link *l)
{
	int fd = l->fd;

	tls_session_free(&l->tls);
	seal_stream_wipe(&l->ctl);
	free(l);
	return fd;
}

void peer_link_close(struct peer_link *l)
{
	if (l)
		close(peer_link_take_fd(l));
}

int peer_send_msg(struct peer_link *l, uint8_t type, const char *payload, size_t len,
		  int timeout_ms)
{
	struct frame_hdr h = {FRAME_VERSION, type, 0, PEER_CTL_STREAM, (uint32_t)len, (uint32_t)len, 0};
	uint8_t *fr;
	ssize_t n;
	int r;

	if (!l)
		return -ENOTCONN;
	if (len > PEER_MSG_MAX)
		return -EMSGSIZE;
	fr = malloc(FRAME_HDR_LEN + len + FRAME_TAG_LEN);
	if (!fr)
		return -ENOMEM;
	frame_hdr_encode(&h, fr);
	if (len)
		memcpy(fr + FRAME_HDR_LEN, payload, len);
	h.crc = frame_crc(fr, payload, len);
	frame_hdr_encode(&h, fr);
	n = seal_frame(&l->ctl.tx, l->ctl.tx_seq++, fr);
	r = n < 0 ? (int)n : link_send_all(l->fd, fr, (size_t)n, timeout_ms);
	free(fr);
	return r;
}

int peer_recv_msg(struct peer_link *l, int timeout_ms, struct frame_hdr *h, char *buf, size_t cap)
{
	uint8_t hdr[FRAME_HDR_LEN];
	size_t extra;
	int r;

	if (!l)
		return -ENOTCONN;
	extra = seal_overhead(&l->ctl.rx);
	r = link_recv_all(l->fd, hdr, sizeof(hdr), timeout_ms);
	if (r < 0)
		return r;
	r = frame_hdr_decode(hdr, sizeof(hdr), h);
	if (r < 0)
		return r;
	/* Set-up messages are never compressed; refuse rather than decode. */
	if (h->flags & FRAME_F_COMPRESSED)
		return -EPROTO;
	if (h->wire_len + 1 + extra > cap || h->wire_len > PEER_MSG_MAX)
		return -EMSGSIZE;
	if (frame_wire_size(h) - FRAME_HDR_LEN != h->wire_len + extra)
		return -EBADMSG; /* sealed on an insecure link or the reverse */
	r = link_recv_all(l->fd, buf, h->wire_len + extra, timeout_ms);
	if (r < 0)
		return r;
	r = seal_open(&l->ctl.rx, l->ctl.rx_seq++, h, hdr, (uint8_t *)buf);
	buf[h->wire_len] = '\0';
	return r;
}

int peer_send_json(struct peer_link *l, struct json_object *msg)
{
	const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);

	return peer_send_msg(l, FRAME_CONTROL, s, strlen(s), 10000);
}

int peer_recv_json(struct peer_link *l, int timeout_ms, struct json_object **msg, char *err,
		   size_t errlen)
{
	struct frame_hdr h;
	char *buf = malloc(PEER_MSG_MAX + 1 + FRAME_TAG_LEN);
	int r;

	*msg = NULL;
	if (!buf)
		return -ENOMEM;
	r = peer_recv_msg(l, timeout_ms, &h, buf, PEER_MSG_MAX + 1 + FRAME_TAG_LEN);
	if (r < 0) {
		snprintf(err, errlen, "%s",
			 r == -ETIMEDOUT ? "no answer from the peer agent in time"
			 : r == -ECONNRESET ? "the peer agent closed the control link"
			 : r == -EBADMSG ? "frame on the control link failed authentication"
			 : r == -EPROTO ? "bad frame on the control link"
					 : strerror(-r));
		goto out;
	}
	if (h.type == FRAME_ABORT) {
		snprintf(err, errlen, "peer aborted: %s", buf);
		r = -ECONNABORTED;
		goto out;
	}
	if (h.type != FRAME_CONTROL) {
		snprintf(err, errlen, "unexpected %s frame on the control link", frame_type_name(h.type));
		r = -EPROTO;
		goto out;
	}
	*msg = json_tokener_parse(buf);
	if (!*msg || !json_object_is_type(*msg, json_type_object)) {
		if (*msg)
			json_object_put(*msg);
		*msg = NULL;
		snprintf(err, errlen, "control message is not a JSON object");
		r = -EPROTO;
	}
out:
	free(buf);
	return r;
}
