/* LZ4 and zstd codec: frames round-trip, incompressible data goes raw, corrupt or
 * lying frames fail without touching memory they should not (run it under
 * -DFERRY_SANITIZE=address,undefined to check the last part). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/codec.h"
#include "transport/frame.h"
#include "util/timeutil.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

enum content { C_ZERO, C_RANDOM, C_TEXT };
static const char *content_name[] = { "zero", "random", "text" };

/* Text-like: words from a small vocabulary with numbers, compresses about
 * 2-3x with LZ4, like logs or source in guest page cache. */
static void fill(uint8_t *p, size_t n, enum content c)
{
	static const char *words[] = { "the ",    "migration ", "page ",   "dirty ",
				       "guest ",  "kernel ",    "buffer ", "ferry ",
				       "memory ", "\n",         "status=", "ok ",
				       "error ",  "block ",     "qemu ",   "time " };
	size_t i = 0;

	switch (c) {
	case C_ZERO:
		memset(p, 0, n);
		break;
	case C_RANDOM:
		for (i = 0; i < n; i++)
			p[i] = (uint8_t)(rng() >> 24);
		break;
	case C_TEXT:
		while (i < n) {
			char tmp[32];
			uint64_t r = rng();
			int len;

			if (r % 5 == 0)
				len = snprintf(tmp, sizeof(tmp), "%u ", (unsigned)(r >> 40) % 100000);
			else
				len = snprintf(tmp, sizeof(tmp), "%s", words[(r >> 8) % 16]);
			if ((size_t)len > n - i)
				len = (int)(n - i);
			memcpy(p + i, tmp, (size_t)len);
			i += (size_t)len;
		}
		break;
	}
}

struct bufs {
	struct codec *c;
	uint8_t *raw, *frame, *back;
};

static int setup(void **state)
{
	struct bufs *b = calloc(1, sizeof(*b));

	if (!b || codec_new(&b->c, 1))
		return -1;
	b->raw = malloc(FRAME_MAX_RAW);
	b->frame = malloc(codec_frame_bound(FRAME_MAX_RAW));
	b->back = malloc(FRAME_MAX_RAW);
	if (!b->raw || !b->frame || !b->back)
		return -1;
	*state = b;
	return 0;
}

static int teardown(void **state)
{
	struct bufs *b = *state;

	codec_free(b->c);
	free(b->raw);
	free(b->frame);
	free(b->back);
	free(b);
	return 0;
}

/* Packs, then decodes as a receiver would; returns the wire_len. */
static uint32_t round_trip(struct bufs *b, size_t len, int compress)
{
	struct frame_hdr h;
	ssize_t n;

	n = codec_pack(b->c, FRAME_DATA, 42, b->raw, len, compress, b->frame,
		       codec_frame_bound(len));
	assert_true(n >= FRAME_HDR_LEN);
	assert_int_equal(frame_hdr_decode(b->frame, (size_t)n, &h), 0);
	assert_int_equal((size_t)n, FRAME_HDR_LEN + h.wire_len);
	assert_int_equal(h.raw_len, len);
	assert_int_equal(h.stream_id, 42);
	assert_int_equal(h.type, FRAME_DATA);
	assert_int_equal(frame_check(&h, b->frame, b->frame + FRAME_HDR_LEN), 0);
	memset(b->back, 0xAA, len);
	assert_int_equal(codec_unpack(b->c, &h, b->frame + FRAME_HDR_LEN, b->back, len),
			 (ssize_t)len);
	assert_memory_equal(b->raw, b->back, len);
	if (h.flags & FRAME_F_COMPRESSED) {
		assert_true(h.wire_len < h.raw_len);
		/* Exactly the codec that was asked for. */
		assert_int_equal(h.flags, compress == CODEC_ZSTD ? FRAME_F_ZSTD : FRAME_F_LZ4);
	} else {
		assert_int_equal(h.wire_len, h.raw_len);
	}
	return h.wire_len;
}

