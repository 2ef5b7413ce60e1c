/* The QEMU stream parser and rebuilder (transport/qstream.h) on the QEMU
 * 10.0 recordings in tests/data/qemu10-streams: every channel, fed in
 * chunks of 1, 7, 4095, 128 KiB and random sizes, rebuilds to the same
 * bytes, and its PAGE/ZERO counts are the ones tests/tools/stream-scan.py
 * finds. Then hostile input: truncated, flipped and crafted streams (absurd
 * lengths and counts) give up with a reason and still rebuild exactly, fed
 * from buffers of exactly each chunk's size (run it under
 * -DFERRY_SANITIZE=address,undefined to check no read goes past them).
 * Last, the parser's throughput on the recordings. */
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

#include "transport/qstream.h"
#include "tests/unit/zst_load.h"
#include "util/timeutil.h"

#define DATA_DIR FERRY_SOURCE_DIR "/tests/data/qemu10-streams"
#define MAX_FILES 32

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* One recorded channel, decompressed. */
struct rec {
	char path[512];
	char label[96];
	enum qstream_chan chan;
	uint8_t *data;
	size_t len;
	int main_of; /* index of the main channel of its case, for the block list */
};

static struct rec recs[MAX_FILES];
static int nrecs;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.zst of every case directory; main.bin.zst first in its case. */
static void load_case(const char *name)
{
	char dir[400], *files[16];
	int nf = 0, main_idx = -1;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", DATA_DIR, name);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) && nf < 16) {
		size_t n = strlen(e->d_name);

		if (n > 4 && strcmp(e->d_name + n - 4, ".zst") == 0)
			files[nf++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(files, (size_t)nf, sizeof(files[0]), cmp_str);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < nf; i++) {
			struct rec *r;
			bool is_main = strcmp(files[i], "main.bin.zst") == 0;

			if (is_main != (pass == 0))
				continue;
			assert_true(nrecs < MAX_FILES);
			r = &recs[nrecs];
			snprintf(r->path, sizeof(r->path), "%s/%s", dir, files[i]);
			snprintf(r->label, sizeof(r->label), "%s/%s", name, files[i]);
			r->data = load_zst(r->path, &r->len);
			if (strstr(files[i], ".rp.bin"))
				r->chan = QSTREAM_OPAQUE;
			else if (r->len >= 4 && memcmp(r->data, "QEVM", 4) == 0)
				r->chan = QSTREAM_MAIN;
			else if (r->len >= 4 && memcmp(r->data, "\x11\x22\x33\x44", 4) == 0)
				r->chan = QSTREAM_MULTIFD;
			else
				r->chan = QSTREAM_PREEMPT;
			if (is_main)
				main_idx = nrecs;
			r->main_of = main_idx;
			nrecs++;
		}
	}
	for (int i = 0; i < nf; i++)
		free(files[i]);
}

static int setup(void **state)
{
	char *cases[16];
	int nc = 0;
	struct dirent *e;
	DIR *d = opendir(DATA_DIR);

	(void)state;
	if (!d)
		return -1;
	while ((e = readdir(d)) && nc < 16)
		if (e->d_name[0] != '.' && e->d_type == DT_DIR)
			cases[nc++] = strdup(e->d_name);
	closedir(d);
	qsort(cases, (size_t)nc, sizeof(cases[0]), cmp_str);
	for (int i = 0; i < nc; i++) {
		load_case(cases[i]);
		free(cases[i]);
	}
	return nrecs >= 5 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < nrecs; i++)
		free(recs[i].data);
	return 0;
}

/* --- feeding and collecting --------------------------------------------- */

struct sink {
	const struct qstream *q;
	uint8_t *out;
	size_t len, cap;
	uint64_t kinds[4];
	uint64_t items, fail_at; /* fail_at: return -ENOSPC on that item (0: never) */
};

static int collect(void *arg, const struct qstream_item *it)
{
	struct sink *s = arg;
	ssize_t n = qstream_item_size(it), w;

	s->items++;
	if (s->fail_at && s->items == s->fail_at)
		return -ENOSPC;
	assert_true(n >= 0);
	if (it->kind != QSTREAM_PASS) {
		/* Nothing but PASS once the parser gave up or reached EOF. */
		assert_int_equal(qstream_state(s->q), QSTREAM_PARSING);
		assert_non_null(it->name);
		assert_int_equal(strlen(it->name), it->name_len);
	} else {
		assert_true(it->len > 0);
	}
	if (s->cap - s->len < (size_t)n) {
		s->cap = (s->cap + (size_t)n) * 2;
		s->out = realloc(s->out, s->cap);
		assert_non_null(s->out);
	}
	w = qstream_rebuild(it, s->out + s->len, s->cap - s->len);
	assert_int_equal(w, n);
	s->len += (size_t)w;
	s->kinds[it->kind]++;
	return 0;
}

