/* The page-aware coding of a QEMU migration channel: the source agent turns
 * each chunk of the channel into a short program of ops (literal bytes, a
 * page, a zero page, a page equal to one the target already holds, a page
 * as the few bytes that changed since the target's copy), the target agent
 * runs it and gets back exactly the bytes QEMU wrote.
 *
 * Both ends keep the same page cache: PAGEC slots of 4096 bytes. The
 * encoder decides everything (which slot a page goes to, what it is coded
 * against) and writes it into the op; the decoder only follows, so the two
 * caches stay equal as long as ops are applied in stream order, and a
 * decoder never needs to understand QEMU's formats. Each coded chunk
 * carries the length and the xxh3 hash of the bytes it stands for: a
 * decoder that rebuilds anything else fails the stream (a diverged cache
 * would otherwise corrupt the guest silently).
 *
 * The encoder parses the channel with qstream (transport/qstream.h); what
 * qstream does not model, or everything after it gave up, travels as
 * literal bytes. The ops of a chunk may be compressed with zstd as one
 * stream per channel (each chunk flushed, so it decodes on arrival): a
 * window that spans many chunks finds what repeats across them, which a
 * codec per chunk cannot. That too needs the chunks in order.
 *
 * Pure code: no I/O, no threads; memory is fixed at _new:
 * pagec_mem_bytes(slots). Format: docs/protocol.md, "Page-coded frames". */
#ifndef FERRY_TRANSPORT_PAGECODE_H
#define FERRY_TRANSPORT_PAGECODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/qstream.h"

#define PAGEC_PAGE 4096u
/* Header of a coded chunk: version, rebuilt length, xxh3 of the rebuilt bytes. */
#define PAGEC_HDR_LEN 13u
/* Coded bytes never exceed the rebuilt bytes by more than this per byte
 * fed plus PAGEC_SLACK: the encoder is fed at most (cap - PAGEC_SLACK)
 * bytes per call (a record split across calls adds at most a page and its
 * header to the next call's output; each op adds at most 9 bytes). */
#define PAGEC_SLACK (16u * 1024u)
#define PAGEC_MIN_SLOTS 16u
/* Largest ops of one chunk, before zstd: a decoder's scratch. */
#define PAGEC_OPS_MAX (144u * 1024u)
#define PAGEC_MAX_SLOTS (1u << 22) /* 16 GiB of pages: beyond any budget */

struct pagec_stats {
	uint64_t in;        /* channel bytes */
	uint64_t coded;     /* op bytes produced (before the frame codec) */
	uint64_t pages;     /* pages seen */
	uint64_t raw;       /* sent whole */
	uint64_t zero;      /* content all zero */
	uint64_t dup;       /* equal to a cached page */
	uint64_t delta;     /* as the bytes changed since the cached version */
	uint64_t delta_bytes; /* op bytes of those deltas */
};

/* Memory one end of a stream with this many slots holds at most (cache,
 * keys, index, the zstd window, which grows with the cache): what the
 * budget is charged. */
size_t pagec_mem_bytes(uint32_t slots);
/* The number of slots (>= PAGEC_MIN_SLOTS) that fits in budget bytes, or 0
 * if none does. */
uint32_t pagec_slots_for(uint64_t budget);

struct pagec_enc;
struct pagec_dec;

/* slots: PAGEC_MIN_SLOTS..PAGEC_MAX_SLOTS. chan: the
 * channel kind (QSTREAM_OPAQUE codes everything as literal bytes).
 * 0, -EINVAL or -ENOMEM. */
int pagec_enc_new(struct pagec_enc **out, enum qstream_chan chan, uint32_t slots)
	__attribute__((warn_unused_result));
void pagec_enc_free(struct pagec_enc *e);

/* Codes len more channel bytes (eof: the channel ended after them; bytes
 * of a split record are flushed as literal) into out, a complete coded
 * chunk; zlevel > 0 compresses its ops with the channel's zstd stream
 * (at the level the first such call gave: zstd fixes it for the stream),
 * 0 leaves them as they are. Needs cap >= len + PAGEC_SLACK
 * and len <= PAGEC_OPS_MAX - PAGEC_SLACK. Returns its size, -ENOSPC if
 * cap is too small, -ENOMEM, -EIO if zstd fails (the encoder is then
 * unusable), -EINVAL after eof. */
ssize_t pagec_encode(struct pagec_enc *e, const uint8_t *in, size_t len, int eof, uint8_t *out,
		     size_t cap, int zlevel);
void pagec_enc_stats(const struct pagec_enc *e, struct pagec_stats *st);
/* qstream's reason for passing the rest of the channel through, or NULL. */
const char *pagec_enc_reason(const struct pagec_enc *e);

/* slots: as the encoder's (the zstd window it may use follows from them). */
int pagec_dec_new(struct pagec_dec **out, uint32_t slots) __attribute__((warn_unused_result));
void pagec_dec_free(struct pagec_dec *d);

/* Runs one coded chunk of len bytes, writing the rebuilt bytes to out.
 * Returns their number, or -EBADMSG for anything malformed (an unknown op,
 * a slot out of range, a delta past the page, a length or hash that does
 * not match: the reason in err) or -ENOSPC when they would exceed cap.
 * Never reads past in + len nor writes past out + cap. After a failure the
 * cache is undefined: the stream must end. */
ssize_t pagec_decode(struct pagec_dec *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
		     char *err, size_t errlen);

#endif