static void test_round_trips(void **state)
{
	static const size_t sizes[] = { 1, 4096, 131072, 1 << 20 };
	struct bufs *b = *state;
	size_t i;
	int c, mode;

	for (mode = CODEC_LZ4; mode <= CODEC_ZSTD; mode++)
	for (c = C_ZERO; c <= C_TEXT; c++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t len = sizes[i];
			uint32_t wire;

			fill(b->raw, len, (enum content)c);
			wire = round_trip(b, len, mode);
			printf("%-4s %-6s %8zu -> %8u bytes on the wire\n",
			       mode == CODEC_ZSTD ? "zstd" : "lz4", content_name[c], len, wire);
			if (len == 1) {
				/* One byte never shrinks: always raw. */
				assert_int_equal(wire, 1);
				continue;
			}
			switch (c) {
			case C_ZERO:
				assert_true(wire < len / 100 + 16);
				break;
			case C_RANDOM:
				assert_int_equal(wire, len); /* sent raw, no codec flag */
				break;
			case C_TEXT:
				assert_true(wire < len * 3 / 4);
				break;
			}
			/* compress=0 always sends raw. */
			assert_int_equal(round_trip(b, len, 0), len);
		}
	}
	/* Empty payload frames (FIN, PING). */
	assert_int_equal(round_trip(b, 0, 1), 0);
	assert_int_equal(round_trip(b, 0, CODEC_ZSTD), 0);
	assert_int_equal(round_trip(b, 0, 0), 0);
}

static void test_pack_limits(void **state)
{
	struct bufs *b = *state;

	fill(b->raw, 4096, C_TEXT);
	assert_int_equal(codec_frame_bound(4096), FRAME_HDR_LEN + 4096);
	/* Even compressible data needs the full bound: the raw fallback must
	 * always fit. */
	assert_int_equal(codec_pack(b->c, FRAME_DATA, 1, b->raw, 4096, 1, b->frame,
				    codec_frame_bound(4096) - 1),
			 -EMSGSIZE);
	assert_int_equal(codec_pack(b->c, FRAME_DATA, 1, b->raw, (size_t)FRAME_MAX_RAW + 1, 1,
				    b->frame, (size_t)-1),
			 -EMSGSIZE);
	assert_int_equal(codec_pack(b->c, 0, 1, b->raw, 10, 1, b->frame, 100), -EINVAL);
	assert_int_equal(codec_pack(b->c, 7, 1, b->raw, 10, 1, b->frame, 100), -EINVAL);
	assert_int_equal(codec_pack(b->c, FRAME_DATA, 1, NULL, 10, 1, b->frame, 100), -EINVAL);
	/* Raw frames need no codec; compressed ones do. */
	assert_int_equal(codec_pack(NULL, FRAME_DATA, 1, b->raw, 10, 0, b->frame, 100),
			 FRAME_HDR_LEN + 10);
	assert_int_equal(codec_pack(NULL, FRAME_DATA, 1, b->raw, 10, 1, b->frame, 100), -EINVAL);
	assert_int_equal(codec_pack(NULL, FRAME_DATA, 1, b->raw, 10, CODEC_ZSTD, b->frame, 100),
			 -EINVAL);
	/* Modes beyond the known ones. */
	assert_int_equal(codec_pack(b->c, FRAME_DATA, 1, b->raw, 10, CODEC_NMODES, b->frame, 100),
			 -EINVAL);
	assert_int_equal(codec_pack(b->c, FRAME_DATA, 1, b->raw, 10, -1, b->frame, 100), -EINVAL);
	{
		struct codec *c = NULL;

		assert_int_equal(codec_new(&c, 0), -EINVAL);
		assert_null(c);
	}
}

/* Packs a compressible chunk with mode, returns its header. */
static struct frame_hdr pack_text_mode(struct bufs *b, size_t len, int mode)
{
	struct frame_hdr h;
	ssize_t n;

	fill(b->raw, len, C_TEXT);
	n = codec_pack(b->c, FRAME_DATA, 9, b->raw, len, mode, b->frame, codec_frame_bound(len));
	assert_true(n > 0);
	assert_int_equal(frame_hdr_decode(b->frame, (size_t)n, &h), 0);
	assert_int_equal(h.flags, mode == CODEC_ZSTD ? FRAME_F_ZSTD : FRAME_F_LZ4);
	return h;
}

static struct frame_hdr pack_text(struct bufs *b, size_t len)
{
	return pack_text_mode(b, len, CODEC_LZ4);
}

/* Copies the payload into an exactly sized heap block so ASan catches any
 * read past wire_len, and decodes into an exactly sized output. */