struct result {
	struct qstream_stats st;
	enum qstream_state state;
	char reason[256];
	uint64_t kinds[4];
};

/* chunk 0: random sizes up to 256 KiB. copy: every chunk from a buffer of
 * exactly its size. The result's rebuilt bytes are checked equal to data. */
static void run(const uint8_t *data, size_t len, enum qstream_chan chan,
		const struct qstream *blocks, size_t chunk, bool copy, struct result *res)
{
	struct sink s = { 0 };
	struct qstream *q;
	size_t off = 0;

	assert_int_equal(qstream_new(&q, chan), 0);
	if (blocks && chan != QSTREAM_MAIN)
		assert_int_equal(qstream_copy_blocks(q, blocks), 0);
	s.q = q;
	while (off < len) {
		size_t n = chunk ? chunk : 1 + rng() % (256 * 1024);

		if (n > len - off)
			n = len - off;
		if (copy) {
			uint8_t *b = malloc(n);

			assert_non_null(b);
			memcpy(b, data + off, n);
			assert_int_equal(qstream_feed(q, b, n, collect, &s), 0);
			free(b);
		} else {
			assert_int_equal(qstream_feed(q, data + off, n, collect, &s), 0);
		}
		off += n;
	}
	assert_int_equal(qstream_finish(q, collect, &s), 0);
	assert_int_equal(qstream_feed(q, data, len ? 1 : 0, collect, &s), -EINVAL);
	assert_int_equal(s.len, len);
	assert_true(len == 0 || memcmp(s.out, data, len) == 0);
	qstream_get_stats(q, &res->st);
	assert_int_equal(res->st.bytes, len);
	res->state = qstream_state(q);
	snprintf(res->reason, sizeof(res->reason), "%s", qstream_reason(q) ? qstream_reason(q) : "");
	memcpy(res->kinds, s.kinds, sizeof(s.kinds));
	assert_int_equal(res->kinds[QSTREAM_PAGE], res->st.pages);
	assert_int_equal(res->kinds[QSTREAM_ZERO], res->st.zeros);
	assert_int_equal(res->kinds[QSTREAM_PACKET], res->st.packets + res->st.syncs);
	free(s.out);
	qstream_free(q);
}

/* The main channel of r's case, parsed, for its block list (NULL if r is
 * the main channel or its case has none). The caller frees it. */
static struct qstream *main_blocks(const struct rec *r)
{
	const struct rec *m;
	struct sink s = { 0 };
	struct qstream *q;

	if (r->chan == QSTREAM_MAIN || r->main_of < 0)
		return NULL;
	m = &recs[r->main_of];
	assert_int_equal(qstream_new(&q, QSTREAM_MAIN), 0);
	s.q = q;
	assert_int_equal(qstream_feed(q, m->data, m->len, collect, &s), 0);
	assert_int_equal(qstream_finish(q, collect, &s), 0);
	free(s.out);
	return q;
}

/* --- the recordings ------------------------------------------------------ */

static void test_round_trip_every_chunking(void **state)
{
	static const size_t chunks[] = { 1, 7, 4095, 128 * 1024, 0, 0, 0 };

	(void)state;
	printf("random chunk sizes from seed 0x%llx\n", (unsigned long long)rng_state);
	for (int i = 0; i < nrecs; i++) {
		const struct rec *r = &recs[i];
		struct qstream *bl = main_blocks(r);
		struct result whole, res;

		run(r->data, r->len, r->chan, bl, r->len ? r->len : 1, false, &whole);
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			run(r->data, r->len, r->chan, bl, chunks[c], false, &res);
			/* The chunking changes how PASS runs are cut, nothing else. */
			assert_int_equal(res.st.pages, whole.st.pages);
			assert_int_equal(res.st.zeros, whole.st.zeros);
			assert_int_equal(res.st.named, whole.st.named);
			assert_int_equal(res.st.packets, whole.st.packets);
			assert_int_equal(res.st.syncs, whole.st.syncs);
			assert_int_equal(res.st.pass_bytes, whole.st.pass_bytes);
			assert_int_equal(res.st.gave_up_at, whole.st.gave_up_at);
			assert_int_equal(res.state, whole.state);
			assert_string_equal(res.reason, whole.reason);
		}
		printf("%-38s %8zu bytes: %5llu PAGE %6llu ZERO %4llu packets %2llu SYNC, %s %s\n",
		       r->label, r->len, (unsigned long long)whole.st.pages,
		       (unsigned long long)whole.st.zeros, (unsigned long long)whole.st.packets,
		       (unsigned long long)whole.st.syncs,
		       whole.state == QSTREAM_PARSING ? "parsed to the end"
		       : whole.state == QSTREAM_TAIL  ? "parsed to EOF (or not a parsed channel)"
						      : "gave up:",
		       whole.reason);
		qstream_free(bl);
	}
}

