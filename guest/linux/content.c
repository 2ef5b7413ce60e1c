/*
 * content.c - what the Linux guest writes, its checksum, and the pacer.
 *
 * A page (RAM) or block (disk) is 4 KiB: a 16-byte stamp, then xorshift64
 * words seeded by a hash of index and generation. A block is always
 * written whole, so a write that a migration lost leaves one that differs
 * in every word. A page is written whole at the fill; a dirtying rewrites
 * its first 64 bytes (the stamp and six body words: content_touch), which
 * is what makes QEMU send it again at a fraction of the guest's CPU. The
 * body is incompressible on purpose: what a compressor gains is
 * ferry-guest's to measure.
 */
#include <time.h>

#include "lguest.h"

uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint32_t stamp_hash(uint32_t magic, uint64_t index, uint32_t gen)
{
	return (uint32_t)(mix64(((uint64_t)magic << 32) ^ index ^ ((uint64_t)gen << 40)) >> 32);
}

/*
 * The checksum is the sum of the words' shares, each a hash of the word
 * and its place: a writer that changes a few words (content_touch) updates
 * it in a few steps, and verify still checks every byte of the unit.
 */
static uint32_t share(unsigned i, uint64_t w)
{
	return (uint32_t)(mix64(w ^ ((uint64_t)i << 52) ^ 0x243f6a8885a308d3ull) >> 32);
}

uint32_t content_csum(const uint64_t *w)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < LG_WORDS; i++)
		sum += share(i, w[i]);
	return sum;
}

/* The stamp and the first n - 2 body words of (index, gen) into w[0..n). */
static void generate(uint64_t *w, unsigned n, uint32_t magic, uint64_t index, uint32_t gen)
{
	uint64_t x = mix64(index * 0x9e3779b97f4a7c15ull + gen + 1) | 1;

	w[0] = ((uint64_t)(uint32_t)index << 32) | magic;
	w[1] = ((uint64_t)stamp_hash(magic, index, gen) << 32) | gen;
	for (unsigned i = 2; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

uint32_t content_fill(uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen)
{
	generate(w, LG_WORDS, magic, index, gen);
	return content_csum(w);
}

uint32_t content_touch(uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen, uint32_t csum)
{
	uint64_t nw[CONTENT_TOUCH_WORDS];

	generate(nw, CONTENT_TOUCH_WORDS, magic, index, gen);
	for (unsigned i = 0; i < CONTENT_TOUCH_WORDS; i++) {
		csum += share(i, nw[i]) - share(i, w[i]);
		w[i] = nw[i];
	}
	return csum;
}

const char *content_why(const uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen)
{
	if ((uint32_t)w[0] != magic)
		return "magic";
	if ((uint32_t)(w[0] >> 32) != (uint32_t)index)
		return "index";
	if ((uint32_t)w[1] != gen)
		return "gen";
	return "csum";
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pacer_set(struct pacer *p, uint64_t rate, uint32_t unit, uint64_t now)
{
	p->rate = rate;
	p->unit = unit;
	p->last = now;
	p->credit = 0;
}

uint64_t pacer_take(struct pacer *p, uint64_t now)
{
	uint64_t dt = now - p->last, cost, n;

	p->last = now;
	if (!p->rate)
		return 0;
	if (dt > PACER_MAX_GAP_NS) {
		dt = PACER_MAX_GAP_NS;
		/* what was owed before the gap is not carried past it either */
		p->credit = 0;
	}
	/* rate <= 1e10 B/s and dt <= 1e8 ns: the product fits in 64 bits */
	p->credit += dt * p->rate;
	cost = (uint64_t)p->unit * 1000000000ull;
	n = p->credit / cost;
	p->credit -= n * cost;
	return n;
}
