/* QEMU 10.0 migration channels to items and back (transport/qstream.h).
 *
 * The parser is a state machine over "elements": each state takes a fixed
 * number of bytes (a record header, a name, a page, a packet header), and
 * take() hands them out either in place in the caller's data or, when a
 * chunk boundary splits them, from q->buf once complete. Structural bytes
 * are emitted as PASS the moment they are understood (runs in the caller's
 * data are joined into one item); the pieces of a page record or packet
 * header are copied to q->hold until the item is complete, so giving up
 * halfway can still pass every byte on, in order. Section and record
 * layouts: docs/qemu-stream.md, sections 2 to 4, and the give-up list in
 * 6.3. */
#include "transport/qstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QEVM_MAGIC 0x5145564du
#define QEVM_VERSION 3u
#define RAM_SECTION_VERSION 4u
#define PACKAGED_MAX (1u << 24) /* QEMU's MAX_VM_CMD_PACKAGED_SIZE */

/* Item types of the main channel (savevm.c). */
enum {
	SEC_EOF = 0x00,
	SEC_START = 0x01,
	SEC_PART = 0x02,
	SEC_END = 0x03,
	SEC_FULL = 0x04,
	SEC_CONFIG = 0x07,
	SEC_COMMAND = 0x08,
	SEC_FOOTER = 0x7e,
};

/* RAM record flags, the low bits of the be64 header (ram.c). */
#define F_ZERO 0x02u
#define F_MEM_SIZE 0x04u
#define F_PAGE 0x08u
#define F_EOS 0x10u
#define F_CONTINUE 0x20u
#define F_XBZRLE 0x40u
#define F_HOOK 0x80u
#define F_MULTIFD_FLUSH 0x200u
#define F_MASK ((uint64_t)QSTREAM_PAGE_SIZE - 1)

/* Multifd (multifd.h). */
#define MFD_MAGIC 0x11223344u
#define MFD_VERSION 1u
#define MFD_INIT_LEN 64u
#define MFD_HDR_START 12u /* magic, version, flags: read before the rest */
#define MFD_SYNC 0x01u
#define MFD_COMP 0x3eu
#define MFD_DEVICE_STATE 0x40u
#define MFD_DEV_HDR 264u /* idstr[256], be32 instance_id, be32 next_packet_size */