/* stream-scan.py's count for key in path, or -1 if the line is missing. */
struct scan {
	char key[96];
	long long val;
};

static int run_scan(const char *path, struct scan *out, int max)
{
	char cmd[2048], line[512];
	int n = 0;
	FILE *p;

	if (snprintf(cmd, sizeof(cmd),
		     "command -v zstd >/dev/null && command -v python3 >/dev/null && "
		     "python3 %s/tests/tools/stream-scan.py '%.512s' 2>&1",
		     FERRY_SOURCE_DIR, path) >= (int)sizeof(cmd))
		return -1;
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p) && n < max) {
		char *sp;

		if (strncmp(line, "  ", 2) != 0)
			continue;
		sp = strrchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		out[n].val = atoll(sp + 1);
		while (sp > line && sp[-1] == ' ')
			*--sp = '\0';
		snprintf(out[n].key, sizeof(out[n].key), "%.95s", line + 2);
		n++;
	}
	return pclose(p) == 0 ? n : -1;
}

static long long scan_get(const struct scan *s, int n, const char *suffix)
{
	long long sum = 0;
	int found = 0;

	/* The multifd keys carry the channel's id (mfd0:, mfd1:). */
	for (int i = 0; i < n; i++) {
		const char *colon = strchr(s[i].key, ':');

		if (colon && strcmp(colon + 2, suffix) == 0) {
			sum += s[i].val;
			found = 1;
		}
	}
	return found ? sum : 0;
}

static void test_counts_match_stream_scan(void **state)
{
	static struct scan s[512];

	(void)state;
	for (int i = 0; i < nrecs; i++) {
		const struct rec *r = &recs[i];
		struct qstream *bl = main_blocks(r);
		struct result res;
		int n = run_scan(r->path, s, 512);

		if (n < 0) {
			printf("stream-scan.py not runnable (python3, zstd): counts not compared\n");
			qstream_free(bl);
			skip();
		}
		run(r->data, r->len, r->chan, bl, 128 * 1024, false, &res);
		switch (r->chan) {
		case QSTREAM_MAIN:
			assert_int_equal(res.st.pages, scan_get(s, n, "PAGE"));
			assert_int_equal(res.st.zeros, scan_get(s, n, "ZERO"));
			assert_int_equal(res.st.named, scan_get(s, n, "block name given"));
			/* Precopy ends in device state, postcopy at EOF after it. */
			if (scan_get(s, n, "VMDESCRIPTION")) {
				assert_int_equal(res.state, QSTREAM_GAVE_UP);
				assert_non_null(strstr(res.reason, "device section"));
			} else {
				assert_int_equal(res.state, QSTREAM_TAIL);
			}
			break;
		case QSTREAM_PREEMPT:
			assert_int_equal(res.state, QSTREAM_PARSING);
			assert_int_equal(res.st.pages, scan_get(s, n, "PAGE"));
			assert_int_equal(res.st.zeros, scan_get(s, n, "ZERO"));
			break;
		case QSTREAM_MULTIFD:
			if (scan_get(s, n, "compression nocomp") !=
			    scan_get(s, n, "page packets") + scan_get(s, n, "SYNC packets")) {
				/* Compressed: SYNCs until the first compressed packet. */
				assert_int_equal(res.state, QSTREAM_GAVE_UP);
				assert_non_null(strstr(res.reason, "compression"));
				assert_int_equal(res.st.pages, 0);
				break;
			}
			assert_int_equal(res.state, QSTREAM_PARSING);
			assert_int_equal(res.st.pages, scan_get(s, n, "normal pages"));
			assert_int_equal(res.st.zeros, scan_get(s, n, "zero pages"));
			assert_int_equal(res.st.packets, scan_get(s, n, "page packets"));
			assert_int_equal(res.st.syncs, scan_get(s, n, "SYNC packets"));
			break;
		case QSTREAM_OPAQUE:
			assert_int_equal(res.st.pass_bytes, r->len);
			break;
		}
		qstream_free(bl);
	}
}

