/*
 * pages.h - the RAM workload: fill a region with stamped pages, re-dirty a
 * working set of them, verify all of them.
 *
 * State (region, per-page generations, cursor) lives in guest RAM, so it
 * migrates with the guest and verify on the target checks against it.
 */
#ifndef FERRY_GUEST_PAGES_H
#define FERRY_GUEST_PAGES_H

#include <stdint.h>

#include "content.h"

struct pages_config {
	uint32_t fill_mib;
	uint32_t wss_mib;
	uint32_t mix[PROFILE_COUNT];
	enum rewrite rewrite;        /* what dirtying rewrites (content.h) */
};

/*
 * Lay out the generation table and the region in free RAM [base, limit),
 * shrinking fill and wss to what fits, and fill every page. Returns the
 * number of pages filled.
 */
uint32_t pages_setup(uintptr_t base, uintptr_t limit, struct pages_config *cfg);

/*
 * Dirty the next n pages of the working set: bump each one's generation
 * and rewrite its stamp (16 bytes), plus its sparse words or its whole
 * body by the rewrite mode. The walk visits every working-set page once
 * per cycle.
 */
void pages_dirty(uint32_t n);

/* Pages dirtied since boot (a page dirtied twice counts twice). */
uint64_t pages_dirtied(void);

/*
 * Check every filled page against the table and the recomputed body.
 * Returns the number of bad pages; *first and *reason describe the first.
 */
uint32_t pages_verify(uint32_t *first, const char **reason);

/*
 * Test hook: flip one byte in the body of page idx behind the table's back,
 * so that a test can watch verify catch it. -1 if idx is not filled. The
 * byte is never one a sparse rewrite writes, so dirtying does not undo
 * it; a whole-page rewrite (REWRITE_PAGE) of a working-set page does.
 */
int pages_corrupt(uint32_t idx);

uint32_t pages_count(void);

#endif
