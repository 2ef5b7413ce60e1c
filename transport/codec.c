#include "transport/codec.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* zstd's fastest regular level. The relay uses zstd where the link, not the
 * CPU, is the limit, but the CPU is the guest host's: level 1 already gets
 * most of zstd's ratio gain over LZ4 on memory pages (entropy coding), while
 * higher levels cost several times the CPU for a few percent more. */
#define CODEC_ZSTD_LEVEL 1

struct codec {
	void *lz4_state; /* LZ4_sizeofState() bytes, reused for every chunk */
	int acceleration;
	ZSTD_CCtx *zc; /* reused: a fresh context per chunk would allocate */
	ZSTD_DCtx *zd; /* same for decoding; what makes zstd unpack need c */
};

int codec_new(struct codec **out, int acceleration)
{
	struct codec *c = NULL;
	size_t st_len;
	int ret;

	*out = NULL;
	if (acceleration < 1)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		ret = -ENOMEM;
		goto cleanup;
	}
	/* Cache-line aligned: the state is a 16 KiB hash table hammered at
	 * random; LZ4 itself only needs pointer alignment. */
	st_len = ((size_t)LZ4_sizeofState() + 63) & ~(size_t)63;
	c->lz4_state = aligned_alloc(64, st_len);
	if (!c->lz4_state) {
		ret = -ENOMEM;
		goto cleanup;
	}
	c->zc = ZSTD_createCCtx();
	c->zd = ZSTD_createDCtx();
	if (!c->zc || !c->zd) {
		ret = -ENOMEM;
		goto cleanup;
	}
	c->acceleration = acceleration;
	*out = c;
	c = NULL;
	ret = 0;
cleanup:
	codec_free(c);
	return ret;
}

void codec_free(struct codec *c)
{
	if (!c)
		return;
	free(c->lz4_state);
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
	free(c);
}

size_t codec_frame_bound(size_t raw_len)
{
	return FRAME_HDR_LEN + raw_len;
}

/* Compresses raw into payload (capacity raw_len - 1) with the given mode.
 * Returns the frame flag and sets *wire_len, or 0 when the payload is to go
 * raw: the mode is CODEC_RAW or the result would not be strictly smaller. */
