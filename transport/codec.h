/* LZ4 or zstd compression of stream chunks into complete frames.
 *
 * One struct codec per worker thread: it owns the LZ4 state and the zstd
 * compression and decompression contexts, so packing and unpacking reuse
 * them instead of allocating per chunk. Raw and LZ4 frames need no codec;
 * only zstd frames do, in either direction.
 *
 * Rule on the wire: a payload is compressed only if that made it strictly
 * smaller; otherwise the raw bytes are sent. So wire_len <= raw_len always and
 * a frame never needs more than FRAME_HDR_LEN + raw_len bytes. */
#ifndef FERRY_TRANSPORT_CODEC_H
#define FERRY_TRANSPORT_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/frame.h"

struct codec;

/* codec_pack's mode. 0 and 1 keep the meaning the old boolean had. */
enum codec_mode {
	CODEC_RAW = 0,
	CODEC_LZ4 = 1,
	CODEC_ZSTD = 2,
};
#define CODEC_NMODES 3

/* acceleration: LZ4 acceleration (>= 1; 1 is LZ4's default, higher trades
 * ratio for speed). 0, -EINVAL or -ENOMEM. */
int codec_new(struct codec **out, int acceleration);
void codec_free(struct codec *c);

/* Output size that always suffices for codec_pack of raw_len bytes. */
size_t codec_frame_bound(size_t raw_len);

/* Builds one complete frame (header + payload, crc filled) into out.
 * mode (enum codec_mode): CODEC_LZ4 or CODEC_ZSTD try that codec into at most
 * raw_len - 1 bytes and fall back to the raw bytes if that fails; CODEC_RAW
 * sends them as they are. c may be NULL for CODEC_RAW (raw frames touch no
 * codec state, so any thread can build them). raw and out must not overlap.
 * Returns the frame's total size, or -EMSGSIZE (raw_len > FRAME_MAX_RAW or
 * out_cap < codec_frame_bound(raw_len)) or -EINVAL (bad type or mode, NULL
 * raw, a compressing mode without a codec). */
ssize_t codec_pack(struct codec *c, uint8_t type, uint32_t stream_id, const void *raw,
		   size_t raw_len, int mode, void *out, size_t out_cap);

/* Decodes the payload of a header that passed frame_hdr_decode and
 * frame_check into raw_out (raw_cap >= h->raw_len, else -EMSGSIZE).
 * c is needed for zstd frames only (its decompression context); NULL is fine
 * for raw and LZ4 frames, which any thread can decode. Returns h->raw_len, or
 * -EBADMSG if the LZ4 block or zstd frame is corrupt or does not decode to
 * exactly raw_len bytes, -EPROTO for an inconsistent header, -EINVAL for a
 * zstd frame without a codec. Never writes past raw_out + h->raw_len, never
 * reads past payload + h->wire_len. Reason in frame_strerror_last(). */
ssize_t codec_unpack(struct codec *c, const struct frame_hdr *h, const void *payload,
		     void *raw_out, size_t raw_cap);

/* 1 if all len bytes are zero (len 0 counts as zero). Runs at memory speed:
 * callers use it to skip compression work, or QEMU's zero pages. */
int codec_is_zero(const void *buf, size_t len);

#endif
