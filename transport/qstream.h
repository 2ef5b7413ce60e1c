/* An incremental parser of QEMU 10.0's migration channels into pages and
 * opaque byte runs, and the rebuilder that turns them back into the same
 * bytes (docs/qemu-stream.md describes the formats).
 *
 * Pure code: no I/O, no threads, no allocation after qstream_new. A relay
 * feeds each channel's bytes as they arrive, cut anywhere (a record may be
 * split at any byte), and gets a sequence of items through a callback:
 *
 *   QSTREAM_PASS    bytes the parser relays as they are: headers, section
 *                   framing, commands, device state, EOS/MULTIFD_FLUSH,
 *                   and everything after it gave up;
 *   QSTREAM_PAGE    one guest page (block, offset, 4096 bytes of content);
 *   QSTREAM_ZERO    one zero page (block, offset, the record's fill byte);
 *   QSTREAM_PACKET  a multifd packet header (1344 bytes, fields decoded),
 *                   followed by a ZERO item per zero offset it lists and a
 *                   PAGE item per normal page as its payload arrives.
 *
 * qstream_rebuild turns each item back into its bytes; concatenated, they
 * are exactly the bytes fed, whatever the chunking, including malformed
 * input: what the parser does not understand it passes through. It gives up
 * (QSTREAM_OPAQUE: the rest of the channel is one PASS run, with a reason) at
 * anything it does not know: another magic or version, an unknown flag,
 * section type or command, device state (which has no length), XBZRLE, a
 * block name not in MEM_SIZE's list, an offset past its block, a multifd
 * packet whose counts do not fit, a compressed multifd payload (zstd and
 * zlib are one stream per channel and cannot be decoded alone). Items
 * emitted before that stay valid.
 *
 * The target page size is 4096 (x86); a multifd packet header is then
 * 320 + 8 x 128 bytes. Memory is fixed: a parser holds at most one page and
 * one packet header of a split record, and at most QSTREAM_MAX_BLOCKS block
 * names. */
#ifndef FERRY_TRANSPORT_QSTREAM_H
#define FERRY_TRANSPORT_QSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QSTREAM_PAGE_SIZE 4096u
#define QSTREAM_MFD_PAGES 128u /* pages per multifd packet: 512 KiB / page size */
#define QSTREAM_MFD_HDR_LEN (320u + 8u * QSTREAM_MFD_PAGES)
#define QSTREAM_MAX_BLOCKS 64u
#define QSTREAM_NAME_MAX 255u

/* What a channel carries, known from its first bytes or its order
 * (engine/channel.c tells them apart). */
enum qstream_chan {
	QSTREAM_MAIN,    /* "QEVM", header, sections, RAM records, commands */
	QSTREAM_MULTIFD, /* initial packet, then packets */
	QSTREAM_PREEMPT, /* bare RAM records (postcopy preempt channel) */
	QSTREAM_OPAQUE,  /* anything else (the return path): all PASS */
};

enum qstream_kind {
	QSTREAM_PASS,
	QSTREAM_PAGE,
	QSTREAM_ZERO,
	QSTREAM_PACKET,
};

/* Where a PAGE or ZERO item sits, which decides its bytes on rebuild. */
enum qstream_form {
	QSTREAM_RECORD,    /* a RAM record: be64 offset|flags [u8 len, name], then
			    * 4096 bytes (PAGE) or the fill byte (ZERO) */
	QSTREAM_IN_PACKET, /* inside a multifd packet: a PAGE is its 4096 bytes of
			    * payload; a ZERO is an offset in the header (no bytes) */
};

struct qstream_item {
	enum qstream_kind kind;
	enum qstream_form form;       /* PAGE and ZERO */
	bool named;                   /* RECORD: carries the block name (else CONTINUE) */
	uint8_t fill;                 /* ZERO RECORD: the byte after the header (0) */
	uint8_t name_len;             /* PAGE, ZERO, PACKET: the block's name */
	int block;                    /* its index in the block list, -1 if unchecked */
	const char *name;             /* NUL-terminated, name_len bytes */
	uint64_t offset;              /* PAGE, ZERO: byte offset in the block */
	const uint8_t *data;          /* PASS: the bytes; PAGE: the page; PACKET: the header */
	size_t len;                   /* bytes at data */
	/* PACKET only: the header's fields */
	uint32_t flags, normal, zero;
	uint64_t packet_num;
};

