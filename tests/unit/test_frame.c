/* Frame header encoding, validation and CRC32C. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/crc32c.h"
#include "transport/frame.h"
#include "util/timeutil.h"

/* Small deterministic PRNG so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

static void test_crc32c_vectors(void **state)
{
	static const uint8_t zeros[32];
	uint8_t ones[32];

	(void)state;
	memset(ones, 0xff, sizeof(ones));
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
	/* RFC 3720 (iSCSI) B.4 vectors. */
	assert_int_equal(crc32c(0, zeros, 32), 0x8A9136AAu);
	assert_int_equal(crc32c(0, ones, 32), 0x62A8AB43u);
	assert_int_equal(crc32c(0, NULL, 0), 0);
	/* Chaining: crc(a||b) == crc(crc(a), b). */
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

/* The hardware path splits buffers into lanes and joins them with shift
 * tables; compare it with the table implementation at every alignment and
 * around every lane boundary. */
static void test_crc32c_hw_matches_sw(void **state)
{
	static const size_t lens[] = { 0,    1,    7,    8,    9,     63,    255,   256,
				       767,  768,  769,  1000, 4096,  24575, 24576, 24577,
				       25344, 65536, 131072, 131093, 1 << 20 };
	size_t buf_len = (1 << 20) + 64, i, off;
	uint8_t *buf = malloc(buf_len);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, buf_len);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (off = 0; off < 9; off++)
			assert_int_equal(crc32c(0x12345678, buf + off, lens[i]),
					 crc32c_sw(0x12345678, buf + off, lens[i]));
	for (i = 0; i < 2000; i++) {
		size_t len = rng() % 70000;

		off = rng() % 64;
		assert_int_equal(crc32c(0, buf + off, len), crc32c_sw(0, buf + off, len));
	}
	free(buf);
}

static double mb_per_s(size_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / (1024.0 * 1024.0) / ((double)ns / 1e9) : 0;
}

static void test_crc32c_throughput(void **state)
{
	size_t len = 128 * 1024, total = 0;
	uint8_t *buf = malloc(len);
	uint32_t sink = 0;
	uint64_t t0, hw_ns, sw_ns;

	(void)state;
	assert_non_null(buf);
	fill_random(buf, len);
	t0 = time_mono_ns();
	while (total < (size_t)4096 << 20) {
		sink ^= crc32c(sink, buf, len);
		total += len;
	}
	hw_ns = time_mono_ns() - t0;
	printf("crc32c %s: %.0f MB/s (128 KiB buffers)\n",
	       crc32c_hw_available() ? "sse4.2" : "table", mb_per_s(total, hw_ns));
	total = 0;
	t0 = time_mono_ns();
	while (total < (size_t)512 << 20) {
		sink ^= crc32c_sw(sink, buf, len);
		total += len;
	}
	sw_ns = time_mono_ns() - t0;
	printf("crc32c table fallback: %.0f MB/s (sink %08x)\n", mb_per_s(total, sw_ns), sink);
	free(buf);
}

static struct frame_hdr sample_hdr(void)
{
	struct frame_hdr h = {
		.version = FRAME_VERSION,
		.type = FRAME_DATA,
		.flags = FRAME_F_LZ4,
		.stream_id = 0xA1B2C3D4u,
		.wire_len = 1000,
		.raw_len = 4096,
		.crc = 0xDEADBEEFu,
	};
	return h;
}

