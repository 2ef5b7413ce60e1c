/* Fuzzes the QEMU stream parser (transport/qstream.h) as a relay would feed
 * it: one channel's bytes in chunks cut anywhere, each chunk in a buffer of
 * exactly its size.
 *
 * Input: byte 0 picks the channel (bits 0-1: main, multifd, preempt, main)
 * and whether a multifd or preempt parser gets a block list like the
 * recordings' (bit 2); byte 1 seeds the chunk sizes; the rest is the
 * channel.
 *
 * Properties: the rebuilt items are exactly the input, however it is cut;
 * only PASS items come once the parser gave up or passed EOF; every item is
 * one qstream_rebuild accepts, with a NUL-terminated name of name_len
 * bytes; the counts, the state and where it gave up do not depend on the
 * chunking (the same input fed whole gives the same). */
#include "fuzz/fuzz.h"
#include "transport/qstream.h"

struct check {
	const struct qstream *q;
	const uint8_t *want; /* the input */
	size_t len, at;      /* its size, bytes rebuilt so far */
};

static int check_item(void *arg, const struct qstream_item *it)
{
	struct check *c = arg;
	uint8_t out[8 + 1 + QSTREAM_NAME_MAX + QSTREAM_PAGE_SIZE];
	ssize_t n = qstream_item_size(it);

	fuzz_assert(n >= 0);
	fuzz_assert((size_t)n <= c->len - c->at);
	if (it->kind == QSTREAM_PASS) {
		fuzz_assert(it->len > 0);
		fuzz_assert(memcmp(it->data, c->want + c->at, it->len) == 0);
	} else {
		fuzz_assert(qstream_state(c->q) == QSTREAM_PARSING);
		fuzz_assert(it->name && strlen(it->name) == it->name_len);
		fuzz_assert(qstream_rebuild(it, out, sizeof(out)) == n);
		fuzz_assert(memcmp(out, c->want + c->at, (size_t)n) == 0);
	}
	c->at += (size_t)n;
	return 0;
}

/* The 6 blocks of the recordings' 64 MiB pc guest. */
static void add_blocks(struct qstream *q)
{
	static const struct {
		const char *name;
		uint64_t len;
	} b[] = {
		{ "pc.ram", 64 << 20 },        { "/rom@etc/acpi/tables", 128 << 10 },
		{ "pc.bios", 256 << 10 },      { "pc.rom", 128 << 10 },
		{ "/rom@etc/table-loader", 4096 }, { "/rom@etc/acpi/rsdp", 4096 },
	};

	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		fuzz_assert(qstream_add_block(q, b[i].name, b[i].len) == 0);
}

/* Feeds data in chunks whose sizes come from seed (0: all at once). */
static struct qstream *feed(enum qstream_chan chan, bool blocks, uint8_t seed,
			    const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 1, 2, 3, 7, 8, 9, 64, 1344, 4095, 4096, 4097, 131072 };
	struct check c = { .want = data, .len = size };
	uint32_t x = seed * 2654435761u + 1;
	struct qstream *q;
	size_t off = 0;

	fuzz_assert(qstream_new(&q, chan) == 0);
	if (blocks && chan != QSTREAM_MAIN)
		add_blocks(q);
	c.q = q;
	while (off < size) {
		size_t n = size - off;
		uint8_t *b;

		if (seed) {
			x = x * 1103515245u + 12345u;
			if (sizes[(x >> 16) % 12] < n)
				n = sizes[(x >> 16) % 12];
		}
		b = malloc(n);
		if (!b)
			abort();
		memcpy(b, data + off, n);
		fuzz_assert(qstream_feed(q, b, n, check_item, &c) == 0);
		free(b);
		off += n;
	}
	fuzz_assert(qstream_finish(q, check_item, &c) == 0);
	fuzz_assert(c.at == size);
	fuzz_assert(qstream_state(q) != QSTREAM_FAILED);
	fuzz_assert((qstream_state(q) == QSTREAM_GAVE_UP) == (qstream_reason(q) != NULL));
	return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum qstream_chan chans[] = { QSTREAM_MAIN, QSTREAM_MULTIFD,
						   QSTREAM_PREEMPT, QSTREAM_MAIN };
	struct qstream_stats a, b;
	struct qstream *cut, *whole;
	enum qstream_chan chan;
	bool blocks;

	if (size < 2)
		return 0;
	chan = chans[data[0] & 3];
	blocks = data[0] & 4;
	cut = feed(chan, blocks, data[1] ? data[1] : 1, data + 2, size - 2);
	whole = feed(chan, blocks, 0, data + 2, size - 2);
	qstream_get_stats(cut, &a);
	qstream_get_stats(whole, &b);
	fuzz_assert(a.bytes == b.bytes && a.pass_bytes == b.pass_bytes);
	fuzz_assert(a.pages == b.pages && a.zeros == b.zeros && a.named == b.named);
	fuzz_assert(a.packets == b.packets && a.syncs == b.syncs);
	fuzz_assert(a.gave_up_at == b.gave_up_at);
	fuzz_assert(qstream_state(cut) == qstream_state(whole));
	qstream_free(cut);
	qstream_free(whole);
	return 0;
}