static ssize_t unpack_exact_c(struct codec *c, const struct frame_hdr *h,
			      const uint8_t *payload)
{
	uint8_t *in = malloc(h->wire_len ? h->wire_len : 1);
	uint8_t *out = malloc(h->raw_len ? h->raw_len : 1);
	ssize_t r;

	assert_non_null(in);
	assert_non_null(out);
	memcpy(in, payload, h->wire_len);
	r = codec_unpack(c, h, in, out, h->raw_len);
	free(in);
	free(out);
	return r;
}

/* LZ4 frames decode without a codec: pass none, so that stays true. */
static ssize_t unpack_exact(const struct frame_hdr *h, const uint8_t *payload)
{
	return unpack_exact_c(NULL, h, payload);
}

static void test_corrupt_lz4(void **state)
{
	struct bufs *b = *state;
	size_t len = 65536, i;
	struct frame_hdr h = pack_text(b, len), l;
	uint8_t *payload = b->frame + FRAME_HDR_LEN;
	unsigned failed = 0, wrong = 0;

	assert_int_equal(unpack_exact(&h, payload), (ssize_t)len);

	/* raw_len lies upwards: the block decodes to fewer bytes. */
	l = h;
	l.raw_len = h.raw_len + 100;
	assert_int_equal(unpack_exact(&l, payload), -EBADMSG);
	assert_non_null(strstr(frame_strerror_last(), "header says"));
	/* raw_len lies downwards: LZ4 must stop at the announced size. */
	l = h;
	l.raw_len = h.raw_len - 100;
	assert_int_equal(unpack_exact(&l, payload), -EBADMSG);
	l.raw_len = h.wire_len + 1;
	assert_int_equal(unpack_exact(&l, payload), -EBADMSG);
	/* wire_len lies: a truncated block. */
	l = h;
	l.wire_len = h.wire_len / 2;
	assert_int_equal(unpack_exact(&l, payload), -EBADMSG);
	/* Output buffer too small. */
	assert_int_equal(codec_unpack(NULL, &h, payload, b->back, h.raw_len - 1), -EMSGSIZE);
	/* A header the decoder would have refused. */
	l = h;
	l.raw_len = FRAME_MAX_RAW + 1;
	assert_int_equal(codec_unpack(NULL, &l, payload, b->back, FRAME_MAX_RAW), -EPROTO);
	l = h;
	l.wire_len = h.raw_len + 1;
	assert_int_equal(codec_unpack(NULL, &l, payload, b->back, FRAME_MAX_RAW), -EPROTO);

	/* Random corruption: every outcome must be either an error or exactly
	 * raw_len bytes (garbage content is the crc's job to catch, and it
	 * would have, before codec_unpack runs). */
	for (i = 0; i < 3000; i++) {
		uint8_t *copy = malloc(h.wire_len);
		size_t pos = rng() % h.wire_len;
		ssize_t r;

		memcpy(copy, payload, h.wire_len);
		copy[pos] ^= (uint8_t)(1 + rng() % 255);
		if (i & 1)
			copy[rng() % h.wire_len] = (uint8_t)rng();
		r = unpack_exact(&h, copy);
		if (r < 0) {
			assert_int_equal(r, -EBADMSG);
			failed++;
		} else {
			assert_int_equal(r, (ssize_t)len);
			wrong++;
		}
		free(copy);
	}
	printf("corrupted LZ4 blocks: %u refused, %u decoded to the right size\n", failed,
	       wrong);
	assert_true(failed > 0);

	/* Pure noise claiming to be LZ4, with random sizes. */
	for (i = 0; i < 2000; i++) {
		struct frame_hdr n = { FRAME_VERSION, FRAME_DATA, FRAME_F_LZ4, 1, 0, 0, 0 };
		uint8_t noise[512];
		size_t k;
		ssize_t r;

		n.raw_len = 2 + (uint32_t)(rng() % 70000);
		n.wire_len = 1 + (uint32_t)(rng() % sizeof(noise));
		if (n.wire_len >= n.raw_len)
			n.wire_len = n.raw_len - 1;
		for (k = 0; k < n.wire_len; k++)
			noise[k] = (uint8_t)rng();
		r = unpack_exact(&n, noise);
		assert_true(r == -EBADMSG || r == (ssize_t)n.raw_len);
	}

	/* And the crc catches what LZ4 cannot. */
	payload[h.wire_len / 2] ^= 0x10;
	assert_int_equal(frame_check(&h, b->frame, payload), -EBADMSG);
}

/* Same contract as LZ4: a corrupt or lying zstd frame is -EBADMSG, and
 * neither the payload nor the output is overrun (unpack_exact_c sizes both
 * exactly, so ASan sees any stray access). */