static void test_hdr_round_trip(void **state)
{
	struct frame_hdr h = sample_hdr(), d;
	uint8_t buf[FRAME_HDR_LEN];
	/* Big-endian on the wire, field by field. */
	static const uint8_t want[FRAME_HDR_LEN] = { 2,    1,    0,    1,    0xA1, 0xB2, 0xC3,
						     0xD4, 0,    0,    0x03, 0xE8, 0,    0,
						     0x10, 0,    0xDE, 0xAD, 0xBE, 0xEF };

	(void)state;
	frame_hdr_encode(&h, buf);
	assert_memory_equal(buf, want, FRAME_HDR_LEN);
	memset(&d, 0, sizeof(d));
	assert_int_equal(frame_hdr_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.version, h.version);
	assert_int_equal(d.type, h.type);
	assert_int_equal(d.flags, h.flags);
	assert_int_equal(d.stream_id, h.stream_id);
	assert_int_equal(d.wire_len, h.wire_len);
	assert_int_equal(d.raw_len, h.raw_len);
	assert_int_equal(d.crc, h.crc);
	/* Extra bytes after the header are not the decoder's business. */
	assert_int_equal(frame_hdr_decode(buf, sizeof(buf) + 0, &d), 0);
	assert_string_equal(frame_type_name(FRAME_DATA), "DATA");
	assert_string_equal(frame_type_name(FRAME_PING), "PING");
	assert_string_equal(frame_type_name(99), "UNKNOWN");
}

/* A frame built the way a sender does it: header with crc 0, then crc. */
static size_t build_frame(uint8_t *out, uint8_t type, uint32_t sid, const uint8_t *payload,
			  uint32_t len)
{
	struct frame_hdr h = { FRAME_VERSION, type, 0, sid, len, len, 0 };

	frame_hdr_encode(&h, out);
	if (len)
		memcpy(out + FRAME_HDR_LEN, payload, len);
	h.crc = frame_crc(out, out + FRAME_HDR_LEN, len);
	frame_hdr_encode(&h, out);
	return FRAME_HDR_LEN + len;
}

static void test_crc_check(void **state)
{
	uint8_t payload[300], frame[FRAME_HDR_LEN + 300];
	struct frame_hdr h;
	size_t i;

	(void)state;
	fill_random(payload, sizeof(payload));
	build_frame(frame, FRAME_DATA, 7, payload, sizeof(payload));
	assert_int_equal(frame_hdr_decode(frame, sizeof(frame), &h), 0);
	assert_int_equal(frame_check(&h, frame, frame + FRAME_HDR_LEN), 0);
	/* The crc field itself does not feed the crc. */
	assert_int_equal(frame_crc(frame, frame + FRAME_HDR_LEN, h.wire_len), h.crc);

	/* Any single payload byte flipped is caught. */
	for (i = 0; i < sizeof(payload); i += 37) {
		frame[FRAME_HDR_LEN + i] ^= 0x01;
		assert_int_equal(frame_check(&h, frame, frame + FRAME_HDR_LEN), -EBADMSG);
		assert_non_null(strstr(frame_strerror_last(), "crc mismatch"));
		frame[FRAME_HDR_LEN + i] ^= 0x01;
	}
	/* So is a header byte (stream id) that still decodes. */
	frame[7] ^= 0x40;
	assert_int_equal(frame_hdr_decode(frame, sizeof(frame), &h), 0);
	assert_int_equal(frame_check(&h, frame, frame + FRAME_HDR_LEN), -EBADMSG);
	frame[7] ^= 0x40;

	/* Empty payload (FIN). */
	build_frame(frame, FRAME_FIN, 7, NULL, 0);
	assert_int_equal(frame_hdr_decode(frame, FRAME_HDR_LEN, &h), 0);
	assert_int_equal(h.wire_len, 0);
	assert_int_equal(frame_check(&h, frame, NULL), 0);
}

static void test_truncated(void **state)
{
	struct frame_hdr h = sample_hdr();
	uint8_t buf[FRAME_HDR_LEN];
	size_t n;

	(void)state;
	frame_hdr_encode(&h, buf);
	for (n = 0; n < FRAME_HDR_LEN; n++)
		assert_int_equal(frame_hdr_decode(buf, n, &h), -EAGAIN);
}

static void expect_proto(const struct frame_hdr *h, const char *why)
{
	uint8_t buf[FRAME_HDR_LEN];
	struct frame_hdr d;

	frame_hdr_encode(h, buf);
	assert_int_equal(frame_hdr_decode(buf, sizeof(buf), &d), -EPROTO);
	if (!strstr(frame_strerror_last(), why))
		fail_msg("reason \"%s\" lacks \"%s\"", frame_strerror_last(), why);
}

