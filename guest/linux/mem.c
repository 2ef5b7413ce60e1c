/*
 * mem.c - the RAM workload: `fill` MiB of pages written at boot, the first
 * `wss` MiB of them rewritten at the `dirty` rate by MEM_WRITERS threads
 * (one per half, so both vCPUs write), a generation and a checksum per
 * page in a table that lives in guest RAM and so migrates with it.
 *
 * Each writer walks its half in address order, one page per step, so the
 * number of distinct pages dirtied in a window is rate x window while the
 * working set is larger (what QEMU counts). A dirtying rewrites the page's
 * first 64 bytes (content_touch) and updates its checksum from the words
 * it changed; verify checksums the whole page.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "lguest.h"

static uint64_t *page_at(struct mem *m, uint64_t i)
{
	return (uint64_t *)(m->base + i * LG_PAGE);
}

struct fill_arg {
	struct mem *m;
	uint64_t from, to;
};

static void *fill_range(void *p)
{
	struct fill_arg *a = p;

	for (uint64_t i = a->from; i < a->to; i++)
		a->m->tab[i].csum = content_fill(page_at(a->m, i), LG_MAGIC_PAGE, i, 0);
	return NULL;
}

int mem_setup(struct mem *m, uint64_t pages, uint64_t wss_pages)
{
	struct fill_arg half[MEM_WRITERS];
	pthread_t th[MEM_WRITERS];
	uint64_t per;

	m->pages = pages;
	m->wss_pages = wss_pages < pages ? wss_pages : pages;
	m->tab = calloc(pages ? pages : 1, sizeof(*m->tab));
	if (!m->tab)
		return -ENOMEM;
	m->base = mmap(NULL, (pages ? pages : 1) * LG_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m->base == MAP_FAILED)
		return -ENOMEM;
	/* Both vCPUs fill: boot time under TCG is mostly this. */
	per = (pages + MEM_WRITERS - 1) / MEM_WRITERS;
	for (int k = 0; k < MEM_WRITERS; k++) {
		half[k] = (struct fill_arg){ m, k * per, (k + 1) * per < pages ? (k + 1) * per : pages };
		if (half[k].from > half[k].to)
			half[k].from = half[k].to;
		if (pthread_create(&th[k], NULL, fill_range, &half[k]))
			fill_range(&half[k]), th[k] = 0;
	}
	for (int k = 0; k < MEM_WRITERS; k++)
		if (th[k])
			pthread_join(th[k], NULL);
	per = (m->wss_pages + MEM_WRITERS - 1) / MEM_WRITERS;
	for (int k = 0; k < MEM_WRITERS; k++) {
		struct mem_part *p = &m->part[k];

		p->first = k * per < m->wss_pages ? k * per : m->wss_pages;
		p->end = (k + 1) * per < m->wss_pages ? (k + 1) * per : m->wss_pages;
		p->cursor = p->first;
	}
	return 0;
}

void mem_set_rate(struct mem *m, uint64_t bytes_per_s, uint64_t now)
{
	/* each writer does its share; an odd rate leaves a byte per second */
	for (int k = 0; k < MEM_WRITERS; k++)
		pacer_set(&m->part[k].pacer, bytes_per_s / MEM_WRITERS, LG_PAGE, now);
}

uint64_t mem_dirty(struct mem *m, int k, uint64_t now)
{
	struct mem_part *p = &m->part[k];
	uint64_t n = pacer_take(&p->pacer, now);

	if (p->end == p->first)
		return 0;
	for (uint64_t j = 0; j < n; j++) {
		struct mem_slot *s = &m->tab[p->cursor];

		s->gen = s->gen + 1 ? s->gen + 1 : 1;
		s->csum = content_touch(page_at(m, p->cursor), LG_MAGIC_PAGE, p->cursor, s->gen, s->csum);
		if (++p->cursor == p->end)
			p->cursor = p->first;
	}
	__atomic_add_fetch(&m->dirtied, n, __ATOMIC_RELAXED);
	return n;
}

/* Every page against its checksum; the writers are stopped meanwhile. */
uint64_t mem_verify(struct mem *m, uint64_t *first, const char **why)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < m->pages; i++) {
		const uint64_t *w = page_at(m, i);

		if (content_csum(w) == m->tab[i].csum)
			continue;
		if (!bad++) {
			*first = i;
			*why = content_why(w, LG_MAGIC_PAGE, i, m->tab[i].gen);
		}
	}
	return bad;
}

/* Test hook: flips one byte of a page's body behind the table's back. */
int mem_corrupt(struct mem *m, uint64_t page)
{
	if (page >= m->pages)
		return -ERANGE;
	m->base[page * LG_PAGE + 100] ^= 0x5a;
	return 0;
}