/* --- hostile input -------------------------------------------------------- */

static void test_truncated(void **state)
{
	(void)state;
	for (int i = 0; i < nrecs; i++) {
		const struct rec *r = &recs[i];
		struct qstream *bl = main_blocks(r);
		struct result res;

		/* Every cut in the first records, then cuts anywhere. */
		for (size_t cut = 0; cut < 1500 && cut <= r->len; cut++)
			run(r->data, cut, r->chan, bl, 0, true, &res);
		for (int k = 0; k < 40; k++)
			run(r->data, rng() % (r->len + 1), r->chan, bl, 0, true, &res);
		qstream_free(bl);
	}
}

static void test_flipped_bytes(void **state)
{
	(void)state;
	for (int i = 0; i < nrecs; i++) {
		const struct rec *r = &recs[i];
		size_t len = r->len < 300000 ? r->len : 300000;
		uint8_t *d = malloc(len ? len : 1);
		struct result res;

		assert_non_null(d);
		for (int k = 0; k < 60; k++) {
			memcpy(d, r->data, len);
			for (int f = 1 + (int)(rng() % 4); f > 0; f--) {
				/* Mostly early, where the headers and names are. */
				size_t at = rng() % (k % 2 ? len : (len < 4096 ? len : 4096));

				d[at] ^= (uint8_t)(1u << (rng() % 8));
			}
			run(d, len, r->chan, NULL, 0, true, &res);
		}
		free(d);
	}
}

/* Crafted streams. */
struct w {
	uint8_t b[16384];
	size_t n;
};