static void test_corrupt_zstd(void **state)
{
	struct bufs *b = *state;
	size_t len = 65536, i;
	struct frame_hdr h = pack_text_mode(b, len, CODEC_ZSTD), l;
	uint8_t *payload = b->frame + FRAME_HDR_LEN;
	unsigned failed = 0, wrong = 0;

	assert_int_equal(unpack_exact_c(b->c, &h, payload), (ssize_t)len);
	/* zstd frames need the codec's decompression context. */
	assert_int_equal(unpack_exact_c(NULL, &h, payload), -EINVAL);

	/* raw_len lies upwards: the frame decodes to fewer bytes. */
	l = h;
	l.raw_len = h.raw_len + 100;
	assert_int_equal(unpack_exact_c(b->c, &l, payload), -EBADMSG);
	/* raw_len lies downwards: zstd must stop at the announced size. */
	l = h;
	l.raw_len = h.raw_len - 100;
	assert_int_equal(unpack_exact_c(b->c, &l, payload), -EBADMSG);
	assert_non_null(strstr(frame_strerror_last(), "zstd"));
	l.raw_len = h.wire_len + 1;
	assert_int_equal(unpack_exact_c(b->c, &l, payload), -EBADMSG);
	/* wire_len lies: a truncated frame. */
	l = h;
	l.wire_len = h.wire_len / 2;
	assert_int_equal(unpack_exact_c(b->c, &l, payload), -EBADMSG);
	/* Both codec flags on a hand-built header. */
	l = h;
	l.flags = FRAME_F_LZ4 | FRAME_F_ZSTD;
	assert_int_equal(unpack_exact_c(b->c, &l, payload), -EPROTO);

	for (i = 0; i < 3000; i++) {
		uint8_t *copy = malloc(h.wire_len);
		ssize_t r;

		memcpy(copy, payload, h.wire_len);
		copy[rng() % h.wire_len] ^= (uint8_t)(1 + rng() % 255);
		if (i & 1)
			copy[rng() % h.wire_len] = (uint8_t)rng();
		r = unpack_exact_c(b->c, &h, copy);
		if (r < 0) {
			assert_int_equal(r, -EBADMSG);
			failed++;
		} else {
			assert_int_equal(r, (ssize_t)len);
			wrong++;
		}
		free(copy);
	}
	printf("corrupted zstd frames: %u refused, %u decoded to the right size\n", failed,
	       wrong);
	assert_true(failed > 0);

	/* Noise behind a real zstd magic number, so the decoder goes past its
	 * first check into the frame header and blocks. */
	for (i = 0; i < 2000; i++) {
		struct frame_hdr n = { FRAME_VERSION, FRAME_DATA, FRAME_F_ZSTD, 1, 0, 0, 0 };
		uint8_t noise[512];
		size_t k;
		ssize_t r;

		n.raw_len = 6 + (uint32_t)(rng() % 70000);
		n.wire_len = 5 + (uint32_t)(rng() % (sizeof(noise) - 5));
		if (n.wire_len >= n.raw_len)
			n.wire_len = n.raw_len - 1;
		for (k = 0; k < n.wire_len; k++)
			noise[k] = (uint8_t)rng();
		memcpy(noise, payload, 4); /* 28 b5 2f fd */
		r = unpack_exact_c(b->c, &n, noise);
		assert_true(r == -EBADMSG || r == (ssize_t)n.raw_len);
	}
	/* The context is still good after all those failures. */
	h = pack_text_mode(b, len, CODEC_ZSTD);
	assert_int_equal(unpack_exact_c(b->c, &h, payload), (ssize_t)len);
}

/* The header decoder's side of the zstd flag. */
static void test_zstd_flags(void **state)
{
	struct bufs *b = *state;
	struct frame_hdr h = pack_text_mode(b, 4096, CODEC_ZSTD), d;
	uint8_t hdr[FRAME_HDR_LEN];

	assert_true(FRAME_F_KNOWN & FRAME_F_ZSTD);
	assert_int_equal(FRAME_F_LZ4 & FRAME_F_ZSTD, 0);
	/* At most one codec per frame. */
	h.flags = FRAME_F_LZ4 | FRAME_F_ZSTD;
	frame_hdr_encode(&h, hdr);
	assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &d), -EPROTO);
	assert_non_null(strstr(frame_strerror_last(), "both"));
	/* A zstd frame that did not shrink is never sent. */
	h.flags = FRAME_F_ZSTD;
	h.wire_len = h.raw_len;
	frame_hdr_encode(&h, hdr);
	assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &d), -EPROTO);
	/* Unknown bits next to it still are refused. */
	h.flags = FRAME_F_ZSTD | 0x10;
	h.wire_len = h.raw_len - 1;
	frame_hdr_encode(&h, hdr);
	assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &d), -EPROTO);
	h.flags = FRAME_F_ZSTD;
	frame_hdr_encode(&h, hdr);
	assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &d), 0);
}

