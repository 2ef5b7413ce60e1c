/* Fuzzes the LZ4 and zstd decoders behind codec_unpack with hostile
 * payloads, skipping the CRC (the frame harness goes through it), and
 * checks codec_pack/codec_unpack round trips (transport/codec.h).
 *
 * Input: byte 0 picks the flags (bits 0-1: raw, LZ4, zstd, LZ4+zstd) and
 * the pack mode (bits 2-3); bytes 1..3 are raw_len (big-endian, 24 bits, so
 * lengths above FRAME_MAX_RAW occur); the rest is the payload. The header
 * goes to codec_unpack only if frame_hdr_decode accepts it, as in the relay.
 *
 * Properties: unpack yields exactly raw_len bytes or an error; anything
 * codec_pack builds decodes, passes its crc and unpacks to the input. */
#include <errno.h>

#include "fuzz/fuzz.h"
#include "transport/codec.h"

static struct codec *codec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (codec_new(&codec, 1) < 0)
		abort();
	return 0;
}

static void unpack_hostile(uint16_t flags, uint32_t raw_len, const uint8_t *payload, size_t len)
{
	struct frame_hdr h = {
		.version = FRAME_VERSION, .type = FRAME_DATA, .flags = flags,
		.stream_id = 1, .wire_len = (uint32_t)len, .raw_len = raw_len,
	};
	uint8_t hdr[FRAME_HDR_LEN];
	uint8_t *raw;
	ssize_t n;

	if (len > FRAME_MAX_RAW)
		return;
	frame_hdr_encode(&h, hdr);
	if (frame_hdr_decode(hdr, sizeof(hdr), &h) < 0)
		return;
	raw = malloc(raw_len ? raw_len : 1);
	if (!raw)
		return;
	n = codec_unpack(codec, &h, payload, raw, raw_len);
	fuzz_assert(n < 0 || n == (ssize_t)raw_len);
	fuzz_assert(n >= 0 || n == -EBADMSG || n == -EPROTO);
	free(raw);
}

static void round_trip(int mode, const uint8_t *in, size_t len)
{
	size_t cap = codec_frame_bound(len);
	uint8_t *frame = malloc(cap), *raw = malloc(len ? len : 1);
	struct frame_hdr h;
	ssize_t n;

	if (len > FRAME_MAX_RAW || !frame || !raw)
		goto out;
	n = codec_pack(codec, FRAME_DATA, 7, in, len, mode, frame, cap);
	fuzz_assert(n >= FRAME_HDR_LEN && (size_t)n <= cap);
	fuzz_assert(frame_hdr_decode(frame, (size_t)n, &h) == 0);
	fuzz_assert(h.raw_len == len && FRAME_HDR_LEN + h.wire_len == (size_t)n);
	fuzz_assert(frame_check(&h, frame, frame + FRAME_HDR_LEN) == 0);
	fuzz_assert(codec_unpack(codec, &h, frame + FRAME_HDR_LEN, raw, len) == (ssize_t)len);
	fuzz_assert(len == 0 || memcmp(raw, in, len) == 0);
out:
	free(frame);
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t raw_len;

	if (size < 4)
		return 0;
	raw_len = (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
	unpack_hostile(data[0] & 3, raw_len, data + 4, size - 4);
	round_trip((data[0] >> 2) % CODEC_NMODES, data + 4, size - 4);
	return 0;
}
