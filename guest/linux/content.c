/*
 * content.c - what the Linux guest writes, its checksum, and the pacer.
 *
 * A page (RAM) or block (disk) is 4 KiB: a 16-byte stamp, then xorshift64
 * words seeded by a hash of index and generation, so a write that a
 * migration lost leaves a unit that differs in every word, not only in its
 * stamp. The body is incompressible on purpose: what a compressor gains
 * is ferry-guest's to measure.
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

uint32_t content_csum(const uint64_t *w)
{
	uint64_t h = 0x6a09e667f3bcc909ull;

	for (unsigned i = 0; i < LG_WORDS; i++)
		h = (h ^ w[i]) * 0x100000001b3ull + (h >> 29);
	return (uint32_t)(mix64(h) >> 32);
}

uint32_t content_fill(uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen)
{
	uint64_t x = mix64(index * 0x9e3779b97f4a7c15ull + gen + 1) | 1;

	w[0] = ((uint64_t)(uint32_t)index << 32) | magic;
	w[1] = ((uint64_t)stamp_hash(magic, index, gen) << 32) | gen;
	for (unsigned i = 2; i < LG_WORDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	return content_csum(w);
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