/* Called for each item in stream order. Pointers in the item are valid only
 * during the call. A negative return stops the parser: qstream_feed returns
 * it, and the parser is failed for good (every later call returns it). */
typedef int (*qstream_emit_fn)(void *arg, const struct qstream_item *it);

enum qstream_state {
	QSTREAM_PARSING,
	QSTREAM_TAIL,   /* main after EOF (VMDESCRIPTION follows), or an OPAQUE
			 * channel: everything is PASS, nothing went wrong */
	QSTREAM_GAVE_UP,/* the rest of the channel is PASS; see qstream_reason */
	QSTREAM_FAILED, /* the callback failed */
};

struct qstream_stats {
	uint64_t bytes;      /* fed */
	uint64_t pass_bytes; /* emitted as PASS */
	uint64_t pages;      /* PAGE items */
	uint64_t zeros;      /* ZERO items */
	uint64_t named;      /* RECORD items that named their block */
	uint64_t packets;    /* multifd packets other than SYNC */
	uint64_t syncs;      /* multifd SYNC packets */
	uint64_t gave_up_at; /* channel offset of what it did not understand */
};

struct qstream;

/* A parser for one channel. 0, -EINVAL (unknown chan) or -ENOMEM. */
int qstream_new(struct qstream **out, enum qstream_chan chan) __attribute__((warn_unused_result));
/* Accepts NULL. */
void qstream_free(struct qstream *q);

/* Gives a multifd or preempt parser the block list that the main channel's
 * MEM_SIZE gave (or any list), so names and offsets are checked against it.
 * Without one they are taken as they come (a name is still at most 255
 * bytes). Call before feeding. 0, -EINVAL (main channel, bad name, already
 * fed) or -ENOSPC (more than QSTREAM_MAX_BLOCKS). */
int qstream_add_block(struct qstream *q, const char *name, uint64_t used_length);
/* Copies from's block list into q (same rules as qstream_add_block). */
int qstream_copy_blocks(struct qstream *q, const struct qstream *from);
/* The block list: number of blocks, and block i's name and used length. */
unsigned qstream_block_count(const struct qstream *q);
const char *qstream_block_name(const struct qstream *q, unsigned i, uint64_t *used_length);

/* Parses len more bytes of the channel, calling emit for every item they
 * complete; bytes of a record split at the end of data are kept until the
 * next call (at most a page and a header). 0, or the callback's negative
 * value, or -EINVAL after qstream_finish. Never reads outside data. */
int qstream_feed(struct qstream *q, const uint8_t *data, size_t len, qstream_emit_fn emit,
		 void *arg);

/* End of the channel: emits the bytes still kept as PASS (the channel ended
 * inside a record: the parser gives up, saying so). 0 or the callback's
 * negative value. */
int qstream_finish(struct qstream *q, qstream_emit_fn emit, void *arg);

enum qstream_state qstream_state(const struct qstream *q);
/* Why the parser gave up (names from the stream escaped), or NULL. */
const char *qstream_reason(const struct qstream *q);
void qstream_get_stats(const struct qstream *q, struct qstream_stats *st);

/* The rebuilder (pure, stateless): the bytes an item stands for. */
/* Their number, or -EINVAL for an inconsistent item. */
ssize_t qstream_item_size(const struct qstream_item *it);
/* Writes them to out; their number, -ENOSPC if cap is too small (nothing
 * written), -EINVAL for an inconsistent item (a name of 0 or more than 255
 * bytes where one is needed, an unaligned offset, wrong lengths, NULL data). */
ssize_t qstream_rebuild(const struct qstream_item *it, uint8_t *out, size_t cap);
/* The same, less a PAGE's 4096 bytes of content: only what precedes them
 * (a RECORD's offset, flags and name; nothing in a packet), for a caller
 * that carries the content its own way. At most 8 + 1 + 255 bytes. */
ssize_t qstream_rebuild_head(const struct qstream_item *it, uint8_t *out, size_t cap);

#endif
