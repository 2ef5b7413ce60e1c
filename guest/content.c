/*
 * content.c - see content.h.
 */
#include <stddef.h>

#include "content.h"

/*
 * Text pages are a random walk over these words and phrases, separated by
 * spaces and now and then a newline. Real prose repeats whole phrases,
 * which is what LZ4 (4-byte minimum matches) feeds on; single short words
 * alone would compress only ~1.6x. Half the draws are phrases, which puts
 * a text page at about 2-3x with LZ4, without shipping any real text.
 */
static const char *const phrases[32] = {
	"of the", "in the", "to the", "on the other hand", "at the same time",
	"as well as", "the guest keeps running", "while the copy goes on",
	"for the rest of the", "it is not", "there is no", "one of the",
	"the dirty rate", "pages per second", "over the link", "in this case",
	"as long as", "at the end of the", "and the target", "is sent again",
	"with a little", "from the source", "before the switch", "the last pass",
	"a short pause", "and so on", "by the way", "if it does not converge",
	"more or less", "the working set", "at least once", "for a while",
};

static const char *const words[64] = {
	"the", "of", "and", "to", "a", "in", "is", "that",
	"for", "it", "on", "with", "as", "was", "be", "by",
	"this", "are", "or", "from", "at", "which", "not", "but",
	"have", "an", "they", "page", "memory", "guest", "migration", "host",
	"dirty", "copy", "rate", "link", "source", "target", "block", "disk",
	"virtual", "machine", "network", "buffer", "stream", "kernel", "time", "data",
	"running", "paused", "converge", "bandwidth", "compressed", "transfer",
	"iteration", "downtime", "throughput", "checkpoint", "snapshot", "device",
	"queue", "socket", "engine", "ferry",
};

uint32_t content_mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static inline uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* A nonzero PRNG seed per page and purpose (xorshift never leaves 0). */
static uint32_t seed(uint32_t idx, uint32_t salt)
{
	uint32_t s = content_mix32(idx ^ salt);

	return s ? s : 0x9E3779B9U;
}

enum profile content_profile(uint32_t idx, const uint32_t mix[PROFILE_COUNT])
{
	uint32_t sum = mix[0] + mix[1] + mix[2];
	uint32_t h;

	if (!sum)
		return PROFILE_ZERO;
	h = content_mix32(idx * 0x9E3779B1U + 0x7F4A7C15U) % sum;
	if (h < mix[PROFILE_ZERO])
		return PROFILE_ZERO;
	if (h < mix[PROFILE_ZERO] + mix[PROFILE_TEXT])
		return PROFILE_TEXT;
	return PROFILE_RANDOM;
}

/* Bodies fill buf[STAMP_SIZE..end), end a multiple of 4, from seed s. */
static void body_random(uint32_t s, uint8_t *buf, uint32_t end)
{
	uint32_t *w = (uint32_t *)buf;

	for (uint32_t i = STAMP_SIZE / 4; i < end / 4; i++)
		w[i] = xorshift32(&s);
}

static void body_text(uint32_t s, uint8_t *buf, uint32_t end)
{
	uint32_t pos = STAMP_SIZE;

	while (pos < end) {
		uint32_t r = xorshift32(&s);
		/* product of two uniform 0..63 draws, scaled: favours low ids */
		const char *w = (r >> 20) & 1 ? phrases[(r >> 21) & 31]
					      : words[((r & 63) * ((r >> 6) & 63)) >> 6];
		char sep = (r >> 12) % 16 == 0 ? '\n' : ' ';

		while (*w && pos < end)
			buf[pos++] = (uint8_t)*w++;
		if (pos < end)
			buf[pos++] = (uint8_t)sep;
	}
}

static void body(enum profile prof, uint32_t s_text, uint32_t s_random,
		 uint8_t *buf, uint32_t end)
{
	switch (prof) {
	case PROFILE_TEXT:
		body_text(s_text, buf, end);
		break;
	case PROFILE_RANDOM:
		body_random(s_random, buf, end);
		break;
	default:
		for (uint32_t i = STAMP_SIZE / 4; i < end / 4; i++)
			((uint32_t *)buf)[i] = 0;
		break;
	}
}

void content_body(uint32_t idx, enum profile prof, uint8_t *page)
{
	body(prof, seed(idx, 0x54455854U), seed(idx, 0x52414E44U), page,
	     PAGE_SIZE);
}