/* The commands a stream may carry (savevm.c: mig_cmd_args), one table. */
#define CMD_LEN_VAR (-1)
#define CMD_LEN_ADVISE (-2) /* 16, or 0 from old sources */
#define CMD_PACKAGED 7
static const struct cmd_def {
	const char *name;
	int len;
	bool give_up; /* what follows is not modelled */
} cmds[] = {
	[1] = { "OPEN_RETURN_PATH", 0, false },
	[2] = { "PING", 4, false },
	[3] = { "POSTCOPY_ADVISE", CMD_LEN_ADVISE, false },
	[4] = { "POSTCOPY_LISTEN", 0, false },
	[5] = { "POSTCOPY_RUN", 0, false },
	[6] = { "POSTCOPY_RAM_DISCARD", CMD_LEN_VAR, false },
	[7] = { "PACKAGED", 4, false },
	[8] = { "ENABLE_COLO", 0, true },
	[9] = { "POSTCOPY_RESUME", 0, false },
	[10] = { "RECV_BITMAP", CMD_LEN_VAR, false },
	[11] = { "SWITCHOVER_START", 0, false },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* Parser states; each but S_SKIP and S_PASS takes q->need bytes. */
enum st {
	S_QEVM,       /* magic + version */
	S_TYPE,       /* one item type byte */
	S_CONFIG_LEN, /* be32 length of the machine type */
	S_SEC_HEAD,   /* START/FULL: be32 id, u8 name length */
	S_SEC_NAME,   /* the idstr */
	S_SEC_TAIL,   /* be32 instance, be32 version */
	S_SEC_ID,     /* PART/END: be32 id */
	S_FOOTER,     /* be32 id */
	S_CMD,        /* be16 cmd, be16 len */
	S_PACKAGED,   /* be32 length of the package */
	S_REC,        /* RAM record header */
	S_REC_NLEN,   /* u8 block name length */
	S_REC_NAME,   /* block name */
	S_REC_DATA,   /* the page, or a ZERO's fill byte */
	S_MS_NLEN,    /* MEM_SIZE list: u8 name length */
	S_MS_NAME,    /* name */
	S_MS_LEN,     /* be64 used length */
	S_MFD_INIT,   /* multifd initial packet */
	S_MFD_HDR,    /* first 12 bytes of a packet */
	S_MFD_REST,   /* the rest of a RAM packet's header */
	S_MFD_DEV,    /* a device state packet's header */
	S_MFD_PAGE,   /* one normal page of the payload */
	S_SKIP,       /* skip_left bytes of PASS, then q->after */
	S_PASS,       /* everything is PASS */
};

struct blk {
	char name[QSTREAM_NAME_MAX + 1];
	uint8_t len;
	uint64_t used;
};

struct qstream {
	enum qstream_chan chan;
	enum qstream_state state;
	enum st st, after;
	int err;
	bool finished;
	size_t need;
	uint64_t skip_left;
	uint64_t pos;     /* channel bytes consumed */
	uint64_t elem_at; /* channel offset of the element being parsed */

	/* An element split across calls, collected up to need bytes. */
	uint8_t buf[QSTREAM_PAGE_SIZE];
	size_t have;
	/* Pieces of a page record or packet header not yet emitted. */
	uint8_t hold[QSTREAM_MFD_HDR_LEN];
	size_t hold_len;
	/* PASS bytes in the caller's data not yet emitted. */
	const uint8_t *run;
	size_t run_len;
	qstream_emit_fn emit;
	void *arg;

	/* Main channel. */
	uint8_t sec_type;
	uint32_t sec_id, ram_id;
	bool ram_known;
	uint64_t rec_hdr; /* offset | flags of the record being parsed */
	uint64_t ms_left; /* MEM_SIZE bytes not yet covered by the list */

	/* Blocks: the list (MEM_SIZE or given), the current one for CONTINUE,
	 * and the name of a block outside any list (loose). */
	bool have_list;
	unsigned nblocks;
	struct blk blocks[QSTREAM_MAX_BLOCKS];
	struct blk loose;
	struct blk *cur;

	/* Multifd packet being parsed. */
	struct blk *pkt_blk;
	uint32_t normal, page_i;
	uint64_t offs[QSTREAM_MFD_PAGES];

	struct qstream_stats stats;
	char reason[256];
};

/* --- small helpers ------------------------------------------------------ */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A name from the stream, fit for a log line: printable ASCII, others '?',
 * at most 64 characters. */
static const char *esc(char out[68], const void *name, size_t n)
{
	const uint8_t *s = name;
	size_t i;

	for (i = 0; i < n && i < 64; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? (char)s[i] : '?';
	if (n > 64)
		out[i++] = '~';
	out[i] = '\0';
	return out;
}

static struct blk *find_block(struct qstream *q, const void *name, size_t n)
{
	for (unsigned i = 0; i < q->nblocks; i++)
		if (q->blocks[i].len == n && memcmp(q->blocks[i].name, name, n) == 0)
			return &q->blocks[i];
	return NULL;
}

/* The block a record or packet names: from the list, or as given when there
 * is none. NULL if the list does not have it. */
static struct blk *resolve(struct qstream *q, const void *name, size_t n)
{
	if (q->have_list)
		return find_block(q, name, n);
	memcpy(q->loose.name, name, n);
	q->loose.name[n] = '\0';
	q->loose.len = (uint8_t)n;
	q->loose.used = UINT64_MAX;
	return &q->loose;
}

static int block_index(const struct qstream *q, const struct blk *b)
{
	return b == &q->loose ? -1 : (int)(b - q->blocks);
}

static bool page_fits(const struct blk *b, uint64_t off)
{
	return (off & F_MASK) == 0 && b->used >= QSTREAM_PAGE_SIZE &&
	       off <= b->used - QSTREAM_PAGE_SIZE;
}

/* --- emitting ----------------------------------------------------------- */

static int emit(struct qstream *q, const struct qstream_item *it)
{
	int r = q->emit(q->arg, it);

	if (r < 0) {
		q->err = r;
		q->state = QSTREAM_FAILED;
		q->st = S_PASS;
		return r;
	}
	return 0;
}

static int flush_run(struct qstream *q)
{
	struct qstream_item it = { .kind = QSTREAM_PASS, .block = -1 };

	if (!q->run_len)
		return 0;
	it.data = q->run;
	it.len = q->run_len;
	q->run = NULL;
	q->run_len = 0;
	q->stats.pass_bytes += it.len;
	return emit(q, &it);
}

/* PASS bytes of the caller's data: joined to the pending run they follow. */
static int pass_in(struct qstream *q, const uint8_t *p, size_t n)
{
	int r;

	if (!n)
		return 0;
	if (q->run_len && q->run + q->run_len == p) {
		q->run_len += n;
		return 0;
	}
	r = flush_run(q);
	if (r)
		return r;
	q->run = p;
	q->run_len = n;
	return 0;
}

/* PASS bytes of the parser's own buffers: emitted now, they are reused. */
static int pass_now(struct qstream *q, const uint8_t *p, size_t n)
{
	struct qstream_item it = { .kind = QSTREAM_PASS, .block = -1, .data = p, .len = n };
	int r = flush_run(q);

	if (r || !n)
		return r;
	q->stats.pass_bytes += n;
	return emit(q, &it);
}

/* PASS bytes that take() returned, wherever they are. */
static int pass_taken(struct qstream *q, const uint8_t *p, size_t n)
{
	return p == q->buf ? pass_now(q, p, n) : pass_in(q, p, n);
}

static int emit_item(struct qstream *q, const struct qstream_item *it)
{
	int r = flush_run(q);

	return r ? r : emit(q, it);
}

/* Gives up on the channel: passes on what is held, then the element elem
 * (n bytes from take(), NULL for none) that was not understood, and from
 * now on everything. */
static int __attribute__((format(printf, 4, 5)))
give_up(struct qstream *q, const uint8_t *elem, size_t n, const char *fmt, ...)
{
	va_list ap;
	int len, r;

	va_start(ap, fmt);
	len = vsnprintf(q->reason, sizeof(q->reason), fmt, ap);
	va_end(ap);
	if (len >= 0 && (size_t)len < sizeof(q->reason))
		snprintf(q->reason + len, sizeof(q->reason) - (size_t)len, " at offset %llu",
			 (unsigned long long)q->elem_at);
	q->stats.gave_up_at = q->elem_at;
	q->state = QSTREAM_GAVE_UP;
	q->st = S_PASS;
	r = flush_run(q);
	if (!r && q->hold_len)
		r = pass_now(q, q->hold, q->hold_len);
	q->hold_len = 0;
	if (!r && n)
		r = pass_taken(q, elem, n);
	return r;
}

static void go(struct qstream *q, enum st st, size_t need)
{
	q->st = st;
	q->need = need;
}

/* n bytes of PASS, streamed without buffering, then state after. */
static void skip(struct qstream *q, uint64_t n, enum st after, size_t need)
{
	q->after = after;
	q->need = need;
	q->skip_left = n;
	q->st = n ? S_SKIP : after;
}

static void hold(struct qstream *q, const uint8_t *p, size_t n)
{
	memcpy(q->hold + q->hold_len, p, n);
	q->hold_len += n;
}

/* --- the main channel's items ------------------------------------------- */

static int on_qevm(struct qstream *q, const uint8_t *p)
{
	if (be32(p) != QEVM_MAGIC)
		return give_up(q, p, 8, "no QEVM magic (0x%08x)", be32(p));
	if (be32(p + 4) != QEVM_VERSION)
		return give_up(q, p, 8, "stream version %u (3 expected)", be32(p + 4));
	go(q, S_TYPE, 1);
	return pass_taken(q, p, 8);
}

static int on_type(struct qstream *q, const uint8_t *p)
{
	q->elem_at = q->pos - 1;
	q->sec_type = p[0];
	switch (p[0]) {
	case SEC_CONFIG:
		go(q, S_CONFIG_LEN, 4);
		break;
	case SEC_START:
	case SEC_FULL:
		go(q, S_SEC_HEAD, 5);
		break;
	case SEC_PART:
	case SEC_END:
		go(q, S_SEC_ID, 4);
		break;
	case SEC_FOOTER:
		go(q, S_FOOTER, 4);
		break;
	case SEC_COMMAND:
		go(q, S_CMD, 4);
		break;
	case SEC_EOF:
		q->state = QSTREAM_TAIL;
		go(q, S_PASS, 0);
		break;
	case 0x05:
		return give_up(q, p, 1, "configuration subsection (not modelled)");
	default:
		return give_up(q, p, 1, "item type 0x%02x", p[0]);
	}
	return pass_taken(q, p, 1);
}

static int on_config_len(struct qstream *q, const uint8_t *p)
{
	uint32_t n = be32(p);

	if (n == 0 || n > QSTREAM_NAME_MAX)
		return give_up(q, p, 4, "machine type name of %u bytes", n);
	skip(q, n, S_TYPE, 1);
	return pass_taken(q, p, 4);
}

static int on_sec_head(struct qstream *q, const uint8_t *p)
{
	q->sec_id = be32(p);
	if (p[4] == 0)
		return give_up(q, p, 5, "section %u with an empty name", q->sec_id);
	go(q, S_SEC_NAME, p[4]);
	return pass_taken(q, p, 5);
}

static int on_sec_name(struct qstream *q, const uint8_t *p)
{
	size_t n = q->need;
	bool ram = n == 3 && memcmp(p, "ram", 3) == 0;
	char e[68];

	if (q->sec_type == SEC_FULL)
		return give_up(q, p, n, "device section \"%s\" (its state has no length)",
			       esc(e, p, n));
	if (!ram)
		return give_up(q, p, n, "iterable section \"%s\" (not RAM)", esc(e, p, n));
	if (q->ram_known)
		return give_up(q, p, n, "a second ram section");
	q->ram_id = q->sec_id;
	go(q, S_SEC_TAIL, 8);
	return pass_taken(q, p, n);
}

static int on_sec_tail(struct qstream *q, const uint8_t *p)
{
	if (be32(p + 4) != RAM_SECTION_VERSION)
		return give_up(q, p, 8, "ram section version %u (4 expected)", be32(p + 4));
	q->ram_known = true;
	go(q, S_REC, 8);
	return pass_taken(q, p, 8);
}

static int on_sec_id(struct qstream *q, const uint8_t *p)
{
	uint32_t id = be32(p);

	if (!q->ram_known || id != q->ram_id)
		return give_up(q, p, 4, "part of section %u, not ram", id);
	go(q, S_REC, 8);
	return pass_taken(q, p, 4);
}

static int on_footer(struct qstream *q, const uint8_t *p)
{
	go(q, S_TYPE, 1);
	return pass_taken(q, p, 4);
}

static int on_cmd(struct qstream *q, const uint8_t *p)
{
	uint16_t cmd = be16(p), len = be16(p + 2);
	const struct cmd_def *d = cmd < NCMDS ? &cmds[cmd] : NULL;

	if (!d || !d->name)
		return give_up(q, p, 4, "command %u", cmd);
	if (d->give_up)
		return give_up(q, p, 4, "command %s (not modelled)", d->name);
	if ((d->len >= 0 && len != d->len) || (d->len == CMD_LEN_ADVISE && len != 0 && len != 16))
		return give_up(q, p, 4, "command %s of %u bytes", d->name, len);
	if (cmd == CMD_PACKAGED)
		go(q, S_PACKAGED, 4);
	else
		skip(q, len, S_TYPE, 1);
	return pass_taken(q, p, 4);
}

/* The package (postcopy: device state, LISTEN, RUN) has a length, so it goes
 * through whole and parsing resumes after it. */
static int on_packaged(struct qstream *q, const uint8_t *p)
{
	uint32_t n = be32(p);

	if (n > PACKAGED_MAX)
		return give_up(q, p, 4, "package of %u bytes", n);
	skip(q, n, S_TYPE, 1);
	return pass_taken(q, p, 4);
}

/* --- RAM records (main and preempt channels) ----------------------------- */

static const char *flags_name(uint64_t flags)
{
	if (flags == F_MEM_SIZE)
		return "MEM_SIZE out of place";
	if (flags == F_MULTIFD_FLUSH)
		return "MULTIFD_FLUSH out of place";
	if (flags & F_XBZRLE)
		return "XBZRLE";
	if (flags & F_HOOK)
		return "HOOK (RDMA)";
	return "unknown";
}

static int after_eos(struct qstream *q)
{
	/* The preempt channel's records have no section around them. */
	if (q->chan == QSTREAM_PREEMPT)
		go(q, S_REC, 8);
	else
		go(q, S_TYPE, 1);
	return 0;
}

static int rec_data(struct qstream *q)
{
	uint64_t off = q->rec_hdr & ~F_MASK;

	if (!page_fits(q->cur, off)) {
		char e[68];

		return give_up(q, NULL, 0, "offset 0x%llx beyond block \"%s\"",
			       (unsigned long long)off, esc(e, q->cur->name, q->cur->len));
	}
	go(q, S_REC_DATA, q->rec_hdr & F_PAGE ? QSTREAM_PAGE_SIZE : 1);
	return 0;
}

static int on_rec(struct qstream *q, const uint8_t *p)
{
	uint64_t h = be64(p), flags = h & F_MASK, kind = flags & ~(uint64_t)F_CONTINUE;

	q->elem_at = q->pos - 8;
	if (flags == F_EOS) {
		after_eos(q);
		return pass_taken(q, p, 8);
	}
	if (flags == F_MULTIFD_FLUSH && q->chan == QSTREAM_MAIN)
		return pass_taken(q, p, 8);
	if (flags == F_MEM_SIZE && q->chan == QSTREAM_MAIN && !q->have_list) {
		if ((h & ~F_MASK) == 0)
			return give_up(q, p, 8, "MEM_SIZE of 0 bytes");
		q->have_list = true;
		q->ms_left = h & ~F_MASK;
		go(q, S_MS_NLEN, 1);
		return pass_taken(q, p, 8);
	}
	if (kind != F_ZERO && kind != F_PAGE)
		return give_up(q, p, 8, "RAM record flags 0x%llx (%s)", (unsigned long long)flags,
			       flags_name(flags));
	if (q->chan == QSTREAM_MAIN && !q->have_list)
		return give_up(q, p, 8, "page record before MEM_SIZE");
	q->rec_hdr = h;
	hold(q, p, 8);
	if (!(flags & F_CONTINUE)) {
		go(q, S_REC_NLEN, 1);
		return 0;
	}
	if (!q->cur)
		return give_up(q, NULL, 0, "CONTINUE with no block named before");
	return rec_data(q);
}

static int on_rec_nlen(struct qstream *q, const uint8_t *p)
{
	hold(q, p, 1);
	if (p[0] == 0)
		return give_up(q, NULL, 0, "page record with an empty block name");
	go(q, S_REC_NAME, p[0]);
	return 0;
}

static int on_rec_name(struct qstream *q, const uint8_t *p)
{
	size_t n = q->need;
	char e[68];

	hold(q, p, n);
	if (memchr(p, 0, n))
		return give_up(q, NULL, 0, "block name with a NUL byte");
	q->cur = resolve(q, p, n);
	if (!q->cur)
		return give_up(q, NULL, 0, "block \"%s\" not in MEM_SIZE", esc(e, p, n));
	return rec_data(q);
}

static int on_rec_data(struct qstream *q, const uint8_t *p)
{
	bool page = q->rec_hdr & F_PAGE;
	struct qstream_item it = {
		.kind = page ? QSTREAM_PAGE : QSTREAM_ZERO,
		.form = QSTREAM_RECORD,
		.named = !(q->rec_hdr & F_CONTINUE),
		.name_len = q->cur->len,
		.block = block_index(q, q->cur),
		.name = q->cur->name,
		.offset = q->rec_hdr & ~F_MASK,
	};

	if (page) {
		it.data = p;
		it.len = QSTREAM_PAGE_SIZE;
		q->stats.pages++;
	} else {
		if (p[0] != 0)
			return give_up(q, p, 1, "ZERO record with fill byte 0x%02x", p[0]);
		it.fill = p[0];
		q->stats.zeros++;
	}
	q->stats.named += it.named;
	q->hold_len = 0;
	go(q, S_REC, 8);
	return emit_item(q, &it);
}

/* MEM_SIZE: name + used length per block until they add up to the total
 * (ferry never sets the capabilities that add fields here). */
static int on_ms_nlen(struct qstream *q, const uint8_t *p)
{
	if (p[0] == 0)
		return give_up(q, p, 1, "MEM_SIZE block with an empty name");
	if (q->nblocks == QSTREAM_MAX_BLOCKS)
		return give_up(q, p, 1, "more than %u blocks in MEM_SIZE", QSTREAM_MAX_BLOCKS);
	go(q, S_MS_NAME, p[0]);
	return pass_taken(q, p, 1);
}

static int on_ms_name(struct qstream *q, const uint8_t *p)
{
	struct blk *b = &q->blocks[q->nblocks];
	size_t n = q->need;
	char e[68];

	if (memchr(p, 0, n))
		return give_up(q, p, n, "MEM_SIZE block name with a NUL byte");
	if (find_block(q, p, n))
		return give_up(q, p, n, "block \"%s\" twice in MEM_SIZE", esc(e, p, n));
	memcpy(b->name, p, n);
	b->name[n] = '\0';
	b->len = (uint8_t)n;
	go(q, S_MS_LEN, 8);
	return pass_taken(q, p, n);
}

static int on_ms_len(struct qstream *q, const uint8_t *p)
{
	struct blk *b = &q->blocks[q->nblocks];
	uint64_t used = be64(p);
	char e[68];

	if (used > q->ms_left)
		return give_up(q, p, 8, "MEM_SIZE block \"%s\" of %llu bytes overruns the total",
			       esc(e, b->name, b->len), (unsigned long long)used);
	b->used = used;
	q->nblocks++;
	q->ms_left -= used;
	if (q->ms_left)
		go(q, S_MS_NLEN, 1);
	else
		go(q, S_REC, 8);
	return pass_taken(q, p, 8);
}

/* --- multifd channels --------------------------------------------------- */

static int on_mfd_init(struct qstream *q, const uint8_t *p)
{
	if (be32(p) != MFD_MAGIC || be32(p + 4) != MFD_VERSION)
		return give_up(q, p, MFD_INIT_LEN, "multifd initial packet magic 0x%08x version %u",
			       be32(p), be32(p + 4));
	go(q, S_MFD_HDR, MFD_HDR_START);
	return pass_taken(q, p, MFD_INIT_LEN);
}

static const char *comp_name(uint32_t comp)
{
	switch (comp) {
	case 0x02:
		return "zlib";
	case 0x04:
		return "zstd";
	case 0x08:
		return "qpl";
	case 0x10:
		return "uadk";
	case 0x20:
		return "qatzip";
	default:
		return "unknown";
	}
}

static int on_mfd_hdr(struct qstream *q, const uint8_t *p)
{
	uint32_t flags = be32(p + 8);

	q->elem_at = q->pos - MFD_HDR_START;
	if (be32(p) != MFD_MAGIC || be32(p + 4) != MFD_VERSION)
		return give_up(q, p, MFD_HDR_START, "multifd packet magic 0x%08x version %u", be32(p),
			       be32(p + 4));
	if (flags & ~(MFD_SYNC | MFD_COMP | MFD_DEVICE_STATE))
		return give_up(q, p, MFD_HDR_START, "multifd packet flags 0x%x", flags);
	if (flags & MFD_DEVICE_STATE) {
		go(q, S_MFD_DEV, MFD_DEV_HDR);
		return pass_taken(q, p, MFD_HDR_START);
	}
	if (flags & MFD_COMP)
		return give_up(q, p, MFD_HDR_START,
			       "multifd compression %s (one stream per channel: opaque)",
			       comp_name(flags & MFD_COMP));
	hold(q, p, MFD_HDR_START);
	go(q, S_MFD_REST, QSTREAM_MFD_HDR_LEN - MFD_HDR_START);
	return 0;
}

/* A device state packet (VFIO) has its length: it goes through whole. */
static int on_mfd_dev(struct qstream *q, const uint8_t *p)
{
	skip(q, be32(p + MFD_DEV_HDR - 4), S_MFD_HDR, MFD_HDR_START);
	return pass_taken(q, p, MFD_DEV_HDR);
}

/* Checks a complete RAM packet header in q->hold the way the target does
 * (multifd_ram_unfill_packet), and more strictly where the framing depends
 * on it: next_packet_size must be the normal pages' bytes. */
static int mfd_check(struct qstream *q, uint32_t alloc, uint32_t normal, uint32_t zero)
{
	const uint8_t *h = q->hold;
	const uint8_t *nul = memchr(h + 64, 0, 256);
	uint32_t next = be32(h + 20);
	char e[68];

	if (alloc > QSTREAM_MFD_PAGES || normal > alloc || zero > alloc - normal)
		return give_up(q, NULL, 0, "multifd packet of %u normal + %u zero pages (%u allocated)",
			       normal, zero, alloc);
	if ((uint64_t)next != (uint64_t)normal * QSTREAM_PAGE_SIZE)
		return give_up(q, NULL, 0, "multifd packet of %u pages with next_packet_size %u",
			       normal, next);
	if (!nul)
		return give_up(q, NULL, 0, "multifd block name without its NUL");
	q->pkt_blk = NULL;
	if (normal + zero == 0)
		return 0;
	if (nul == h + 64)
		return give_up(q, NULL, 0, "multifd packet of pages with no block name");
	q->pkt_blk = resolve(q, h + 64, (size_t)(nul - (h + 64)));
	if (!q->pkt_blk)
		return give_up(q, NULL, 0, "multifd block \"%s\" not in MEM_SIZE",
			       esc(e, h + 64, (size_t)(nul - (h + 64))));
	for (uint32_t i = 0; i < normal + zero; i++) {
		q->offs[i] = be64(h + 320 + 8 * i);
		if (!page_fits(q->pkt_blk, q->offs[i]))
			return give_up(q, NULL, 0, "multifd offset 0x%llx beyond block \"%s\"",
				       (unsigned long long)q->offs[i],
				       esc(e, q->pkt_blk->name, q->pkt_blk->len));
	}
	return 0;
}

static int on_mfd_rest(struct qstream *q, const uint8_t *p)
{
	const uint8_t *h = q->hold;
	uint32_t normal, zero;
	struct qstream_item it = { .kind = QSTREAM_PACKET, .block = -1, .name = "" };
	int r;

	hold(q, p, q->need);
	normal = be32(h + 16);
	zero = be32(h + 32);
	r = mfd_check(q, be32(h + 12), normal, zero);
	if (r || q->state != QSTREAM_PARSING)
		return r;
	it.data = h;
	it.len = QSTREAM_MFD_HDR_LEN;
	it.flags = be32(h + 8);
	it.normal = normal;
	it.zero = zero;
	it.packet_num = be64(h + 24);
	if (q->pkt_blk) {
		it.name = q->pkt_blk->name;
		it.name_len = q->pkt_blk->len;
		it.block = block_index(q, q->pkt_blk);
	}
	if (it.flags & MFD_SYNC)
		q->stats.syncs++;
	else
		q->stats.packets++;
	r = emit_item(q, &it);
	q->hold_len = 0;
	for (uint32_t i = normal; !r && i < normal + zero; i++) {
		struct qstream_item z = {
			.kind = QSTREAM_ZERO, .form = QSTREAM_IN_PACKET, .block = it.block,
			.name = it.name, .name_len = it.name_len, .offset = q->offs[i],
		};

		q->stats.zeros++;
		r = emit(q, &z);
	}
	q->normal = normal;
	q->page_i = 0;
	if (normal)
		go(q, S_MFD_PAGE, QSTREAM_PAGE_SIZE);
	else
		go(q, S_MFD_HDR, MFD_HDR_START);
	return r;
}

static int on_mfd_page(struct qstream *q, const uint8_t *p)
{
	struct qstream_item it = {
		.kind = QSTREAM_PAGE, .form = QSTREAM_IN_PACKET, .block = block_index(q, q->pkt_blk),
		.name = q->pkt_blk->name, .name_len = q->pkt_blk->len,
		.offset = q->offs[q->page_i], .data = p, .len = QSTREAM_PAGE_SIZE,
	};

	q->stats.pages++;
	if (++q->page_i == q->normal)
		go(q, S_MFD_HDR, MFD_HDR_START);
	return emit_item(q, &it);
}

/* --- the driver --------------------------------------------------------- */

typedef int (*step_fn)(struct qstream *q, const uint8_t *p);

static const step_fn steps[] = {
	[S_QEVM] = on_qevm,
	[S_TYPE] = on_type,
	[S_CONFIG_LEN] = on_config_len,
	[S_SEC_HEAD] = on_sec_head,
	[S_SEC_NAME] = on_sec_name,
	[S_SEC_TAIL] = on_sec_tail,
	[S_SEC_ID] = on_sec_id,
	[S_FOOTER] = on_footer,
	[S_CMD] = on_cmd,
	[S_PACKAGED] = on_packaged,
	[S_REC] = on_rec,
	[S_REC_NLEN] = on_rec_nlen,
	[S_REC_NAME] = on_rec_name,
	[S_REC_DATA] = on_rec_data,
	[S_MS_NLEN] = on_ms_nlen,
	[S_MS_NAME] = on_ms_name,
	[S_MS_LEN] = on_ms_len,
	[S_MFD_INIT] = on_mfd_init,
	[S_MFD_HDR] = on_mfd_hdr,
	[S_MFD_REST] = on_mfd_rest,
	[S_MFD_DEV] = on_mfd_dev,
	[S_MFD_PAGE] = on_mfd_page,
};

struct cursor {
	const uint8_t *p;
	size_t len, off;
};

/* The next q->need bytes: in place if the data has them all and nothing is
 * collected yet, else from q->buf once complete; NULL when the data ran out
 * first (what there was is kept in q->buf). */
static const uint8_t *take(struct qstream *q, struct cursor *c)
{
	size_t avail = c->len - c->off, n = q->need, k;
	const uint8_t *r;

	if (q->have == 0 && avail >= n) {
		r = c->p + c->off;
		c->off += n;
		q->pos += n;
		return r;
	}
	k = n - q->have < avail ? n - q->have : avail;
	memcpy(q->buf + q->have, c->p + c->off, k);
	q->have += k;
	c->off += k;
	q->pos += k;
	if (q->have < n)
		return NULL;
	q->have = 0;
	return q->buf;
}

/* The common case of S_REC, taken without the state machine: CONTINUE
 * records of the current block that lie whole in the data. Stops, leaving
 * the cursor on it, at the first record that is anything else. */
static int fast_records(struct qstream *q, struct cursor *c)
{
	struct qstream_item it = {
		.form = QSTREAM_RECORD, .block = block_index(q, q->cur),
		.name = q->cur->name, .name_len = q->cur->len,
	};
	int r = 0;

	while (!r && c->len - c->off >= 9) {
		const uint8_t *p = c->p + c->off;
		uint64_t h = be64(p), flags = h & F_MASK;
		size_t n;

		if (flags == (F_ZERO | F_CONTINUE) && p[8] == 0) {
			it.kind = QSTREAM_ZERO;
			it.data = NULL;
			it.len = 0;
			n = 9;
			q->stats.zeros++;
		} else if (flags == (F_PAGE | F_CONTINUE) &&
			   c->len - c->off >= 8 + QSTREAM_PAGE_SIZE) {
			it.kind = QSTREAM_PAGE;
			it.data = p + 8;
			it.len = QSTREAM_PAGE_SIZE;
			n = 8 + QSTREAM_PAGE_SIZE;
			q->stats.pages++;
		} else {
			break;
		}
		it.offset = h & ~F_MASK;
		if (!page_fits(q->cur, it.offset)) {
			if (it.kind == QSTREAM_ZERO)
				q->stats.zeros--;
			else
				q->stats.pages--;
			break;
		}
		c->off += n;
		q->pos += n;
		r = emit_item(q, &it);
	}
	return r;
}

int qstream_feed(struct qstream *q, const uint8_t *data, size_t len, qstream_emit_fn emit_fn,
		 void *arg)
{
	struct cursor c = { data, len, 0 };
	int r = 0;

	if (q->state == QSTREAM_FAILED)
		return q->err;
	if (q->finished || !emit_fn || (!data && len))
		return -EINVAL;
	q->emit = emit_fn;
	q->arg = arg;
	q->stats.bytes += len;
	while (!r && c.off < c.len) {
		if (q->st == S_PASS) {
			r = pass_in(q, c.p + c.off, c.len - c.off);
			q->pos += c.len - c.off;
			c.off = c.len;
		} else if (q->st == S_SKIP) {
			size_t n = c.len - c.off;

			if (n > q->skip_left)
				n = (size_t)q->skip_left;
			r = pass_in(q, c.p + c.off, n);
			c.off += n;
			q->pos += n;
			q->skip_left -= n;
			if (!q->skip_left)
				q->st = q->after;
		} else {
			const uint8_t *p;

			if (q->st == S_REC && !q->have && q->cur) {
				size_t at = c.off;

				r = fast_records(q, &c);
				if (r || c.off == c.len)
					break;
				if (c.off != at)
					continue;
			}
			p = take(q, &c);

			if (!p)
				break;
			r = steps[q->st](q, p);
		}
	}
	if (!r)
		r = flush_run(q);
	return r;
}

/* Where a channel may end: between items (main), between records (preempt:
 * it has no EOS), between packets (multifd). */
static bool at_boundary(const struct qstream *q)
{
	if (q->have || q->hold_len)
		return false;
	switch (q->chan) {
	case QSTREAM_MAIN:
		return q->st == S_TYPE;
	case QSTREAM_PREEMPT:
		return q->st == S_REC;
	case QSTREAM_MULTIFD:
		return q->st == S_MFD_HDR || q->st == S_MFD_INIT;
	default:
		return true;
	}
}

int qstream_finish(struct qstream *q, qstream_emit_fn emit_fn, void *arg)
{
	size_t have = q->have;

	if (q->state == QSTREAM_FAILED)
		return q->err;
	if (q->finished)
		return 0;
	q->finished = true;
	q->emit = emit_fn;
	q->arg = arg;
	if (q->state != QSTREAM_PARSING || at_boundary(q))
		return 0;
	/* Between records or packets the element began with the bytes kept;
	 * inside one, elem_at already says where it began. */
	if (q->st == S_REC || q->st == S_MFD_HDR)
		q->elem_at = q->pos - have;
	q->have = 0;
	/* give_up passes the held pieces; the partial element follows them. */
	if (give_up(q, NULL, 0, "channel ended inside an item (%zu bytes pending)", have + q->hold_len))
		return q->err;
	return have ? pass_now(q, q->buf, have) : 0;
}

/* --- set-up and queries ------------------------------------------------- */

int qstream_new(struct qstream **out, enum qstream_chan chan)
{
	struct qstream *q;

	*out = NULL;
	if ((unsigned)chan > QSTREAM_OPAQUE)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->chan = chan;
	q->state = QSTREAM_PARSING;
	switch (chan) {
	case QSTREAM_MAIN:
		go(q, S_QEVM, 8);
		break;
	case QSTREAM_MULTIFD:
		go(q, S_MFD_INIT, MFD_INIT_LEN);
		break;
	case QSTREAM_PREEMPT:
		go(q, S_REC, 8);
		break;
	case QSTREAM_OPAQUE:
		q->state = QSTREAM_TAIL;
		go(q, S_PASS, 0);
		break;
	}
	*out = q;
	return 0;
}

void qstream_free(struct qstream *q)
{
	free(q);
}

int qstream_add_block(struct qstream *q, const char *name, uint64_t used_length)
{
	size_t n = name ? strlen(name) : 0;
	struct blk *b;

	if (q->chan == QSTREAM_MAIN || q->stats.bytes || n == 0 || n > QSTREAM_NAME_MAX ||
	    find_block(q, name, n))
		return -EINVAL;
	if (q->nblocks == QSTREAM_MAX_BLOCKS)
		return -ENOSPC;
	b = &q->blocks[q->nblocks++];
	memcpy(b->name, name, n + 1);
	b->len = (uint8_t)n;
	b->used = used_length;
	q->have_list = true;
	return 0;
}

int qstream_copy_blocks(struct qstream *q, const struct qstream *from)
{
	for (unsigned i = 0; i < from->nblocks; i++) {
		int r = qstream_add_block(q, from->blocks[i].name, from->blocks[i].used);

		if (r < 0)
			return r;
	}
	return 0;
}

unsigned qstream_block_count(const struct qstream *q)
{
	return q->nblocks;
}

const char *qstream_block_name(const struct qstream *q, unsigned i, uint64_t *used_length)
{
	if (i >= q->nblocks)
		return NULL;
	if (used_length)
		*used_length = q->blocks[i].used;
	return q->blocks[i].name;
}

enum qstream_state qstream_state(const struct qstream *q)
{
	return q->state;
}

const char *qstream_reason(const struct qstream *q)
{
	return q->state == QSTREAM_GAVE_UP ? q->reason : NULL;
}

void qstream_get_stats(const struct qstream *q, struct qstream_stats *st)
{
	*st = q->stats;
}

/* --- the rebuilder ------------------------------------------------------ */

ssize_t qstream_item_size(const struct qstream_item *it)
{
	size_t n;

	switch (it->kind) {
	case QSTREAM_PASS:
		return it->data || !it->len ? (ssize_t)it->len : -EINVAL;
	case QSTREAM_PACKET:
		return it->data && it->len == QSTREAM_MFD_HDR_LEN ? (ssize_t)it->len : -EINVAL;
	case QSTREAM_PAGE:
	case QSTREAM_ZERO:
		break;
	default:
		return -EINVAL;
	}
	if (it->kind == QSTREAM_PAGE && (!it->data || it->len != QSTREAM_PAGE_SIZE))
		return -EINVAL;
	if (it->form == QSTREAM_IN_PACKET)
		return it->kind == QSTREAM_PAGE ? QSTREAM_PAGE_SIZE : 0;
	if (it->form != QSTREAM_RECORD || (it->offset & F_MASK))
		return -EINVAL;
	n = 8 + (it->kind == QSTREAM_PAGE ? QSTREAM_PAGE_SIZE : 1);
	if (it->named) {
		if (!it->name || it->name_len == 0)
			return -EINVAL;
		n += 1 + it->name_len;
	}
	return (ssize_t)n;
}

/* The item's bytes, or with head only those before a PAGE's content. */
static ssize_t rebuild(const struct qstream_item *it, uint8_t *out, size_t cap, bool head)
{
	ssize_t n = qstream_item_size(it);
	uint8_t *w = out;

	if (n < 0)
		return n;
	if (head && it->kind == QSTREAM_PAGE)
		n -= QSTREAM_PAGE_SIZE;
	if ((size_t)n > cap)
		return -ENOSPC;
	if (it->kind == QSTREAM_PASS || it->kind == QSTREAM_PACKET || it->form == QSTREAM_IN_PACKET) {
		if (n)
			memcpy(out, it->data, (size_t)n);
		return n;
	}
	put_be64(w, it->offset | (it->kind == QSTREAM_PAGE ? F_PAGE : F_ZERO) |
			    (it->named ? 0 : F_CONTINUE));
	w += 8;
	if (it->named) {
		*w++ = it->name_len;
		memcpy(w, it->name, it->name_len);
		w += it->name_len;
	}
	if (it->kind != QSTREAM_PAGE)
		*w = it->fill;
	else if (!head)
		memcpy(w, it->data, QSTREAM_PAGE_SIZE);
	return n;
}

ssize_t qstream_rebuild(const struct qstream_item *it, uint8_t *out, size_t cap)
{
	return rebuild(it, out, cap, false);
}

ssize_t qstream_rebuild_head(const struct qstream_item *it, uint8_t *out, size_t cap)
{
	return rebuild(it, out, cap, true);
}
