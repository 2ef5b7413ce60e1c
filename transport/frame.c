#include "transport/frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "transport/crc32c.h"

/* Per thread, because decoding runs on the I/O loop and on codec workers at
 * once; a shared buffer would hand one thread another's reason. */
static __thread char t_last_err[160];

void frame_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t_last_err, sizeof(t_last_err), fmt, ap);
	va_end(ap);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_LEN])
{
	out[0] = h->version;
	out[1] = h->type;
	put_be16(out + 2, h->flags);
	put_be32(out + 4, h->stream_id);
	put_be32(out + 8, h->wire_len);
	put_be32(out + 12, h->raw_len);
	put_be32(out + 16, h->crc);
}

int frame_hdr_decode(const uint8_t *buf, size_t len, struct frame_hdr *h)
{
	struct frame_hdr t;

	if (len < FRAME_HDR_LEN)
		return -EAGAIN;
	t.version = buf[0];
	t.type = buf[1];
	t.flags = get_be16(buf + 2);
	t.stream_id = get_be32(buf + 4);
	t.wire_len = get_be32(buf + 8);
	t.raw_len = get_be32(buf + 12);
	t.crc = get_be32(buf + 16);

	if (t.version != FRAME_VERSION) {
		frame_set_error("frame version %u unsupported (we speak %u)", t.version,
				FRAME_VERSION);
		return -EPROTO;
	}
	if (t.type < FRAME_TYPE_MIN || t.type > FRAME_TYPE_MAX) {
		frame_set_error("frame type %u unknown", t.type);
		return -EPROTO;
	}
	if (t.flags & ~FRAME_F_KNOWN) {
		frame_set_error("frame flags 0x%04x carry unknown bits 0x%04x", t.flags,
				t.flags & ~FRAME_F_KNOWN);
		return -EPROTO;
	}
	if ((t.flags & FRAME_F_PAGES) && t.type != FRAME_DATA) {
		frame_set_error("frame flag PAGES on a %s frame", frame_type_name(t.type));
		return -EPROTO;
	}
	if ((t.flags & FRAME_F_COMPRESSED) == FRAME_F_COMPRESSED) {
		/* One payload, one codec: there is no order to apply two in. */
		frame_set_error("frame flags 0x%04x set both LZ4 and ZSTD", t.flags);
		return -EPROTO;
	}
	if (t.raw_len > FRAME_MAX_RAW) {
		frame_set_error("frame raw_len %u exceeds limit %u", t.raw_len, FRAME_MAX_RAW);
		return -EPROTO;
	}
	if (t.wire_len > t.raw_len) {
		frame_set_error("frame wire_len %u exceeds raw_len %u", t.wire_len, t.raw_len);
		return -EPROTO;
	}
	if (!(t.flags & FRAME_F_COMPRESSED) && t.wire_len != t.raw_len) {
		frame_set_error("uncompressed frame has wire_len %u != raw_len %u", t.wire_len,
				t.raw_len);
		return -EPROTO;
	}
	/* Senders only set a codec flag on a payload that shrank; a
	 * "compressed" block as large as its output is not something we
	 * produce. */
	if ((t.flags & FRAME_F_COMPRESSED) && t.wire_len == t.raw_len) {
		frame_set_error("%s frame did not shrink (wire_len %u == raw_len %u)",
				t.flags & FRAME_F_LZ4 ? "LZ4" : "zstd", t.wire_len, t.raw_len);
		return -EPROTO;
	}
	*h = t;
	return 0;
}

uint32_t frame_crc(const uint8_t hdr[FRAME_HDR_LEN], const void *payload, size_t wire_len)
{
	static const uint8_t zero_crc[4];
	uint32_t c;

	c = crc32c(0, hdr, FRAME_HDR_LEN - 4);
	c = crc32c(c, zero_crc, sizeof(zero_crc));
	if (wire_len)
		c = crc32c(c, payload, wire_len);
	return c;
}

int frame_check(const struct frame_hdr *h, const uint8_t hdr_bytes[FRAME_HDR_LEN],
		const void *payload)
{
	uint32_t got = frame_crc(hdr_bytes, payload, h->wire_len);

	if (got != h->crc) {
		frame_set_error("frame crc mismatch (%s stream %u, %u bytes): header says 0x%08x, "
				"computed 0x%08x",
				frame_type_name(h->type), h->stream_id, h->wire_len, h->crc, got);
		return -EBADMSG;
	}
	return 0;
}

const char *frame_type_name(uint8_t type)
{
	switch (type) {
	case FRAME_DATA: return "DATA";
	case FRAME_FIN: return "FIN";
	case FRAME_ABORT: return "ABORT";
	case FRAME_CONTROL: return "CONTROL";
	case FRAME_OPEN: return "OPEN";
	case FRAME_PING: return "PING";
	default: return "UNKNOWN";
	}
}

const char *frame_strerror_last(void)
{
	return t_last_err;
}

void frame_add_flag(uint8_t *frame, uint16_t flag, int crc)
{
	struct frame_hdr h;

	if (frame_hdr_decode(frame, FRAME_HDR_LEN, &h) < 0)
		return;
	h.flags |= flag;
	frame_hdr_encode(&h, frame);
	if (!crc)
		return;
	h.crc = frame_crc(frame, frame + FRAME_HDR_LEN, h.wire_len);
	frame_hdr_encode(&h, frame);
}