static void w_bytes(struct w *w, const void *p, size_t n)
{
	assert_true(w->n + n <= sizeof(w->b));
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

/* A string literal's bytes, embedded NULs included. */
#define W(w, lit) w_bytes(w, lit, sizeof(lit) - 1)

static void w_u8(struct w *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_be(struct w *w, uint64_t v, int bytes)
{
	assert_true(bytes <= 8);
	for (int i = bytes - 1; i >= 0; i--)
		w_u8(w, (uint8_t)(v >> (8 * i)));
}

static void w_name(struct w *w, const char *s)
{
	w_u8(w, (uint8_t)strlen(s));
	w_bytes(w, s, strlen(s));
}

/* QEVM header, configuration, START ram, MEM_SIZE with pc.ram (1 MiB) and
 * pc.bios (256 KiB). */
static void w_main_head(struct w *w)
{
	w_be(w, 0x5145564d, 4);
	w_be(w, 3, 4);
	w_u8(w, 0x07);
	w_be(w, 14, 4);
	w_bytes(w, "pc-i440fx-10.0", 14);
	w_u8(w, 0x01);
	w_be(w, 1, 4);
	w_name(w, "ram");
	w_be(w, 0, 4);
	w_be(w, 4, 4);
	w_be(w, (1 << 20) + (256 << 10) + 0x04, 8);
	w_name(w, "pc.ram");
	w_be(w, 1 << 20, 8);
	w_name(w, "pc.bios");
	w_be(w, 256 << 10, 8);
}

static void w_page(struct w *w, uint64_t off, const char *name, bool zero)
{
	w_be(w, off | (zero ? 0x02 : 0x08) | (name ? 0 : 0x20), 8);
	if (name)
		w_name(w, name);
	if (zero) {
		w_u8(w, 0);
	} else {
		for (int i = 0; i < 4096; i++)
			w_u8(w, (uint8_t)(i * 7 + off / 4096));
	}
}

/* Runs a crafted stream in every chunking; checks the state, that the
 * reason names what went wrong, and the page counts before it. */
static void expect(const struct w *w, enum qstream_chan chan, enum qstream_state want,
		   const char *reason_has, uint64_t pages, uint64_t zeros)
{
	static const size_t chunks[] = { 1, 3, 4095, 65536, 0 };

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct result res;

		run(w->b, w->n, chan, NULL, chunks[c], true, &res);
		if (res.state != want || (reason_has && !strstr(res.reason, reason_has)))
			fail_msg("state %d reason \"%s\", wanted %d with \"%s\"", res.state, res.reason,
				 want, reason_has ? reason_has : "");
		assert_int_equal(res.st.pages, pages);
		assert_int_equal(res.st.zeros, zeros);
	}
}

static void test_crafted_main(void **state)
{
	static struct w w;
	char long_name[256];

	(void)state;
	memset(long_name, 'x', 255);
	long_name[255] = '\0';

	/* A good stream: pages, CONTINUE across a PART, EOS, footer, EOF. */
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 0x1000, "pc.ram", false);
	w_page(&w, 0x2000, NULL, true);
	w_be(&w, 0x10, 8);
	w_u8(&w, 0x7e);
	w_be(&w, 1, 4);
	w_u8(&w, 0x02);
	w_be(&w, 1, 4);
	w_page(&w, 0x3000, NULL, false);
	w_page(&w, 0x3f000, "pc.bios", true);
	w_be(&w, 0x200, 8);
	w_be(&w, 0x10, 8);
	w_u8(&w, 0x7e);
	w_be(&w, 1, 4);
	w_u8(&w, 0x08); /* SWITCHOVER_START */
	w_be(&w, 11, 2);
	w_be(&w, 0, 2);
	w_u8(&w, 0x00);
	W(&w, "\x06\0\0\0\2{}");
	expect(&w, QSTREAM_MAIN, QSTREAM_TAIL, NULL, 2, 2);

	/* A block name of 255 bytes that MEM_SIZE did not list. */
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 0, long_name, false);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "not in MEM_SIZE", 0, 0);

	/* A name with a NUL inside: QEMU would look up only what precedes it,
	 * so the parser must not take it for another block (found by fuzzing). */
	w.n = 0;
	w_main_head(&w);
	w_be(&w, 0x1000 | 0x02, 8);
	W(&w, "\x08pc.ram\0x\0");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "NUL byte", 0, 0);
	w.n = 0;
	W(&w, "\0\0\0\0\0\0\x10\x02\x08pc.ram\0x\0");
	expect(&w, QSTREAM_PREEMPT, QSTREAM_GAVE_UP, "NUL byte", 0, 0);

	/* An offset past its block, named and under CONTINUE. */
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 256 << 10, "pc.bios", true);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "beyond block", 0, 0);
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 0, "pc.ram", true);
	w_page(&w, 0xfffffffffffff000ull, NULL, true);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "beyond block", 0, 1);

	/* XBZRLE, HOOK, the removed COMPRESS_PAGE, FULL, unknown bits. */
	static const uint64_t bad_flags[] = { 0x40, 0x60, 0x80, 0x100, 0x01, 0x400, 0x0a };
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		w.n = 0;
		w_main_head(&w);
		w_page(&w, 0, "pc.ram", true);
		w_be(&w, 0x5000 | bad_flags[i], 8);
		w_name(&w, "pc.ram");
		W(&w, "\x01\x00\x04xyzw");
		expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP,
		       bad_flags[i] & 0x40 ? "XBZRLE" : "RAM record flags", 0, 1);
	}

	/* A ZERO record whose byte is not 0. */
	w.n = 0;
	w_main_head(&w);
	w_be(&w, 0x2000 | 0x02, 8);
	w_name(&w, "pc.ram");
	w_u8(&w, 0x55);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "fill byte 0x55", 0, 0);

	/* CONTINUE before any name; a page before MEM_SIZE. */
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 0, NULL, true);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "CONTINUE", 0, 0);

	/* MEM_SIZE: a block overrunning the total, 65 blocks, a name twice. */
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\1\0\0\0\1\3ram\0\0\0\0\0\0\0\4");
	w_be(&w, 0x10000 | 0x04, 8);
	w_name(&w, "pc.ram");
	w_be(&w, 0xffffffffffff0000ull, 8);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "overruns the total", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\1\0\0\0\1\3ram\0\0\0\0\0\0\0\4");
	w_be(&w, 0x1000 * 100 | 0x04, 8);
	for (int i = 0; i < 100; i++) {
		char n[16];

		snprintf(n, sizeof(n), "b%d", i);
		w_name(&w, n);
		w_be(&w, 0x1000, 8);
	}
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "more than 64 blocks", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\1\0\0\0\1\3ram\0\0\0\0\0\0\0\4");
	w_be(&w, 0x2000 | 0x04, 8);
	w_name(&w, "a");
	w_be(&w, 0x1000, 8);
	w_name(&w, "a");
	w_be(&w, 0x1000, 8);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "twice", 0, 0);

	/* Header, configuration, sections and commands it does not know. */
	w.n = 0;
	W(&w, "QEVM\0\0\0\2");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "stream version 2", 0, 0);
	w.n = 0;
	W(&w, "QEVN\0\0\0\3");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "magic", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\7\xff\xff\xff\xffpc");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "4294967295 bytes", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\7\0\0\0\2pc\5\x12");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "subsection", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\4\0\0\0\2\5timer\0\0\0\0\0\0\0\2\1\2\3");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "device section \"timer\"", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\1\0\0\0\2\x0c" "dirty-bitmap\0\0\0\0\0\0\0\1");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "not RAM", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\1\0\0\0\1\3ram\0\0\0\0\0\0\0\5");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "ram section version 5", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\2\0\0\0\x09");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "not ram", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\x08\0\x0c\0\0");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "command 12", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\x08\0\x02\0\x05\0\0\0\1\0");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "PING of 5 bytes", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\x08\0\x07\0\x04\xff\xff\xff\xff\0");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "package of 4294967295", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\x08\0\x08\0\0");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "ENABLE_COLO", 0, 0);
	w.n = 0;
	W(&w, "QEVM\0\0\0\3\x42");
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "item type 0x42", 0, 0);

	/* A package goes through whole; the page after it is parsed. */
	w.n = 0;
	w_main_head(&w);
	w_be(&w, 0x10, 8);
	W(&w, "\x08\0\x07\0\x04"); /* PACKAGED, 11 bytes: */
	W(&w, "\0\0\0\x0b\x04\0\0\0\2\5timer");
	w_u8(&w, 0x02);
	w_be(&w, 1, 4);
	w_page(&w, 0x1000, "pc.ram", false);
	w_be(&w, 0x10, 8);
	w_u8(&w, 0x7e);
	w_be(&w, 1, 4);
	expect(&w, QSTREAM_MAIN, QSTREAM_PARSING, NULL, 1, 0);

	/* A stream that ends inside a page, and inside a record header: the
	 * reason gives the offset of the record. */
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 0x1000, "pc.ram", false);
	w.n -= 100;
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "ended inside an item (4011 bytes pending) at offset 83", 0, 0);
	w.n = 0;
	w_main_head(&w);
	w_page(&w, 0x1000, "pc.ram", true);
	w_u8(&w, 0);
	expect(&w, QSTREAM_MAIN, QSTREAM_GAVE_UP, "(1 bytes pending) at offset 99", 0, 1);
}