/*
 * Sparse slots: slot k lies in the k-th third of the page (1360 bytes
 * each after the stamp), so the three never overlap each other or the
 * stamp: 16 + 2 * 1360 + 169 * 8 + 8 = 4096.
 */
#define SPARSE_THIRD 1360u

uint32_t content_sparse_offset(uint32_t idx, uint32_t k)
{
	uint32_t h = content_mix32(idx * 3u + k + 0x51A7E000U);

	return STAMP_SIZE + k * SPARSE_THIRD +
	       h % (SPARSE_THIRD / SPARSE_SLOT_SIZE) * SPARSE_SLOT_SIZE;
}

/*
 * Slot 0 is a counter (low word the generation, high word fixed per
 * page, as a 64-bit counter's would stay); slots 1 and 2 are the next
 * and prev links of a list node: both words change each generation.
 */
void content_sparse(uint8_t *page, uint32_t idx, uint32_t gen)
{
	volatile uint32_t *w;

	w = (volatile uint32_t *)(page + content_sparse_offset(idx, 0));
	w[0] = gen;
	w[1] = content_mix32(idx) & 0xFFu;
	for (uint32_t k = 1; k < SPARSE_SLOTS; k++) {
		uint32_t h = content_mix32(idx ^ content_mix32(gen * 2u + k));

		w = (volatile uint32_t *)(page + content_sparse_offset(idx, k));
		w[0] = h & ~7u;                 /* an aligned "pointer" */
		w[1] = content_mix32(h);
	}
}

void content_page_body(uint32_t idx, enum profile prof, uint32_t gen,
		       enum rewrite rw, uint8_t *page)
{
	uint32_t g;

	if (!gen || rw == REWRITE_STAMP) {
		content_body(idx, prof, page);
		return;
	}
	if (rw == REWRITE_SPARSE) {
		content_body(idx, prof, page);
		content_sparse(page, idx, gen);
		return;
	}
	g = content_mix32(gen * 0x9E3779B1U + 0x50414745U);
	body(prof, seed(idx ^ g, 0x54455854U), seed(idx ^ g, 0x52414E44U),
	     page, PAGE_SIZE);
}

static uint32_t stamp_csum(uint32_t idx, uint32_t gen)
{
	return content_mix32(STAMP_MAGIC ^ content_mix32(idx ^ content_mix32(gen)));
}

void content_stamp(uint8_t *page, uint32_t idx, uint32_t gen)
{
	volatile struct stamp *st = (volatile struct stamp *)page;

	st->magic = STAMP_MAGIC;
	st->index = idx;
	st->gen = gen;
	st->csum = stamp_csum(idx, gen);
}

const char *content_check_stamp(const uint8_t *page, uint32_t idx, uint32_t gen)
{
	const struct stamp *st = (const struct stamp *)page;

	if (st->magic != STAMP_MAGIC)
		return "magic";
	if (st->csum != stamp_csum(st->index, st->gen))
		return "csum";
	if (st->index != idx)
		return "index";
	if (st->gen != gen)
		return "gen";
	return NULL;
}

/*
 * Sectors: the whole sector is rewritten each time, so unlike a page its
 * body changes with the generation too. A stale sector (a write the
 * migration lost) then differs in every word, not just in its stamp.
 */
static uint32_t sector_seed(uint32_t lba, uint32_t gen, uint32_t salt)
{
	return seed(lba * 0x9E3779B1U ^ content_mix32(gen), salt);
}

static uint32_t sector_csum(uint32_t lba, uint32_t gen)
{
	return content_mix32(SECTOR_MAGIC ^ content_mix32(lba ^ content_mix32(gen)));
}

void content_sector(uint8_t *sec, uint32_t lba, uint32_t gen, enum profile prof)
{
	struct stamp *st = (struct stamp *)sec;

	st->magic = SECTOR_MAGIC;
	st->index = lba;
	st->gen = gen;
	st->csum = sector_csum(lba, gen);
	body(prof, sector_seed(lba, gen, 0x44545854U),
	     sector_seed(lba, gen, 0x4452414EU), sec, SECTOR_SIZE);
}

const char *content_check_sector_stamp(const uint8_t *sec, uint32_t lba,
				       uint32_t gen)
{
	const struct stamp *st = (const struct stamp *)sec;

	if (st->magic != SECTOR_MAGIC)
		return "magic";
	if (st->csum != sector_csum(st->index, st->gen))
		return "csum";
	if (st->index != lba)
		return "lba";
	if (st->gen != gen)
		return "gen";
	return NULL;
}