static void test_bad_headers(void **state)
{
	struct frame_hdr h;

	(void)state;
	h = sample_hdr();
	h.version = 1; /* the unsealed format before sealing */
	expect_proto(&h, "version 1");
	h = sample_hdr();
	h.version = 0;
	expect_proto(&h, "version 0");
	h = sample_hdr();
	h.type = 0;
	expect_proto(&h, "type 0");
	h = sample_hdr();
	h.type = 7;
	expect_proto(&h, "type 7");
	h = sample_hdr();
	h.flags = 0x10; /* the first bit after FRAME_F_PAGES */
	expect_proto(&h, "unknown bits");
	h = sample_hdr();
	h.flags = FRAME_F_LZ4 | FRAME_F_ZSTD;
	expect_proto(&h, "both LZ4 and ZSTD");
	h = sample_hdr();
	h.flags = 0x8001;
	expect_proto(&h, "unknown bits");
	h = sample_hdr();
	h.raw_len = 2097152;
	expect_proto(&h, "frame raw_len 2097152 exceeds limit 1048576");
	h = sample_hdr();
	h.raw_len = h.wire_len = 0xFFFFFFFFu;
	h.flags = 0;
	expect_proto(&h, "exceeds limit");
	h = sample_hdr();
	h.wire_len = 5000;
	expect_proto(&h, "wire_len 5000 exceeds raw_len 4096");
	h = sample_hdr();
	h.flags = 0;
	expect_proto(&h, "wire_len 1000 != raw_len 4096");
	h = sample_hdr();
	h.wire_len = h.raw_len;
	expect_proto(&h, "did not shrink");

	/* The limit itself is fine. */
	h = sample_hdr();
	h.flags = 0;
	h.raw_len = h.wire_len = FRAME_MAX_RAW;
	{
		uint8_t buf[FRAME_HDR_LEN];
		struct frame_hdr d;

		frame_hdr_encode(&h, buf);
		assert_int_equal(frame_hdr_decode(buf, sizeof(buf), &d), 0);
	}
}

/* Random headers (some nudged towards valid) must decode or fail cleanly,
 * and any that decode must be safe to check against a buffer of wire_len. */
static void test_fuzz_headers(void **state)
{
	uint8_t *payload = calloc(1, FRAME_MAX_RAW);
	unsigned ok = 0, bad = 0, i;

	(void)state;
	assert_non_null(payload);
	for (i = 0; i < 10000; i++) {
		uint8_t buf[FRAME_HDR_LEN];
		struct frame_hdr h;
		size_t len = rng() % (FRAME_HDR_LEN + 1);
		int r;

		fill_random(buf, sizeof(buf));
		if (i & 1) {
			buf[0] = FRAME_VERSION;
			buf[1] = (uint8_t)(1 + rng() % 7);
			buf[2] = 0;
			buf[3] &= 1;
			buf[8] = buf[12] = 0;
			buf[9] &= 0x1f;
			buf[13] &= 0x1f;
		}
		if (i % 3 == 0)
			len = FRAME_HDR_LEN;
		r = frame_hdr_decode(buf, len, &h);
		if (len < FRAME_HDR_LEN) {
			assert_int_equal(r, -EAGAIN);
			continue;
		}
		if (r == 0) {
			assert_true(h.raw_len <= FRAME_MAX_RAW);
			assert_true(h.wire_len <= h.raw_len);
			r = frame_check(&h, buf, payload);
			assert_true(r == 0 || r == -EBADMSG);
			ok++;
		} else {
			assert_int_equal(r, -EPROTO);
			assert_true(frame_strerror_last()[0] != '\0');
			bad++;
		}
	}
	printf("fuzz: %u headers accepted, %u refused\n", ok, bad);
	assert_true(ok > 0 && bad > 0);
	free(payload);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_hw_matches_sw),
		cmocka_unit_test(test_crc32c_throughput),
		cmocka_unit_test(test_hdr_round_trip),
		cmocka_unit_test(test_crc_check),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_fuzz_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