/* A multifd packet header: fields as given, offsets 0x1000 * (i + 1). */
static void w_packet(struct w *w, uint32_t flags, uint32_t alloc, uint32_t normal, uint32_t zero,
		     uint32_t next, const char *name, size_t name_bytes)
{
	uint8_t blk[256] = { 0 };

	w_be(w, 0x11223344, 4);
	w_be(w, 1, 4);
	w_be(w, flags, 4);
	w_be(w, alloc, 4);
	w_be(w, normal, 4);
	w_be(w, next, 4);
	w_be(w, 7, 8);
	w_be(w, zero, 4);
	w_be(w, 0, 4);
	for (int i = 0; i < 3; i++)
		w_be(w, 0, 8);
	memcpy(blk, name, name_bytes);
	w_bytes(w, blk, 256);
	for (uint32_t i = 0; i < 128; i++)
		w_be(w, i < normal + zero ? 0x1000ull * (i + 1) : 0, 8);
}

static void w_mfd_init(struct w *w)
{
	w->n = 0;
	w_be(w, 0x11223344, 4);
	w_be(w, 1, 4);
	for (int i = 0; i < 7; i++)
		w_be(w, 0, 8);
}

static void test_crafted_multifd(void **state)
{
	static struct w w;
	char big[256];

	(void)state;
	memset(big, 'y', sizeof(big));

	/* SYNC, a packet of 2 normal + 3 zero pages, a device state packet, SYNC. */
	w_mfd_init(&w);
	w_packet(&w, 1, 0, 0, 0, 0, "", 0);
	w_packet(&w, 0, 128, 2, 3, 2 * 4096, "pc.ram", 6);
	for (int i = 0; i < 2 * 4096; i++)
		w_u8(&w, (uint8_t)i);
	w_be(&w, 0x11223344, 4);
	w_be(&w, 1, 4);
	w_be(&w, 0x40, 4);
	w_bytes(&w, big, 256);
	w_be(&w, 0, 4);
	w_be(&w, 5, 4);
	W(&w, "vfio!");
	w_packet(&w, 1, 0, 0, 0, 0, "", 0);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_PARSING, NULL, 2, 3);

	/* Counts past what a packet holds, a lying next_packet_size. */
	w_mfd_init(&w);
	w_packet(&w, 0, 1000, 1, 0, 4096, "pc.ram", 6);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "1000 allocated", 0, 0);
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 129, 0, 129 * 4096, "pc.ram", 6);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "129 normal", 0, 0);
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 100, 29, 100 * 4096, "pc.ram", 6);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "29 zero", 0, 0);
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 1, 0, 0xffffffffu, "pc.ram", 6);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "next_packet_size 4294967295", 0, 0);

	/* Block names: no NUL in 256 bytes, none at all, offsets misaligned. */
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 0, 1, 0, big, 256);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "NUL", 0, 0);
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 0, 1, 0, "", 0);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "no block name", 0, 0);
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 0, 1, 0, "pc.ram", 6);
	w.b[w.n - 128 * 8 + 7] = 0x08;
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "offset 0x1008", 0, 0);

	/* Flags, magic, version, compression. */
	w_mfd_init(&w);
	w_packet(&w, 0x80, 128, 0, 1, 0, "pc.ram", 6);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "flags 0x80", 0, 0);
	w_mfd_init(&w);
	w_packet(&w, 0x04, 128, 1, 0, 77, "pc.ram", 6);
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "compression zstd", 0, 0);
	w_mfd_init(&w);
	w.b[7] = 2;
	expect(&w, QSTREAM_MULTIFD, QSTREAM_GAVE_UP, "version 2", 0, 0);

	/* Checked against a block list: unknown name, offset past the block. */
	w_mfd_init(&w);
	w_packet(&w, 0, 128, 0, 2, 0, "pc.ram", 6);
	{
		struct qstream *bl, *q;
		struct sink s = { 0 };

		assert_int_equal(qstream_new(&bl, QSTREAM_PREEMPT), 0);
		assert_int_equal(qstream_add_block(bl, "pc.ram", 0x2000), 0);
		assert_int_equal(qstream_add_block(bl, "pc.ram", 0x2000), -EINVAL);
		assert_int_equal(qstream_add_block(bl, "", 0x2000), -EINVAL);
		assert_int_equal(qstream_new(&q, QSTREAM_MULTIFD), 0);
		assert_int_equal(qstream_copy_blocks(q, bl), 0);
		s.q = q;
		assert_int_equal(qstream_feed(q, w.b, w.n, collect, &s), 0);
		assert_int_equal(qstream_state(q), QSTREAM_GAVE_UP);
		assert_non_null(strstr(qstream_reason(q), "offset 0x2000 beyond"));
		assert_int_equal(s.len, w.n);
		qstream_free(q);
		qstream_free(bl);
		free(s.out);
	}
}

