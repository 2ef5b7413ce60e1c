/* LZ4 block compression of stream chunks into complete frames.
 *
 * One struct codec per worker thread: it owns the LZ4 compression state so
 * packing never allocates. Unpacking needs no state and is thread-safe.
 *
 * Rule on the wire: a payload is LZ4-compressed only if that made it strictly
 * smaller; otherwise the raw bytes are sent. So wire_len <= raw_len always and
 * a frame never needs more than FRAME_HDR_LEN + raw_len bytes. */
#ifndef FERRY_TRANSPORT_CODEC_H
#define FERRY_TRANSPORT_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/frame.h"

struct codec;

/* acceleration: LZ4 acceleration (>= 1; 1 is LZ4's default, higher trades
 * ratio for speed). 0, -EINVAL or -ENOMEM. */
int codec_new(struct codec **out, int acceleration);
void codec_free(struct codec *c);

/* Output size that always suffices for codec_pack of raw_len bytes. */
size_t codec_frame_bound(size_t raw_len);

/* Builds one complete frame (header + payload, crc filled) into out.
 * With compress set, tries LZ4 into at most raw_len - 1 bytes and falls back
 * to the raw bytes if that fails. c may be NULL when compress is 0 (raw frames
 * touch no LZ4 state, so any thread can build them). raw and out must not
 * overlap. Returns the frame's total size, or -EMSGSIZE (raw_len >
 * FRAME_MAX_RAW or out_cap < codec_frame_bound(raw_len)) or -EINVAL (bad
 * type, NULL raw, compress without a codec). */
ssize_t codec_pack(struct codec *c, uint8_t type, uint32_t stream_id, const void *raw,
		   size_t raw_len, int compress, void *out, size_t out_cap);

/* Decodes the payload of a header that passed frame_hdr_decode and
 * frame_check into raw_out (raw_cap >= h->raw_len, else -EMSGSIZE).
 * Returns h->raw_len, or -EBADMSG if the LZ4 block is corrupt or does not
 * decode to exactly raw_len bytes, -EPROTO for an inconsistent header.
 * Never writes past raw_out + h->raw_len, never reads past
 * payload + h->wire_len. Reason in frame_strerror_last(). */
ssize_t codec_unpack(const struct frame_hdr *h, const void *payload, void *raw_out,
		     size_t raw_cap);

/* 1 if all len bytes are zero (len 0 counts as zero). Runs at memory speed:
 * callers use it to skip compression work, or QEMU's zero pages. */
int codec_is_zero(const void *buf, size_t len);

#endif