static void test_is_zero(void **state)
{
	struct bufs *b = *state;
	size_t len = 8192, i;

	(void)state;
	memset(b->raw, 0, len + 16);
	assert_true(codec_is_zero(b->raw, 0));
	for (i = 0; i < 9; i++)
		assert_true(codec_is_zero(b->raw + i, len));
	for (i = 0; i < len; i += 61) {
		b->raw[3 + i] = 1;
		assert_false(codec_is_zero(b->raw + 3, len));
		b->raw[3 + i] = 0;
	}
	b->raw[3 + len - 1] = 0x80;
	assert_false(codec_is_zero(b->raw + 3, len));
	assert_true(codec_is_zero(b->raw + 3, len - 1));
}

static double mbs(size_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / 1048576.0 / ((double)ns / 1e9) : 0;
}

/* Not an assertion: machines differ. Prints MB/s of raw data through pack
 * and unpack (crc included) for 128 KiB chunks, per content and acceleration. */
static void test_throughput(void **state)
{
	/* The last row is zstd (level 1), the others LZ4 at that acceleration. */
	static const int accels[] = { 1, 4, 16, 1 };
	struct bufs *b = *state;
	size_t len = 128 * 1024, budget = (size_t)768 << 20;
	int c, a;
	uint64_t t0, ns;
	size_t done;

	for (c = C_ZERO; c <= C_TEXT; c++) {
		fill(b->raw, len, (enum content)c);
		for (a = 0; a < 4; a++) {
			int mode = a == 3 ? CODEC_ZSTD : CODEC_LZ4;
			struct codec *cd = NULL;
			struct frame_hdr h;
			ssize_t n = 0;
			double pack_mbs, unpack_mbs;

			assert_int_equal(codec_new(&cd, accels[a]), 0);
			done = 0;
			t0 = time_mono_ns();
			while (done < budget / (c == C_ZERO ? 1 : 4)) {
				n = codec_pack(cd, FRAME_DATA, 1, b->raw, len, mode, b->frame,
					       codec_frame_bound(len));
				assert_true(n > 0);
				done += len;
			}
			ns = time_mono_ns() - t0;
			pack_mbs = mbs(done, ns);
			assert_int_equal(frame_hdr_decode(b->frame, (size_t)n, &h), 0);
			done = 0;
			t0 = time_mono_ns();
			while (done < budget) {
				assert_int_equal(frame_check(&h, b->frame, b->frame + FRAME_HDR_LEN), 0);
				assert_int_equal(codec_unpack(cd, &h, b->frame + FRAME_HDR_LEN,
							      b->back, len),
						 (ssize_t)len);
				done += len;
			}
			ns = time_mono_ns() - t0;
			unpack_mbs = mbs(done, ns);
			printf("%-4s %-6s accel=%-2d ratio %5.3f  pack %6.0f MB/s  check+unpack %6.0f MB/s\n",
			       mode == CODEC_ZSTD ? "zstd" : "lz4", content_name[c], accels[a],
			       (double)h.wire_len / (double)len, pack_mbs,
			       unpack_mbs);
			codec_free(cd);
		}
	}
	/* The zero test a caller can use to skip LZ4 on zero chunks. */
	memset(b->raw, 0, len);
	done = 0;
	t0 = time_mono_ns();
	while (done < budget * 4) {
		assert_true(codec_is_zero(b->raw, len));
		done += len;
	}
	printf("codec_is_zero on zero chunks: %.0f MB/s\n", mbs(done, time_mono_ns() - t0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_pack_limits),
		cmocka_unit_test(test_corrupt_lz4),
		cmocka_unit_test(test_corrupt_zstd),
		cmocka_unit_test(test_zstd_flags),
		cmocka_unit_test(test_is_zero),
		cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
