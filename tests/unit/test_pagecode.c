/* The page coding (transport/pagecode.h): every QEMU 10.0 recording in
 * tests/data/qemu10-streams, coded in chunks of random sizes and decoded by
 * a separate decoder, gives back the channel byte for byte; a synthetic main
 * channel that sends its pages three times (changed sparsely, unchanged,
 * duplicated, zeroed) is coded with deltas, duplicates and zero pages and
 * still decodes exactly, also with a cache far smaller than the memory; and
 * a decoder refuses malformed chunks (bad ops, slots, deltas, lengths, a
 * hash that does not match) without reading or writing out of bounds. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "transport/pagecode.h"
#include "tests/unit/zst_load.h"
#include "util/timeutil.h"

#define DATA_DIR FERRY_SOURCE_DIR "/tests/data/qemu10-streams"
#define CHUNK_MAX (112u * 1024u)
#define OUT_CAP (CHUNK_MAX + PAGEC_SLACK)

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static enum qstream_chan chan_of(const char *name, const uint8_t *d, size_t len)
{
	if (strstr(name, ".rp.bin"))
		return QSTREAM_OPAQUE;
	if (len >= 4 && !memcmp(d, "QEVM", 4))
		return QSTREAM_MAIN;
	if (len >= 4 && !memcmp(d, "\x11\x22\x33\x44", 4))
		return QSTREAM_MULTIFD;
	return QSTREAM_PREEMPT;
}

/* Codes data in random chunks (max_chunk at most), decodes each with a
 * decoder of its own, checks the bytes and gives the encoder's figures. */
struct sink {
	uint8_t *b;
	size_t n, cap;
};

static void full_round_trip(const uint8_t *data, size_t len, enum qstream_chan chan, uint32_t slots,
			    size_t max_chunk, int zlevel, struct pagec_stats *st)
{
	struct pagec_enc *e;
	struct pagec_dec *d;
	uint8_t *coded = malloc(OUT_CAP);
	struct sink s = { malloc(len + 1), 0, len + 1 };
	size_t at = 0;
	char err[160];

	assert_non_null(coded);
	assert_non_null(s.b);
	assert_int_equal(pagec_enc_new(&e, chan, slots), 0);
	assert_int_equal(pagec_dec_new(&d, slots), 0);
	do {
		size_t n = 1 + rng() % max_chunk;
		ssize_t c, o;
		int eof;

		if (n > len - at)
			n = len - at;
		eof = at + n == len;
		/* zstd: a chunk in three goes raw, the stream goes on. */
		c = pagec_encode(e, data + at, n, eof, coded, n + PAGEC_SLACK,
				 zlevel && rng() % 3 ? zlevel : 0);
		assert_true(c >= (ssize_t)PAGEC_HDR_LEN);
		assert_true((size_t)c <= n + PAGEC_SLACK);
		assert_true(s.cap - s.n >= 1);
		o = pagec_decode(d, coded, (size_t)c, s.b + s.n, s.cap - s.n, err, sizeof(err));
		if (o < 0)
			fail_msg("decode of the chunk at %zu: %s", at, err);
		s.n += (size_t)o;
		at += n;
		if (eof)
			break;
	} while (at < len);
	assert_int_equal(s.n, len);
	assert_memory_equal(s.b, data, len);
	pagec_enc_stats(e, st);
	free(coded);
	free(s.b);
	pagec_enc_free(e);
	pagec_dec_free(d);
}

