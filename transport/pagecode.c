/* Page-aware coding of a migration channel (transport/pagecode.h).
 *
 * A coded chunk:
 *   u8  version (PAGEC_VERSION), | PAGEC_ZSTD when what follows the header
 *       is the channel's zstd stream (flushed at the chunk's end), which
 *       decompresses to the ops
 *   be32 rebuilt length
 *   be64 xxh3 of the rebuilt bytes
 *   ops until the end:
 *     LIT   0x01 be32 n, n bytes
 *     PAGE  0x02 be32 slot, 4096 bytes
 *     ZERO  0x03 be32 slot                  4096 zero bytes
 *     DUP   0x04 be32 slot, be32 from       the page in slot `from`
 *     DELTA 0x05 be32 slot, be16 n, n bytes  the page in `slot` with runs
 *           {be16 skip, be16 len, len bytes} replacing bytes after skip
 *           unchanged ones
 *     TAILPAGE 0x06 be32 slot               the next 4096 bytes of the tail
 * A zstd chunk (PAGEC_ZSTD) is the header, be32 t, the tail: t bytes of
 * pages that looked random, which zstd would only spend CPU on, taken by
 * TAILPAGE in order, then to the end the piece of the channel's zstd
 * stream that decompresses to the ops. (The tail goes first so the coder
 * writes it in place as it codes.)
 * A page op's slot is where the page is stored afterwards, or PAGEC_NOSLOT
 * (not kept); a DELTA always updates its own slot.
 *
 * Which pages the cache keeps (the encoder's choice, followed blindly by the
 * decoder): a page goes to the slot its block and offset map to (direct
 * mapped, consecutive pages to consecutive slots), replacing what is there
 * only if the slot is empty, already holds this page, or the page was sent
 * before in this migration (a bit array remembers, false positives only cost
 * a replacement). So the first pass over memory cannot flush the pages that
 * are dirtied again, which are the ones a delta helps. */
#include "transport/pagecode.h"

#include "transport/codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#define PAGEC_VERSION 1u
#define PAGEC_ZSTD 0x80u
/* The zstd window grows with the cache (a sixteenth of it), from 128 KiB
 * to 8 MiB; a decoder refuses a stream that asks for more. */
#define WLOG_MIN 17
#define WLOG_MAX 23
#define PAGEC_NOSLOT 0xffffffffu
#define SEEN_BITS (1u << 22)
/* A delta longer than this goes as a whole page: the frame codec does as
 * well on the page, and the decoder's work is a plain copy. */
#define DELTA_MAX 3072u
/* Equal bytes inside a changed run that do not end it: a new run costs
 * 4 bytes of header. */
#define DELTA_GAP 4u

enum { OP_LIT = 1, OP_PAGE = 2, OP_ZERO = 3, OP_DUP = 4, OP_DELTA = 5, OP_TAILPAGE = 6 };
/* A zstd chunk: header, be32 length of the tail, the tail (the pages its
 * TAILPAGE ops take, in order), then the zstd piece. */
#define ZHDR_LEN (PAGEC_HDR_LEN + 4u)
/* Distinct values among a page's every 16th byte (256 samples) above which
 * it is taken for random (uniform bytes give ~162; text ~40): it goes in
 * the tail, where zstd does not spend CPU on it. */
#define RANDOM_DISTINCT 140u

struct cache {
	uint32_t slots;
	int wlog; /* the zstd window's log */
	uint8_t *pages;
	void *map; /* the mapping pages sit in */
	size_t map_len;
};

/* Huge pages for the cache where the kernel gives them: it is touched a
 * page at a time as pages arrive, and each first touch of a 4 KiB page is
 * a fault (under a hypervisor a costly one: measured as a third of the
 * coder's time). */
#define HUGE_PAGE (2u << 20)