static uint16_t compress_payload(struct codec *c, int mode, const void *raw, size_t raw_len,
				 uint8_t *payload, uint32_t *wire_len)
{
	size_t n;

	/* One byte cannot shrink, and capacity raw_len - 1 would be 0. */
	if (mode == CODEC_RAW || raw_len <= 1)
		return 0;
	if (mode == CODEC_LZ4) {
		/* A capacity of raw_len - 1 makes LZ4 give up (return 0) as
		 * soon as the block would not be strictly smaller than the
		 * input, which is exactly our rule for sending raw. */
		int n = LZ4_compress_fast_extState(c->lz4_state, raw, (char *)payload,
						   (int)raw_len, (int)raw_len - 1,
						   c->acceleration);
		if (n <= 0)
			return 0;
		*wire_len = (uint32_t)n;
		return FRAME_F_LZ4;
	}
	/* zstd, same rule: it fails with dstSize_tooSmall rather than write
	 * past raw_len - 1. Incompressible input costs one pass (zstd stores
	 * such blocks raw internally, which then does not fit). */
	n = ZSTD_compressCCtx(c->zc, payload, raw_len - 1, raw, raw_len, CODEC_ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return 0;
	*wire_len = (uint32_t)n;
	return FRAME_F_ZSTD;
}

ssize_t codec_pack(struct codec *c, uint8_t type, uint32_t stream_id, const void *raw,
		   size_t raw_len, int mode, void *out, size_t out_cap)
{
	uint8_t *hdr = out;
	uint8_t *payload = hdr + FRAME_HDR_LEN;
	struct frame_hdr h = {
		.version = FRAME_VERSION,
		.type = type,
		.flags = 0,
		.stream_id = stream_id,
		.raw_len = (uint32_t)raw_len,
		.wire_len = (uint32_t)raw_len,
		.crc = 0,
	};
	uint32_t crc;

	if (type < FRAME_TYPE_MIN || type > FRAME_TYPE_MAX || (raw_len && !raw) ||
	    mode < CODEC_RAW || mode >= CODEC_NMODES || (mode != CODEC_RAW && !c))
		return -EINVAL;
	if (raw_len > FRAME_MAX_RAW || out_cap < codec_frame_bound(raw_len))
		return -EMSGSIZE;

	h.flags = compress_payload(c, mode, raw, raw_len, payload, &h.wire_len);
	if (!h.flags && raw_len)
		memcpy(payload, raw, raw_len);

	frame_hdr_encode(&h, hdr);
	crc = frame_crc(hdr, payload, h.wire_len);
	hdr[16] = (uint8_t)(crc >> 24);
	hdr[17] = (uint8_t)(crc >> 16);
	hdr[18] = (uint8_t)(crc >> 8);
	hdr[19] = (uint8_t)crc;
	return (ssize_t)(FRAME_HDR_LEN + h.wire_len);
}

static ssize_t unpack_lz4(const struct frame_hdr *h, const void *payload, void *raw_out)
{
	/* Capacity is raw_len, not raw_cap: a block that would expand beyond
	 * what the header announced is corrupt, and LZ4 must stop there. */
	int n = LZ4_decompress_safe(payload, raw_out, (int)h->wire_len, (int)h->raw_len);

	if (n < 0) {
		frame_set_error("codec: corrupt LZ4 block on %s stream %u (%u bytes)",
				frame_type_name(h->type), h->stream_id, h->wire_len);
		return -EBADMSG;
	}
	if ((uint32_t)n != h->raw_len) {
		frame_set_error("codec: LZ4 block on stream %u decoded to %d bytes, header says %u",
				h->stream_id, n, h->raw_len);
		return -EBADMSG;
	}
	return n;
}

static ssize_t unpack_zstd(struct codec *c, const struct frame_hdr *h, const void *payload,
			   void *raw_out)
{
	size_t n;

	if (!c) {
		frame_set_error("codec: zstd frame on stream %u but no codec to decode it",
				h->stream_id);
		return -EINVAL;
	}
	/* Capacity raw_len, as for LZ4: zstd refuses (dstSize_tooSmall) a
	 * frame that would decode to more, and checks the frame's own content
	 * size against what it produced. */
	n = ZSTD_decompressDCtx(c->zd, raw_out, h->raw_len, payload, h->wire_len);
	if (ZSTD_isError(n)) {
		frame_set_error("codec: corrupt zstd frame on %s stream %u (%u bytes): %s",
				frame_type_name(h->type), h->stream_id, h->wire_len,
				ZSTD_getErrorName(n));
		return -EBADMSG;
	}
	if (n != h->raw_len) {
		frame_set_error("codec: zstd frame on stream %u decoded to %zu bytes, header says %u",
				h->stream_id, n, h->raw_len);
		return -EBADMSG;
	}
	return (ssize_t)n;
}

ssize_t codec_unpack(struct codec *c, const struct frame_hdr *h, const void *payload,
		     void *raw_out, size_t raw_cap)
{
	/* The header normally comes from frame_hdr_decode, which already
	 * enforces these; re-checking keeps a hand-built header from turning
	 * into an out-of-bounds read or write. */
	if (h->raw_len > FRAME_MAX_RAW || h->wire_len > h->raw_len ||
	    (h->flags & ~FRAME_F_KNOWN) || (h->flags & FRAME_F_COMPRESSED) == FRAME_F_COMPRESSED) {
		frame_set_error("codec: inconsistent header (flags 0x%04x wire_len %u raw_len %u)",
				h->flags, h->wire_len, h->raw_len);
		return -EPROTO;
	}
	if (raw_cap < h->raw_len) {
		frame_set_error("codec: output buffer %zu bytes, frame needs %u", raw_cap,
				h->raw_len);
		return -EMSGSIZE;
	}
	if (h->flags & FRAME_F_LZ4)
		return unpack_lz4(h, payload, raw_out);
	if (h->flags & FRAME_F_ZSTD)
		return unpack_zstd(c, h, payload, raw_out);
	if (h->wire_len != h->raw_len) {
		frame_set_error("codec: uncompressed frame with wire_len %u != raw_len %u",
				h->wire_len, h->raw_len);
		return -EPROTO;
	}
	if (h->raw_len)
		memcpy(raw_out, payload, h->raw_len);
	return (ssize_t)h->raw_len;
}

/* Reads through a may_alias type so scanning a byte buffer as words is
 * well-defined under strict aliasing. */
typedef uint64_t __attribute__((may_alias)) u64_alias;

int codec_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len && ((uintptr_t)p & 7)) {
		if (*p)
			return 0;
		p++;
		len--;
	}
	/* 64 bytes per test: the OR chain vectorizes, and one branch per
	 * cache line keeps the early exit cheap for non-zero data. */
	while (len >= 64) {
		const u64_alias *w = (const u64_alias *)p;

		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return 0;
		p += 64;
		len -= 64;
	}
	while (len) {
		if (*p)
			return 0;
		p++;
		len--;
	}
	return 1;
}
