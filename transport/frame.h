/* The wire frame: a fixed 20-byte big-endian header and a payload.
 *
 *   off  size  field
 *     0     1  version    FRAME_VERSION
 *     1     1  type       FRAME_DATA .. FRAME_PING
 *     2     2  flags      FRAME_F_LZ4 or FRAME_F_ZSTD (at most one),
 *                          FRAME_F_SEALED, FRAME_F_PAGES; every other bit
 *                          must be 0
 *     4     4  stream_id
 *     8     4  wire_len   payload bytes that follow the header
 *    12     4  raw_len    payload size after decompression (== wire_len if raw)
 *    16     4  crc        unsealed: CRC32C of the header (this field as zero)
 *                          + payload; sealed: low 32 bits of the sequence number
 *   20  wire_len  payload  (ciphertext when sealed)
 *    .    16  tag          only when FRAME_F_SEALED: AEAD tag (transport/seal.h)
 *
 * The decoder validates every field before a single payload byte is trusted,
 * so a receiver can size its buffers from raw_len/wire_len without further
 * checks. docs/protocol.md is the normative description. */
#ifndef FERRY_TRANSPORT_FRAME_H
#define FERRY_TRANSPORT_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* 2: FRAME_F_SEALED and the tag after the payload (transport/seal.h). */
#define FRAME_VERSION 2
#define FRAME_TAG_LEN 16
#define FRAME_HDR_LEN 20
/* Largest payload (after decompression) a frame may carry. Receivers size
 * their buffers from it, so it bounds the memory a peer can make us pin. */
#define FRAME_MAX_RAW (1u << 20)

enum frame_type {
	FRAME_DATA = 1,    /* stream bytes */
	FRAME_FIN = 2,     /* sender will send no more on this stream (half-close) */
	FRAME_ABORT = 3,   /* stream or link aborted; payload: UTF-8 reason */
	FRAME_CONTROL = 4, /* payload: JSON */
	FRAME_OPEN = 5,    /* payload: JSON stream-open */
	FRAME_PING = 6,
};
#define FRAME_TYPE_MIN FRAME_DATA
#define FRAME_TYPE_MAX FRAME_PING

#define FRAME_F_LZ4 0x1u  /* payload is one LZ4 block */
#define FRAME_F_ZSTD 0x2u /* payload is one zstd frame */
#define FRAME_F_COMPRESSED (FRAME_F_LZ4 | FRAME_F_ZSTD)
#define FRAME_F_SEALED 0x4u /* payload encrypted, FRAME_TAG_LEN tag follows it */
/* DATA only: the payload (after decompression) is a page-coded chunk
 * (transport/pagecode.h), sent only on streams that negotiated it. */
#define FRAME_F_PAGES 0x8u
#define FRAME_F_KNOWN (FRAME_F_COMPRESSED | FRAME_F_SEALED | FRAME_F_PAGES)

struct frame_hdr {
	uint8_t version, type;
	uint16_t flags;
	uint32_t stream_id, wire_len, raw_len, crc;
};

/* Writes all fields as given, crc included (codec_pack fills it afterwards). */
void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_LEN]);

/* Parses and validates a header. 0 on success; -EAGAIN if len < FRAME_HDR_LEN;
 * -EPROTO for a bad version, type or flags (unknown bits, or both LZ4 and
 * ZSTD), raw_len > FRAME_MAX_RAW, wire_len > raw_len, an uncompressed frame
 * with wire_len != raw_len or a compressed frame whose payload did not shrink
 * (wire_len == raw_len). On -EPROTO
 * frame_strerror_last() says which. */
int frame_hdr_decode(const uint8_t *buf, size_t len, struct frame_hdr *h);

/* Sets flag in a built frame's header, before seal_frame; with crc, also
 * its crc (a frame that is not sealed: sealing replaces the crc). */
void frame_add_flag(uint8_t *frame, uint16_t flag, int crc);

/* CRC32C over the 20 header bytes with the crc field taken as zero (whatever
 * hdr holds there), then wire_len payload bytes. */
uint32_t frame_crc(const uint8_t hdr[FRAME_HDR_LEN], const void *payload, size_t wire_len);

/* Checks a decoded header's crc against its bytes and payload (h->wire_len
 * bytes). 0 or -EBADMSG (reason in frame_strerror_last()). */
int frame_check(const struct frame_hdr *h, const uint8_t hdr_bytes[FRAME_HDR_LEN],
		const void *payload);

/* Bytes of the whole frame on the wire: header, payload, tag if sealed. */
static inline size_t frame_wire_size(const struct frame_hdr *h)
{
	return FRAME_HDR_LEN + (size_t)h->wire_len + ((h->flags & FRAME_F_SEALED) ? FRAME_TAG_LEN : 0);
}

/* "DATA", "FIN", ...; "UNKNOWN" for anything else. */
const char *frame_type_name(uint8_t type);

/* Text of this thread's last decode/check/unpack failure ("" if none yet), e.g.
 * "frame raw_len 2097152 exceeds limit 1048576". Valid until the next
 * failing call on the same thread. */
const char *frame_strerror_last(void);

/* Sets that text; for the codec, so a compressed payload that fails to decode is
 * explained in the same place as a bad header. */
void frame_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