static void test_rebuild_refuses_bad_items(void **state)
{
	uint8_t page[4096] = { 0 }, out[8192];
	struct qstream_item it = {
		.kind = QSTREAM_PAGE, .form = QSTREAM_RECORD, .named = true, .name = "pc.ram",
		.name_len = 6, .offset = 0x5000, .data = page, .len = 4096,
	};

	(void)state;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), 8 + 7 + 4096);
	assert_memory_equal(out, "\0\0\0\0\0\0\x50\x08\6pc.ram", 15);
	assert_int_equal(qstream_rebuild(&it, out, 8 + 7 + 4095), -ENOSPC);
	/* The head alone: the same first bytes, no content, no more room. */
	memset(out, 0xee, sizeof(out));
	assert_int_equal(qstream_rebuild_head(&it, out, 15), 15);
	assert_memory_equal(out, "\0\0\0\0\0\0\x50\x08\6pc.ram", 15);
	assert_int_equal(out[15], 0xee);
	assert_int_equal(qstream_rebuild_head(&it, out, 14), -ENOSPC);
	it.offset = 0x5001;
	assert_int_equal(qstream_rebuild_head(&it, out, sizeof(out)), -EINVAL);
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), -EINVAL);
	it.offset = 0x5000;
	it.name_len = 0;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), -EINVAL);
	it.named = false;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), 8 + 4096);
	assert_memory_equal(out, "\0\0\0\0\0\0\x50\x28", 8);
	it.len = 4095;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), -EINVAL);
	it.kind = QSTREAM_ZERO;
	it.fill = 0;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), 9);
	assert_memory_equal(out, "\0\0\0\0\0\0\x50\x22\0", 9);
	it.form = QSTREAM_IN_PACKET;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), 0);
	it.kind = QSTREAM_PACKET;
	it.len = 100;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), -EINVAL);
	it.kind = QSTREAM_PASS;
	it.data = NULL;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), -EINVAL);
	it.kind = (enum qstream_kind)9;
	assert_int_equal(qstream_rebuild(&it, out, sizeof(out)), -EINVAL);
}

