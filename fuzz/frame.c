/* Fuzzes the frame decoder as the relay's receiving side uses it: a byte
 * stream of frames, each header checked with frame_hdr_decode, its crc with
 * frame_check and its payload decoded with codec_unpack (transport/frame.h,
 * transport/codec.h). A crc field of 0 is replaced by the real CRC (fuzz.h).
 *
 * Properties: a header that decodes re-encodes to the same 20 bytes, and
 * codec_unpack returns exactly raw_len bytes or an error, never more. */
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

/* One frame at data; returns the bytes it took, or 0 to stop the stream. */
static size_t one_frame(const uint8_t *data, size_t size)
{
	uint8_t hdr[FRAME_HDR_LEN], again[FRAME_HDR_LEN];
	struct frame_hdr h;
	uint8_t *raw;
	ssize_t n;

	if (size < FRAME_HDR_LEN)
		return 0;
	memcpy(hdr, data, FRAME_HDR_LEN);
	if (frame_hdr_decode(hdr, FRAME_HDR_LEN, &h) < 0) {
		fuzz_assert(frame_strerror_last()[0] != '\0');
		return 0;
	}
	(void)frame_type_name(h.type);
	frame_hdr_encode(&h, again);
	fuzz_assert(memcmp(hdr, again, FRAME_HDR_LEN) == 0);
	if (h.wire_len > size - FRAME_HDR_LEN)
		return 0; /* the relay would wait for more bytes */
	fuzz_fix_crc(hdr, data + FRAME_HDR_LEN, h.wire_len);
	h.crc = fuzz_be32(hdr + 16);
	if (frame_check(&h, hdr, data + FRAME_HDR_LEN) < 0)
		return FRAME_HDR_LEN + h.wire_len;
	/* Exactly raw_len bytes, as the relay's slot is sized from it. */
	raw = malloc(h.raw_len ? h.raw_len : 1);
	if (!raw)
		return 0;
	n = codec_unpack(codec, &h, data + FRAME_HDR_LEN, raw, h.raw_len);
	fuzz_assert(n < 0 || n == (ssize_t)h.raw_len);
	fuzz_assert(n >= 0 || n == -EBADMSG || n == -EPROTO);
	free(raw);
	return FRAME_HDR_LEN + h.wire_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t used;

	while ((used = one_frame(data, size)) > 0) {
		data += used;
		size -= used;
	}
	return 0;
}