static void test_recordings(void **state)
{
	static const char *const cases[] = { "single", "multifd", "multifd-legacy", "multifd-zstd",
					     "postcopy-preempt" };
	int files = 0;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char dir[400];
		struct dirent *de;
		DIR *dh;

		snprintf(dir, sizeof(dir), "%s/%s", DATA_DIR, cases[c]);
		dh = opendir(dir);
		assert_non_null(dh);
		while ((de = readdir(dh))) {
			size_t nl = strlen(de->d_name), len;
			char path[800];
			uint8_t *data;
			struct pagec_stats st;

			if (nl < 5 || strcmp(de->d_name + nl - 4, ".zst"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			data = load_zst(path, &len);
			memset(&st, 0, sizeof(st));
			full_round_trip(data, len, chan_of(de->d_name, data, len), 1u << 12, CHUNK_MAX, 0, &st);
			full_round_trip(data, len, chan_of(de->d_name, data, len), 3000, CHUNK_MAX, 1, &st);
			/* And with a cache of 16 pages, and small chunks. */
			full_round_trip(data, len, chan_of(de->d_name, data, len), PAGEC_MIN_SLOTS, 5000,
					1, &st);
			print_message("%s/%s: %zu bytes, %llu pages (%llu dup, %llu zero, %llu delta)\n",
				      cases[c], de->d_name, len, (unsigned long long)st.pages,
				      (unsigned long long)st.dup, (unsigned long long)st.zero,
				      (unsigned long long)st.delta);
			free(data);
			files++;
		}
		closedir(dh);
	}
	assert_true(files >= 10);
}

/* A synthetic main channel: header, MEM_SIZE of one block "pc.ram" of
 * npages, then three passes over its pages (RAM records, the block named
 * once per pass), then EOS. */
struct w {
	uint8_t *b;
	size_t n, cap;
};

static void w_bytes(struct w *w, const void *p, size_t n)
{
	if (w->cap - w->n < n) {
		w->cap = (w->cap + n) * 2;
		w->b = realloc(w->b, w->cap);
		assert_non_null(w->b);
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_be(struct w *w, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		uint8_t c = (uint8_t)(v >> (8 * i));

		w_bytes(w, &c, 1);
	}
}

static void w_name(struct w *w, const char *s)
{
	w_be(w, strlen(s), 1);
	w_bytes(w, s, strlen(s));
}

static void w_head(struct w *w, uint64_t ram)
{
	w_be(w, 0x5145564d, 4);
	w_be(w, 3, 4);
	w_be(w, 0x07, 1);
	w_be(w, 14, 4);
	w_bytes(w, "pc-i440fx-10.0", 14);
	w_be(w, 0x01, 1); /* SECTION_START */
	w_be(w, 1, 4);
	w_name(w, "ram");
	w_be(w, 0, 4);
	w_be(w, 4, 4);
	w_be(w, ram | 0x04, 8); /* MEM_SIZE */
	w_name(w, "pc.ram");
	w_be(w, ram, 8);
	w_be(w, 0x10, 8); /* EOS */
}

static void w_pass(struct w *w, const uint8_t *mem, size_t npages)
{
	w_be(w, 0x02, 1); /* SECTION_PART */
	w_be(w, 1, 4);
	for (size_t p = 0; p < npages; p++) {
		w_be(w, (uint64_t)p * 4096 | 0x08 | (p ? 0x20 : 0), 8);
		if (!p)
			w_name(w, "pc.ram");
		w_bytes(w, mem + p * 4096, 4096);
	}
	w_be(w, 0x10, 8);
}

static void test_synthetic_passes(void **state)
{
	const size_t npages = 2048;
	uint8_t *mem = malloc(npages * 4096);
	struct w w = { 0 };
	struct pagec_stats st, small;

	(void)state;
	assert_non_null(mem);
	for (size_t i = 0; i < npages * 4096; i++)
		mem[i] = (uint8_t)rng();
	w_head(&w, npages * 4096);
	w_pass(&w, mem, npages);
	/* Pass 2: a counter in every page of the first half (sparse), the
	 * second quarter a copy of page 0, one page in eight zeroed. */
	for (size_t p = 0; p < npages; p++) {
		if (p < npages / 2)
			mem[p * 4096 + 64] ^= 0x5a;
		else if (p < npages * 3 / 4)
			memcpy(mem + p * 4096, mem, 4096);
		if (p % 8 == 7)
			memset(mem + p * 4096, 0, 4096);
	}
	w_pass(&w, mem, npages);
	/* Pass 3: the first half changed sparsely again, two runs apart. */
	for (size_t p = 0; p < npages / 2; p++) {
		mem[p * 4096 + 100] += 1;
		mem[p * 4096 + 3000] += 1;
	}
	w_pass(&w, mem, npages);

	memset(&st, 0, sizeof(st));
	full_round_trip(w.b, w.n, QSTREAM_MAIN, 4096, CHUNK_MAX, 0, &st);
	print_message("raw %llu zero %llu dup %llu delta %llu coded %llu of %zu\n", (unsigned long long)st.raw,
		      (unsigned long long)st.zero, (unsigned long long)st.dup, (unsigned long long)st.delta,
		      (unsigned long long)st.coded, w.n);
	assert_int_equal(st.pages, 3 * npages);
	/* Pass 2: first half minus the zeroed ones are deltas; pass 3: all
	 * of the first half (a zeroed page's delta too) and the unchanged
	 * rest are duplicates of their own slot. */
	assert_true(st.delta >= npages / 2 - npages / 16 + npages / 2);
	assert_true(st.dup >= npages / 2);
	assert_true(st.zero >= npages / 8 / 2);
	/* Pages that went whole: the first pass, little else. */
	assert_true(st.raw <= npages + npages / 8);
	assert_true(st.coded < w.n / 2);

	/* A cache of a sixteenth of the memory still decodes exactly. */
	memset(&small, 0, sizeof(small));
	full_round_trip(w.b, w.n, QSTREAM_MAIN, npages / 16 + 3, 3000, 1, &small);
	assert_int_equal(small.pages, 3 * npages);
	free(w.b);
	free(mem);
}

/* Hostile chunks: each is refused, none writes past cap or reads past len
 * (the buffers are exactly sized; run under ASan). */
static ssize_t dec_exact(struct pagec_dec *d, const uint8_t *chunk, size_t len, size_t cap,
			 char *err, size_t errlen)
{
	uint8_t *in = malloc(len ? len : 1), *out = malloc(cap ? cap : 1);
	ssize_t r;

	memcpy(in, chunk, len);
	r = pagec_decode(d, in, len, out, cap, err, errlen);
	free(in);
	free(out);
	return r;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_hostile_chunks(void **state)
{
	struct pagec_dec *d;
	uint8_t c[64 + 4096];
	char err[160];

	(void)state;
	assert_int_equal(pagec_dec_new(&d, 16), 0);
	/* Too short, wrong version. */
	assert_int_equal(dec_exact(d, c, 5, 100, err, sizeof(err)), -EBADMSG);
	memset(c, 0, sizeof(c));
	c[0] = 9;
	assert_int_equal(dec_exact(d, c, 13, 100, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "version"));
	/* Unknown op. */
	c[0] = 1;
	c[13] = 0x77;
	assert_int_equal(dec_exact(d, c, 14, 100, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "unknown op"));
	/* Claims more than the output can hold. */
	put32(c + 1, 5000);
	assert_int_equal(dec_exact(d, c, 14, 4096, err, sizeof(err)), -ENOSPC);
	/* A literal longer than the chunk. */
	put32(c + 1, 100);
	c[13] = 1;
	put32(c + 14, 1000);
	assert_int_equal(dec_exact(d, c, 20, 100, err, sizeof(err)), -EBADMSG);
	/* Slot out of range. */
	put32(c + 1, 4096);
	c[13] = 3;
	put32(c + 14, 16);
	assert_int_equal(dec_exact(d, c, 18, 4096, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "slot"));
	/* DUP from a slot out of range. */
	c[13] = 4;
	put32(c + 14, 1);
	put32(c + 18, 1u << 30);
	assert_int_equal(dec_exact(d, c, 22, 4096, err, sizeof(err)), -EBADMSG);
	/* A delta run past the page. */
	c[13] = 5;
	put32(c + 14, 1);
	c[18] = 0;
	c[19] = 4;
	c[20] = 0x0f;
	c[21] = 0xff; /* skip 4095 */
	c[22] = 0;
	c[23] = 2; /* 2 bytes: one past the end */
	assert_int_equal(dec_exact(d, c, 24, 4096, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "delta"));
	/* A zero page whose hash is wrong. */
	c[13] = 3;
	put32(c + 14, 0xffffffffu);
	assert_int_equal(dec_exact(d, c, 18, 4096, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "hash"));
	/* A zstd chunk whose tail claims more than the chunk, then one
	 * whose zstd piece is not zstd. */
	c[0] = 0x81;
	memset(c + 13, 0x5a, 40);
	assert_int_equal(dec_exact(d, c, 53, 8192, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "tail"));
	put32(c + 13, 0);
	assert_int_equal(dec_exact(d, c, 53, 8192, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "zstd"));
	c[0] = 1;
	c[13] = 3;
	put32(c + 14, 0xffffffffu);
	/* Fewer bytes than announced. */
	put32(c + 1, 8192);
	assert_int_equal(dec_exact(d, c, 18, 8192, err, sizeof(err)), -EBADMSG);
	pagec_dec_free(d);

	/* Sizes: slots for a budget. */
	assert_int_equal(pagec_slots_for(0), 0);
	assert_true(pagec_mem_bytes(pagec_slots_for(256u << 20)) <= 256u << 20);
	assert_true(pagec_slots_for(256u << 20) >= 32768);
	assert_int_equal(pagec_dec_new(&d, 15), -EINVAL);
}

/* Speed of both ends on one core (printed, not asserted: speed targets
 * live in ferry-bench): a first pass of half random, half repeated-text
 * pages, then a pass of sparse changes (deltas), coded without and with
 * zstd and decoded. */
static void test_throughput(void **state)
{
	const size_t npages = 8192;
	uint8_t *mem = malloc(npages * 4096), *coded = malloc(OUT_CAP), *out = malloc(OUT_CAP);
	struct w w = { 0 };
	char err[160];

	(void)state;
	assert_non_null(mem);
	for (size_t i = 0; i < npages * 4096; i++)
		mem[i] = i / 4096 % 2 ? (uint8_t)rng() : (uint8_t)("the quick brown fox "[i % 20]);
	w_head(&w, npages * 4096);
	w_pass(&w, mem, npages);
	for (size_t p = 0; p < npages; p++)
		mem[p * 4096 + 512] ^= 1;
	w_pass(&w, mem, npages);
	for (int z = 0; z < 2; z++) {
		struct pagec_enc *e;
		struct pagec_dec *d;
		uint64_t enc_ns = 0, dec_ns = 0, t;
		size_t at = 0, total = 0;

		assert_int_equal(pagec_enc_new(&e, QSTREAM_MAIN, 16384), 0);
		assert_int_equal(pagec_dec_new(&d, 16384), 0);
		while (at < w.n) {
			size_t n = w.n - at < CHUNK_MAX ? w.n - at : CHUNK_MAX;
			ssize_t c, o;

			t = time_mono_ns();
			c = pagec_encode(e, w.b + at, n, at + n == w.n, coded, OUT_CAP, z);
			enc_ns += time_mono_ns() - t;
			assert_true(c > 0);
			total += (size_t)c;
			t = time_mono_ns();
			o = pagec_decode(d, coded, (size_t)c, out, OUT_CAP, err, sizeof(err));
			dec_ns += time_mono_ns() - t;
			assert_true(o >= 0);
			at += n;
		}
		print_message("%s: %zu MiB coded to %.1f%% at %.0f MB/s, decoded at %.0f MB/s\n",
			      z ? "zstd" : "ops only", w.n >> 20, 100.0 * (double)total / (double)w.n,
			      (double)w.n * 1e3 / (double)enc_ns, (double)w.n * 1e3 / (double)dec_ns);
		pagec_enc_free(e);
		pagec_dec_free(d);
	}
	free(w.b);
	free(mem);
	free(coded);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recordings),
		cmocka_unit_test(test_synthetic_passes),
		cmocka_unit_test(test_hostile_chunks),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