/* A failing callback stops the parser for good, with its error. */
static void test_callback_error_is_sticky(void **state)
{
	const struct rec *r = NULL;
	struct sink s = { .fail_at = 3 };
	struct qstream *q;

	(void)state;
	for (int i = 0; i < nrecs; i++)
		if (strncmp(recs[i].label, "single/", 7) == 0)
			r = &recs[i];
	assert_non_null(r);
	assert_int_equal(qstream_new(&q, r->chan), 0);
	s.q = q;
	assert_int_equal(qstream_feed(q, r->data, r->len, collect, &s), -ENOSPC);
	assert_int_equal(qstream_state(q), QSTREAM_FAILED);
	assert_int_equal(qstream_feed(q, r->data, r->len, collect, &s), -ENOSPC);
	assert_int_equal(qstream_finish(q, collect, &s), -ENOSPC);
	assert_int_equal(s.items, 3);
	free(s.out);
	qstream_free(q);
	qstream_free(NULL);
	assert_int_equal(qstream_new(&q, (enum qstream_chan)7), -EINVAL);
	assert_null(q);
}

/* --- throughput ----------------------------------------------------------- */

static int count_only(void *arg, const struct qstream_item *it)
{
	uint64_t *n = arg;

	*n += it->len;
	return 0;
}

struct copy_sink {
	uint8_t *out;
	size_t len;
};

static int rebuild_into(void *arg, const struct qstream_item *it)
{
	struct copy_sink *c = arg;
	ssize_t n = qstream_rebuild(it, c->out + c->len, SIZE_MAX / 2);

	c->len += (size_t)n;
	return 0;
}

/* Parses r in 128 KiB chunks for at least 64 MiB and 0.2 s; adds its size
 * and the time of one pass over it to tot. */
static double bench_one(const struct rec *r, bool rebuild, uint8_t *out, double tot[2])
{
	uint64_t t0 = time_mono_ns(), done = 0, sink = 0, ns, passes = 0;
	const size_t chunk = 128 * 1024;

	while (done < (64u << 20) || time_mono_ns() - t0 < 200000000ull) {
		struct copy_sink cs = { out, 0 };
		struct qstream *q;

		assert_int_equal(qstream_new(&q, r->chan), 0);
		for (size_t off = 0; off < r->len; off += chunk) {
			size_t n = r->len - off < chunk ? r->len - off : chunk;

			if (rebuild)
				assert_int_equal(qstream_feed(q, r->data + off, n, rebuild_into, &cs), 0);
			else
				assert_int_equal(qstream_feed(q, r->data + off, n, count_only, &sink), 0);
		}
		assert_int_equal(qstream_finish(q, rebuild ? rebuild_into : count_only,
						rebuild ? (void *)&cs : (void *)&sink), 0);
		qstream_free(q);
		done += r->len;
		passes++;
	}
	ns = time_mono_ns() - t0;
	tot[0] += (double)r->len;
	tot[1] += (double)ns / (double)passes;
	return (double)done * 1e3 / (double)ns;
}

/* MB/s of the parser alone (the callback only counts) and of parsing plus
 * rebuilding every item into a buffer, as the two agents would. Channels
 * that are mostly PASS after the parser gave up cost next to nothing per
 * byte; the figures that matter are the ones full of records (single,
 * multifd-legacy main, postcopy main, the nocomp multifd channels) and the
 * total. */
static void test_throughput(void **state)
{
	double parse[2] = { 0, 0 }, both[2] = { 0, 0 };
	size_t max = 0;
	uint8_t *out;

	(void)state;
	for (int i = 0; i < nrecs; i++)
		max = recs[i].len > max ? recs[i].len : max;
	out = malloc(max);
	assert_non_null(out);
	printf("parser throughput, one core, 128 KiB chunks (MB/s): parse only / parse + rebuild\n");
	for (int i = 0; i < nrecs; i++) {
		double a, b;

		if (recs[i].chan == QSTREAM_OPAQUE)
			continue;
		a = bench_one(&recs[i], false, out, parse);
		b = bench_one(&recs[i], true, out, both);
		printf("  %-38s %8.0f / %8.0f\n", recs[i].label, a, b);
	}
	printf("  %-38s %8.0f / %8.0f\n", "all channels above, each once", parse[0] * 1e3 / parse[1],
	       both[0] * 1e3 / both[1]);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_chunking),
		cmocka_unit_test(test_counts_match_stream_scan),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_crafted_main),
		cmocka_unit_test(test_crafted_multifd),
		cmocka_unit_test(test_rebuild_refuses_bad_items),
		cmocka_unit_test(test_callback_error_is_sticky),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
