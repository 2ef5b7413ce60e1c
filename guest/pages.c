/*
 * pages.c - see pages.h.
 */
#include <stddef.h>

#include "lib.h"
#include "pages.h"

#define PAGES_PER_MIB (1048576u / PAGE_SIZE)

static uint8_t *region;          /* page 0 of the filled region */
static uint32_t *gens;           /* generation per page; 0 = as filled */
static uint32_t npages;
static uint32_t wss_pages;
/*
 * The dirty walk goes round the working set in address order: every page
 * once per cycle, so "distinct pages dirtied per second" equals the set
 * rate whenever the set is larger than rate x measuring window. In order,
 * the generation table changes one page per 1024 pages dirtied; a
 * scattered walk would dirty a table page for nearly every page and QEMU
 * would count those too (+10% at 1 MB/s, measured).
 */
static uint32_t walk_pos;
static uint64_t dirtied;
static uint32_t mix[PROFILE_COUNT];
static enum rewrite rewrite;
static uint8_t scratch[PAGE_SIZE];  /* verify's recomputed page */

static inline uint8_t *page(uint32_t idx)
{
	return region + (size_t)idx * PAGE_SIZE;
}

static int is_zero(const uint8_t *p, uint32_t from)
{
	const uint32_t *w = (const uint32_t *)p;
	uint32_t acc = 0;

	for (uint32_t i = from / 4; i < PAGE_SIZE / 4; i++)
		acc |= w[i];
	return acc == 0;
}

/* Word-wise: byte loops cost 4x under TCG, and verify reads all of RAM. */
static int same_body(const uint8_t *a, const uint8_t *b)
{
	const uint32_t *x = (const uint32_t *)a, *y = (const uint32_t *)b;

	for (uint32_t i = STAMP_SIZE / 4; i < PAGE_SIZE / 4; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

/*
 * Zero-profile pages get no stamp: QEMU must see them as all-zero. Fresh
 * guest RAM is already zero and reading it keeps it unbacked on the host,
 * so write only where the page is not zero yet (firmware leftovers).
 */
static void fill_page(uint32_t idx)
{
	uint8_t *p = page(idx);
	enum profile prof = content_profile(idx, mix);

	if (prof == PROFILE_ZERO) {
		if (!is_zero(p, 0))
			memset(p, 0, PAGE_SIZE);
		return;
	}
	content_body(idx, prof, p);
	content_stamp(p, idx, 0);
}

uint32_t pages_setup(uintptr_t base, uintptr_t limit, struct pages_config *cfg)
{
	uint32_t max_pages, want;

	/*
	 * Each page costs PAGE_SIZE plus its 4-byte table entry; one more
	 * page covers rounding the table up to a page boundary.
	 */
	base = (base + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
	max_pages = limit > base + PAGE_SIZE ?
		(limit - base - PAGE_SIZE) / (PAGE_SIZE + 4) : 0;
	want = cfg->fill_mib * PAGES_PER_MIB;
	npages = want < max_pages ? want : max_pages;
	npages -= npages % PAGES_PER_MIB;           /* whole MiB */
	cfg->fill_mib = npages / PAGES_PER_MIB;
	if (cfg->wss_mib > cfg->fill_mib)
		cfg->wss_mib = cfg->fill_mib;
	wss_pages = cfg->wss_mib * PAGES_PER_MIB;
	memcpy(mix, cfg->mix, sizeof(mix));
	rewrite = cfg->rewrite;

	gens = (uint32_t *)base;
	region = (uint8_t *)((base + (uintptr_t)npages * 4 + PAGE_SIZE - 1) &
			     ~(uintptr_t)(PAGE_SIZE - 1));
	memset(gens, 0, (size_t)npages * 4);
	for (uint32_t i = 0; i < npages; i++)
		fill_page(i);
	walk_pos = 0;
	return npages;
}

void pages_dirty(uint32_t n)
{
	if (!wss_pages)
		return;
	while (n--) {
		uint32_t idx = walk_pos;
		uint32_t g = gens[idx] + 1;

		if (!g)   /* 0 means "never rewritten"; skip it on wrap */
			g = 1;
		gens[idx] = g;
		if (rewrite == REWRITE_SPARSE) {
			content_sparse(page(idx), idx, g);
		} else if (rewrite == REWRITE_PAGE) {
			enum profile prof = content_profile(idx, mix);

			/* a zero page's body stays zero: nothing to write */
			if (prof != PROFILE_ZERO)
				content_page_body(idx, prof, g, REWRITE_PAGE,
						  page(idx));
		}
		content_stamp(page(idx), idx, g);
		dirtied++;
		if (++walk_pos == wss_pages)
			walk_pos = 0;
	}
}

uint64_t pages_dirtied(void)
{
	return dirtied;
}

/* NULL if page idx holds what the table says it should, else why not. */
static const char *check_page(uint32_t idx)
{
	const uint8_t *p = page(idx);
	enum profile prof = content_profile(idx, mix);
	const char *why;

	/* A zero-profile page never dirtied must be zero, stamp area too. */
	if (prof == PROFILE_ZERO && gens[idx] == 0)
		return is_zero(p, 0) ? NULL : "nonzero";
	why = content_check_stamp(p, idx, gens[idx]);
	if (why)
		return why;
	if (prof == PROFILE_ZERO && rewrite != REWRITE_SPARSE)
		return is_zero(p, STAMP_SIZE) ? NULL : "body";
	content_page_body(idx, prof, gens[idx], rewrite, scratch);
	return same_body(p, scratch) ? NULL : "body";
}

uint32_t pages_verify(uint32_t *first, const char **reason)
{
	uint32_t bad = 0;

	for (uint32_t i = 0; i < npages; i++) {
		const char *why = check_page(i);

		if (why && !bad++) {
			*first = i;
			*reason = why;
		}
	}
	return bad;
}

int pages_corrupt(uint32_t idx)
{
	uint32_t off = PAGE_SIZE / 2;

	if (idx >= npages)
		return -1;
	for (uint32_t k = 0; k < SPARSE_SLOTS; k++)
		if (off - content_sparse_offset(idx, k) < SPARSE_SLOT_SIZE)
			off += SPARSE_SLOT_SIZE;    /* the next word: no slot */
	page(idx)[off] ^= 0x5A;
	return 0;
}

uint32_t pages_count(void)
{
	return npages;
}