struct pagec_enc {
	struct cache c;
	uint64_t *key;    /* 0: empty */
	uint64_t *hash;   /* xxh3 of the slot's page */
	uint32_t *index;  /* hash -> slot + 1 (0: none), 2 x slots entries */
	uint32_t imask;
	uint64_t *seen;   /* SEEN_BITS bits */
	struct qstream *q;
	ZSTD_CCtx *zc;    /* created on the first compressed chunk */
	uint8_t *ops;     /* the ops before zstd, PAGEC_OPS_MAX */
	uint8_t *tail;    /* a zstd chunk's random-looking pages: in its output */
	size_t tail_len, tail_cap; /* tail_cap 0: not a zstd chunk */
	XXH3_state_t xs;
	uint8_t *out;
	size_t cap, pos, rebuilt;
	size_t lit_at;    /* offset of the open LIT op's length, or SIZE_MAX */
	int err;
	bool done;
	struct pagec_stats st;
	uint8_t scratch[8 + 1 + QSTREAM_NAME_MAX]; /* a record's head */
};

struct pagec_dec {
	struct cache c;
	ZSTD_DCtx *zd;    /* created on the first compressed chunk */
	uint8_t *ops;     /* decompressed ops, PAGEC_OPS_MAX */
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* The index's size: a power of two, at least twice the slots. */
static uint32_t index_size(uint32_t slots)
{
	uint32_t n = 1;

	while (n < 2 * slots)
		n <<= 1;
	return n;
}

static int wlog_for(uint32_t slots)
{
	uint64_t want = (uint64_t)slots * PAGEC_PAGE / 16;
	int wl = WLOG_MIN;

	while (wl < WLOG_MAX && (1ull << (wl + 1)) <= want)
		wl++;
	return wl;
}

size_t pagec_mem_bytes(uint32_t slots)
{
	/* pages, key + hash per slot, the index, the seen bits, the zstd
	 * window and a MiB for its tables, the ops scratch */
	return (size_t)slots * (PAGEC_PAGE + 16) + (size_t)index_size(slots) * 4 + SEEN_BITS / 8 +
	       ((size_t)1 << wlog_for(slots)) + (1u << 20) + PAGEC_OPS_MAX;
}

uint32_t pagec_slots_for(uint64_t budget)
{
	uint32_t lo = PAGEC_MIN_SLOTS, hi = PAGEC_MAX_SLOTS;

	if (pagec_mem_bytes(lo) > budget)
		return 0;
	while (lo < hi) { /* the most slots whose memory fits */
		uint32_t mid = lo + (hi - lo + 1) / 2;

		if (pagec_mem_bytes(mid) <= budget)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static int cache_init(struct cache *c, uint32_t slots)
{
	if (slots < PAGEC_MIN_SLOTS || slots > PAGEC_MAX_SLOTS)
		return -EINVAL;
	c->slots = slots;
	c->wlog = wlog_for(slots);
	/* Zeroed by the kernel on first touch: a budget costs memory only as
	 * pages come, and a slot never written reads as zeros on both ends. */
	c->map_len = (size_t)slots * PAGEC_PAGE + HUGE_PAGE;
	c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		      -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		return -ENOMEM;
	}
	c->pages = (uint8_t *)(((uintptr_t)c->map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	(void)madvise(c->pages, (size_t)slots * PAGEC_PAGE, MADV_HUGEPAGE); /* a hint */
	return 0;
}

static void cache_free(struct cache *c)
{
	if (c->map)
		munmap(c->map, c->map_len);
}

static uint8_t *slot_page(const struct cache *c, uint32_t s) { return c->pages + (size_t)s * PAGEC_PAGE; }

/* ---- encoder ------------------------------------------------------------ */

int pagec_enc_new(struct pagec_enc **out, enum qstream_chan chan, uint32_t slots)
{
	/* XXH3_state_t inside wants 64-byte alignment, more than calloc's. */
	struct pagec_enc *e = aligned_alloc(_Alignof(struct pagec_enc),
					    (sizeof(*e) + _Alignof(struct pagec_enc) - 1) &
						    ~(_Alignof(struct pagec_enc) - 1));
	int r = -ENOMEM;

	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	r = cache_init(&e->c, slots);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	e->key = calloc(slots, sizeof(*e->key));
	e->hash = calloc(slots, sizeof(*e->hash));
	e->index = calloc(index_size(slots), sizeof(*e->index));
	e->seen = calloc(SEEN_BITS / 64, sizeof(*e->seen));
	e->imask = index_size(slots) - 1;
	e->ops = malloc(PAGEC_OPS_MAX);
	if (!e->key || !e->hash || !e->index || !e->seen || !e->ops)
		goto fail;
	r = qstream_new(&e->q, chan);
	if (r < 0)
		goto fail;
	e->lit_at = SIZE_MAX;
	*out = e;
	return 0;
fail:
	pagec_enc_free(e);
	return r;
}

void pagec_enc_free(struct pagec_enc *e)
{
	if (!e)
		return;
	qstream_free(e->q);
	ZSTD_freeCCtx(e->zc);
	free(e->ops);
	cache_free(&e->c);
	free(e->key);
	free(e->hash);
	free(e->index);
	free(e->seen);
	free(e);
}

void pagec_enc_stats(const struct pagec_enc *e, struct pagec_stats *st) { *st = e->st; }

const char *pagec_enc_reason(const struct pagec_enc *e) { return qstream_reason(e->q); }

static int room(struct pagec_enc *e, size_t n)
{
	if (e->cap - e->pos < n) {
		e->err = -ENOSPC;
		return -ENOSPC;
	}
	return 0;
}

/* Rebuilt bytes that travel as they are; joined to the LIT op before. */
static int emit_lit(struct pagec_enc *e, const uint8_t *p, size_t n)
{
	if (!n)
		return 0;
	XXH3_64bits_update(&e->xs, p, n);
	e->rebuilt += n;
	if (e->lit_at == SIZE_MAX) {
		if (room(e, 5 + n) < 0)
			return -ENOSPC;
		e->out[e->pos] = OP_LIT;
		e->lit_at = e->pos + 1;
		put32(e->out + e->lit_at, 0);
		e->pos += 5;
	} else if (room(e, n) < 0) {
		return -ENOSPC;
	}
	memcpy(e->out + e->pos, p, n);
	e->pos += n;
	put32(e->out + e->lit_at, get32(e->out + e->lit_at) + (uint32_t)n);
	return 0;
}

static uint8_t *emit_op(struct pagec_enc *e, uint8_t op, uint32_t slot, size_t extra)
{
	uint8_t *p;

	if (room(e, 5 + extra) < 0)
		return NULL;
	e->lit_at = SIZE_MAX;
	p = e->out + e->pos;
	p[0] = op;
	put32(p + 1, slot);
	e->pos += 5 + extra;
	return p + 5;
}

/* Bytes at which two pages differ, 8 at a time: the cheap test before a
 * delta is worth building. Counts words, so it overestimates. */
static size_t diff_bytes(const uint8_t *a, const uint8_t *b)
{
	size_t n = 0;

	for (size_t i = 0; i < PAGEC_PAGE; i += 8) {
		uint64_t x, y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		n += x != y;
	}
	return n * 8;
}

/* The runs that turn old into new, at d (room for DELTA_MAX bytes). Their
 * length, or 0 when they would not fit in DELTA_MAX. */
static size_t build_delta(const uint8_t *old, const uint8_t *nw, uint8_t *d)
{
	size_t i = 0, prev = 0, n = 0;

	while (i < PAGEC_PAGE) {
		size_t start, j, eq = 0;

		while (i + 8 <= PAGEC_PAGE && !memcmp(old + i, nw + i, 8))
			i += 8;
		while (i < PAGEC_PAGE && old[i] == nw[i])
			i++;
		if (i >= PAGEC_PAGE)
			break;
		start = i;
		for (j = i; j < PAGEC_PAGE; j++) {
			if (old[j] == nw[j]) {
				if (++eq > DELTA_GAP) {
					j++;
					break;
				}
			} else {
				eq = 0;
			}
		}
		i = j - eq; /* end of the run: its last changed byte + 1 */
		if (n + 4 + (i - start) > DELTA_MAX)
			return 0;
		put16(d + n, (uint32_t)(start - prev));
		put16(d + n + 2, (uint32_t)(i - start));
		memcpy(d + n + 4, nw + start, i - start);
		n += 4 + (i - start);
		prev = i;
	}
	return n;
}

static bool looks_random(const uint8_t *page)
{
	uint64_t seen[4] = {0};
	unsigned n = 0;

	for (unsigned i = 0; i < PAGEC_PAGE; i += 16) {
		uint64_t bit = 1ull << (page[i] & 63);

		n += !(seen[page[i] >> 6] & bit);
		seen[page[i] >> 6] |= bit;
	}
	return n > RANDOM_DISTINCT;
}

static void store(struct pagec_enc *e, uint32_t s, uint64_t key, uint64_t h, const uint8_t *page)
{
	memcpy(slot_page(&e->c, s), page, PAGEC_PAGE);
	e->key[s] = key;
	e->hash[s] = h;
	e->index[h & e->imask] = s + 1;
}

static int code_page(struct pagec_enc *e, const char *name, size_t name_len, uint64_t offset,
		     const uint8_t *page)
{
	uint64_t nh = XXH3_64bits(name, name_len), pageno = offset / PAGEC_PAGE;
	uint64_t key = ((nh << 40) ^ pageno) | (1ull << 63);
	uint32_t s = (uint32_t)((pageno + (nh >> 7)) % e->c.slots);
	uint64_t bit = (pageno ^ nh) & (SEEN_BITS - 1);
	bool seen = e->seen[bit / 64] & (1ull << (bit % 64));
	bool same = e->key[s] == key;
	bool keep = same || !e->key[s] || seen;
	uint32_t to = keep ? s : PAGEC_NOSLOT;
	uint64_t h;
	uint32_t k;
	uint8_t *p;

	e->seen[bit / 64] |= 1ull << (bit % 64);
	e->st.pages++;
	XXH3_64bits_update(&e->xs, page, PAGEC_PAGE);
	e->rebuilt += PAGEC_PAGE;
	h = XXH3_64bits(page, PAGEC_PAGE);
	if (same && e->hash[s] == h && !memcmp(slot_page(&e->c, s), page, PAGEC_PAGE)) {
		/* Sent again unchanged (the guest wrote the same bytes). */
		if (!(p = emit_op(e, OP_DUP, s, 4)))
			return -ENOSPC;
		put32(p, s);
		e->st.dup++;
		return 0;
	}
	if (same && diff_bytes(slot_page(&e->c, s), page) <= DELTA_MAX) {
		uint8_t d[DELTA_MAX];
		size_t n = build_delta(slot_page(&e->c, s), page, d);

		if (n) {
			if (!(p = emit_op(e, OP_DELTA, s, 2 + n)))
				return -ENOSPC;
			put16(p, (uint32_t)n);
			memcpy(p + 2, d, n);
			store(e, s, key, h, page);
			e->st.delta++;
			e->st.delta_bytes += 7 + n;
			return 0;
		}
	}
	if (codec_is_zero(page, PAGEC_PAGE)) {
		if (!emit_op(e, OP_ZERO, to, 0))
			return -ENOSPC;
		if (keep)
			store(e, s, key, h, page);
		e->st.zero++;
		return 0;
	}
	k = e->index[h & e->imask];
	if (k && e->hash[k - 1] == h && !memcmp(slot_page(&e->c, k - 1), page, PAGEC_PAGE)) {
		if (!(p = emit_op(e, OP_DUP, to, 4)))
			return -ENOSPC;
		put32(p, k - 1);
		if (keep)
			store(e, s, key, h, page);
		e->st.dup++;
		return 0;
	}
	if (e->tail_cap && looks_random(page)) {
		if (e->tail_cap - e->tail_len < PAGEC_PAGE || !emit_op(e, OP_TAILPAGE, to, 0))
			return -ENOSPC;
		memcpy(e->tail + e->tail_len, page, PAGEC_PAGE);
		e->tail_len += PAGEC_PAGE;
	} else {
		if (!(p = emit_op(e, OP_PAGE, to, PAGEC_PAGE)))
			return -ENOSPC;
		memcpy(p, page, PAGEC_PAGE);
	}
	if (keep)
		store(e, s, key, h, page);
	e->st.raw++;
	return 0;
}

static int enc_item(void *arg, const struct qstream_item *it)
{
	struct pagec_enc *e = arg;
	ssize_t n;

	/* Runs and packet headers are their own bytes. */
	if (it->kind == QSTREAM_PASS || it->kind == QSTREAM_PACKET)
		return emit_lit(e, it->data, it->len);
	/* A page: what precedes its content (offset, flags, name) as
	 * literal bytes, then the content coded; a zero record as it is. */
	n = qstream_rebuild_head(it, e->scratch, sizeof(e->scratch));
	if (n < 0)
		return (int)n;
	if (emit_lit(e, e->scratch, (size_t)n) < 0)
		return -ENOSPC;
	return it->kind == QSTREAM_PAGE ? code_page(e, it->name, it->name_len, it->offset, it->data) : 0;
}

/* The ops in e->ops compressed into out after its header: the channel's
 * zstd stream, flushed. Its total size or -errno. */
static ssize_t compress_ops(struct pagec_enc *e, int level, uint8_t *out, size_t cap)
{
	ZSTD_inBuffer ib = {e->ops + PAGEC_HDR_LEN, e->pos - PAGEC_HDR_LEN, 0};
	ZSTD_outBuffer ob = {out + ZHDR_LEN + e->tail_len, cap - ZHDR_LEN - e->tail_len, 0};
	size_t left;

	if (!e->zc) {
		e->zc = ZSTD_createCCtx();
		if (!e->zc)
			return -ENOMEM;
		if (ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_windowLog, e->c.wlog)))
			return -EIO;
	}
	do {
		left = ZSTD_compressStream2(e->zc, &ob, &ib, ZSTD_e_flush);
		if (ZSTD_isError(left))
			return -EIO;
		if (left && ob.pos == ob.size)
			return -ENOSPC;
	} while (left);
	memcpy(out, e->ops, PAGEC_HDR_LEN);
	out[0] |= PAGEC_ZSTD;
	put32(out + PAGEC_HDR_LEN, (uint32_t)e->tail_len);
	return (ssize_t)(ZHDR_LEN + e->tail_len + ob.pos);
}

ssize_t pagec_encode(struct pagec_enc *e, const uint8_t *in, size_t len, int eof, uint8_t *out,
		     size_t cap, int zlevel)
{
	ssize_t n;
	int r;

	if (e->done || e->err)
		return e->done ? -EINVAL : e->err;
	if (cap < len + PAGEC_SLACK || len > PAGEC_OPS_MAX - PAGEC_SLACK)
		return -ENOSPC;
	/* Compressed ops are built aside first. */
	e->out = zlevel > 0 ? e->ops : out;
	e->cap = zlevel > 0 ? PAGEC_OPS_MAX : cap;
	e->pos = PAGEC_HDR_LEN;
	/* ... and random-looking pages go straight to the tail in out. */
	e->tail = out + ZHDR_LEN;
	e->tail_cap = zlevel > 0 ? cap - ZHDR_LEN : 0;
	e->tail_len = 0;
	e->rebuilt = 0;
	e->lit_at = SIZE_MAX;
	XXH3_64bits_reset(&e->xs);
	e->st.in += len;
	r = qstream_feed(e->q, in, len, enc_item, e);
	if (r == 0 && eof) {
		e->done = true;
		r = qstream_finish(e->q, enc_item, e);
	}
	if (r < 0) {
		e->err = r;
		return r;
	}
	e->out[0] = PAGEC_VERSION;
	put32(e->out + 1, (uint32_t)e->rebuilt);
	put64(e->out + 5, XXH3_64bits_digest(&e->xs));
	n = (ssize_t)e->pos;
	if (zlevel > 0 && (n = compress_ops(e, zlevel, out, cap)) < 0) {
		e->err = (int)n;
		return n;
	}
	e->st.coded += (uint64_t)n;
	return n;
}

/* ---- decoder ------------------------------------------------------------ */

int pagec_dec_new(struct pagec_dec **out, uint32_t slots)
{
	struct pagec_dec *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	r = cache_init(&d->c, slots);
	if (r < 0) {
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void pagec_dec_free(struct pagec_dec *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->zd);
	free(d->ops);
	cache_free(&d->c);
	free(d);
}

static ssize_t bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ssize_t bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

/* Applies a delta's runs to page (in place). 0 or -1 if malformed. */
static int apply_delta(uint8_t *page, const uint8_t *d, size_t n)
{
	size_t at = 0, i = 0;

	while (i < n) {
		uint32_t skip, len;

		if (n - i < 4)
			return -1;
		skip = get16(d + i);
		len = get16(d + i + 2);
		i += 4;
		if (!len || len > n - i || skip > PAGEC_PAGE - at || len > PAGEC_PAGE - at - skip)
			return -1;
		at += skip;
		memcpy(page + at, d + i, len);
		at += len;
		i += len;
	}
	return 0;
}

/* The ops of a compressed chunk into d->ops, after a copy of its header,
 * and where its tail is. Their end (header included) or -EBADMSG. */
static ssize_t decompress_ops(struct pagec_dec *d, const uint8_t *in, size_t len,
			      const uint8_t **tail, size_t *tail_len, char *err, size_t errlen)
{
	ZSTD_inBuffer ib;
	ZSTD_outBuffer ob;
	size_t r, t;

	if (len < ZHDR_LEN || (t = get32(in + PAGEC_HDR_LEN)) > len - ZHDR_LEN)
		return bad(err, errlen, "tail past the chunk");
	*tail = in + ZHDR_LEN;
	*tail_len = t;
	ib = (ZSTD_inBuffer){in + ZHDR_LEN + t, len - ZHDR_LEN - t, 0};

	if (!d->zd) {
		d->zd = ZSTD_createDCtx();
		d->ops = malloc(PAGEC_OPS_MAX);
		if (!d->zd || !d->ops)
			return bad(err, errlen, "no memory for zstd");
		/* A stream that asks for a larger window than the cache
		 * grants is refused, not obeyed. */
		if (ZSTD_isError(ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax, d->c.wlog)))
			return bad(err, errlen, "zstd refuses window log %d", d->c.wlog);
	}
	ob = (ZSTD_outBuffer){d->ops + PAGEC_HDR_LEN, PAGEC_OPS_MAX - PAGEC_HDR_LEN, 0};
	while (ib.pos < ib.size) {
		r = ZSTD_decompressStream(d->zd, &ob, &ib);
		if (ZSTD_isError(r))
			return bad(err, errlen, "zstd: %s", ZSTD_getErrorName(r));
		if (ob.pos == ob.size)
			return bad(err, errlen, "ops of a chunk larger than %u bytes", PAGEC_OPS_MAX);
	}
	memcpy(d->ops, in, PAGEC_HDR_LEN);
	return (ssize_t)(PAGEC_HDR_LEN + ob.pos);
}

ssize_t pagec_decode(struct pagec_dec *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
		     char *err, size_t errlen)
{
	size_t i = PAGEC_HDR_LEN, o = 0, tail_len = 0, ti = 0;
	const uint8_t *tail = NULL;
	uint32_t want;

	if (len < PAGEC_HDR_LEN || (in[0] & ~PAGEC_ZSTD) != PAGEC_VERSION)
		return len < PAGEC_HDR_LEN ? bad(err, errlen, "page-coded chunk of %zu bytes", len) :
					     bad(err, errlen, "page-coded chunk of version %u", in[0]);
	want = get32(in + 1);
	if (want > cap)
		return -ENOSPC;
	if (in[0] & PAGEC_ZSTD) {
		ssize_t n = decompress_ops(d, in, len, &tail, &tail_len, err, errlen);

		if (n < 0)
			return n;
		in = d->ops;
		len = (size_t)n;
	}
	while (i < len) {
		uint8_t op = in[i];
		uint32_t slot, from, n;
		const uint8_t *src;

		if (op == OP_LIT) {
			if (len - i < 5)
				return bad(err, errlen, "truncated op at %zu", i);
			n = get32(in + i + 1);
			i += 5;
			if (n > len - i || n > want - o)
				return bad(err, errlen, "literal of %u bytes past the chunk", n);
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
			continue;
		}
		if (op < OP_PAGE || op > OP_TAILPAGE)
			return bad(err, errlen, "unknown op 0x%02x at %zu", op, i);
		if (len - i < 5)
			return bad(err, errlen, "truncated op at %zu", i);
		slot = get32(in + i + 1);
		i += 5;
		if (slot != PAGEC_NOSLOT && slot >= d->c.slots)
			return bad(err, errlen, "slot %u of %u", slot, d->c.slots);
		if (want - o < PAGEC_PAGE)
			return bad(err, errlen, "page past the chunk's length %u", want);
		switch (op) {
		case OP_PAGE:
			if (len - i < PAGEC_PAGE)
				return bad(err, errlen, "truncated page at %zu", i);
			src = in + i;
			i += PAGEC_PAGE;
			break;
		case OP_TAILPAGE:
			if (tail_len - ti < PAGEC_PAGE)
				return bad(err, errlen, "tail page past the chunk at %zu", i);
			src = tail + ti;
			ti += PAGEC_PAGE;
			break;
		case OP_ZERO:
			memset(out + o, 0, PAGEC_PAGE);
			src = out + o;
			break;
		case OP_DUP:
			if (len - i < 4)
				return bad(err, errlen, "truncated op at %zu", i);
			from = get32(in + i);
			i += 4;
			if (from >= d->c.slots)
				return bad(err, errlen, "slot %u of %u", from, d->c.slots);
			src = slot_page(&d->c, from);
			break;
		default: /* OP_DELTA */
			if (slot == PAGEC_NOSLOT || len - i < 2)
				return bad(err, errlen, "bad delta at %zu", i);
			n = get16(in + i);
			i += 2;
			if (n > len - i || apply_delta(slot_page(&d->c, slot), in + i, n) < 0)
				return bad(err, errlen, "malformed delta at %zu", i);
			i += n;
			src = slot_page(&d->c, slot);
			break;
		}
		if (src != out + o)
			memcpy(out + o, src, PAGEC_PAGE);
		if (slot != PAGEC_NOSLOT && src != slot_page(&d->c, slot))
			memcpy(slot_page(&d->c, slot), out + o, PAGEC_PAGE);
		o += PAGEC_PAGE;
	}
	if (o != want)
		return bad(err, errlen, "chunk rebuilt to %zu bytes, not %u", o, want);
	if (ti != tail_len)
		return bad(err, errlen, "%zu bytes of the tail unused", tail_len - ti);
	if (XXH3_64bits(out, o) != get64(in + 5))
		return bad(err, errlen, "chunk rebuilt to other bytes than the source's (hash mismatch)");
	return (ssize_t)o;
}
