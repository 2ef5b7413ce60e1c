/* Fuzzes the page-coded chunk decoder with hostile chunks, and checks that
 * what the encoder codes from a QEMU channel rebuilds to exactly that
 * channel (transport/pagecode.h).
 *
 * Input: byte 0 picks the channel the encoder parses (bits 0-1: main,
 * multifd, preempt, opaque) and whether the decoder of hostile chunks gets
 * one byte less room than a chunk claims to rebuild (bit 2); byte 1 seeds
 * the encoder's chunk sizes (0: all at once); the rest is read twice:
 *  - as coded chunks, each after a be32 length (a length past the end
 *    takes the rest; at most 8), run in order through one decoder of 16 slots, each
 *    into a buffer of exactly the size its header claims (at most
 *    FRAME_MAX_RAW, what a frame can carry). A chunk whose hash field is 0
 *    gets the hash of the bytes it rebuilds put in by the harness, so the
 *    fuzzer gets past the hash and reaches the next chunk with the cache
 *    this one left;
 *  - as one QEMU channel, coded with pagec_encode in chunks cut by byte 1
 *    (each into a buffer of exactly its size + PAGEC_SLACK, the documented
 *    minimum), every coded chunk rebuilt in order by a decoder of its own.
 *
 * Properties: the decoder returns exactly the claimed length or an error,
 * never more than its room; -EBADMSG comes with a reason, -ENOSPC only
 * when the room was short. The encoder never runs out of the room it
 * asks for, and the rebuilt chunks are exactly the channel, however it is
 * cut; its counts add up. */
#include <errno.h>

#include "fuzz/fuzz.h"
#include "transport/pagecode.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define SLOTS 16u
#define MAX_CHUNKS 8

static uint64_t get64(const uint8_t *p) { return (uint64_t)fuzz_be32(p) << 32 | fuzz_be32(p + 4); }

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Runs one chunk through d into a buffer of exactly the room it claims
 * (less one if short). Checks what pagec_decode promises; returns its
 * result, and the rebuilt bytes in *got (the caller frees) on success. */
static ssize_t decode_one(struct pagec_dec *d, const uint8_t *in, size_t len, bool short_room,
			  uint8_t **got)
{
	uint32_t want = len >= PAGEC_HDR_LEN ? fuzz_be32(in + 1) : 0;
	size_t cap = want;
	char err[256];
	uint8_t *out, *chunk;
	ssize_t n;

	if (short_room && cap)
		cap--;
	if (cap > FRAME_MAX_RAW)
		cap = FRAME_MAX_RAW;
	/* In a buffer of exactly len bytes, as a frame's payload would be. */
	chunk = malloc(len ? len : 1);
	out = calloc(1, cap ? cap : 1);
	if (!chunk || !out)
		abort();
	memcpy(chunk, in, len);
	err[0] = '\0';
	n = pagec_decode(d, chunk, len, out, cap, err, sizeof(err));
	free(chunk);
	fuzz_assert(n == -EBADMSG || n == -ENOSPC || n >= 0);
	fuzz_assert(n < 0 || (size_t)n <= cap);
	fuzz_assert(n < 0 || (size_t)n == want);
	fuzz_assert(n != -EBADMSG || (err[0] && strlen(err) < sizeof(err)));
	fuzz_assert(n != -ENOSPC || cap < want);
	if (n >= 0) {
		fuzz_assert(XXH3_64bits(out, (size_t)n) == get64(in + 5));
		*got = out;
	} else {
		free(out);
	}
	return n;
}

/* The hash of what chunk k rebuilds when chunks[0..k) went before it (all
 * of which decoded), or 0 if it does not rebuild. */
static uint64_t rebuilt_hash(uint8_t **at, const size_t *len, int k)
{
	struct pagec_dec *d;
	uint32_t want = fuzz_be32(at[k] + 1);
	uint64_t h = 0;
	uint8_t *out, *got;
	char err[256];

	if (pagec_dec_new(&d, SLOTS) < 0)
		abort();
	for (int i = 0; i < k; i++) {
		fuzz_assert(decode_one(d, at[i], len[i], false, &got) >= 0);
		free(got);
	}
	if (want <= FRAME_MAX_RAW) {
		out = calloc(1, want ? want : 1);
		if (!out)
			abort();
		/* Fails on the hash (or earlier): the bytes are in out. */
		if (pagec_decode(d, at[k], len[k], out, want, err, sizeof(err)) == -EBADMSG)
			h = XXH3_64bits(out, want);
		free(out);
	}
	pagec_dec_free(d);
	return h;
}

static void hostile(uint8_t *data, size_t size, bool short_room)
{
	uint8_t *at[MAX_CHUNKS], *got;
	size_t len[MAX_CHUNKS];
	struct pagec_dec *d;
	int k = 0;

	while (size >= 4 && k < MAX_CHUNKS) {
		size_t n = fuzz_be32(data);

		data += 4;
		size -= 4;
		if (n > size)
			n = size;
		at[k] = data;
		len[k++] = n;
		data += n;
		size -= n;
	}
	if (pagec_dec_new(&d, SLOTS) < 0)
		abort();
	for (int i = 0; i < k; i++) {
		if (len[i] >= PAGEC_HDR_LEN && !get64(at[i] + 5))
			put64(at[i] + 5, rebuilt_hash(at, len, i));
		if (decode_one(d, at[i], len[i], short_room, &got) < 0)
			break;
		free(got);
	}
	pagec_dec_free(d);
}

/* Codes data in chunks whose sizes come from seed and checks each coded
 * chunk rebuilds to the next bytes of data. */
static void round_trip(enum qstream_chan chan, uint8_t seed, const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 1, 7, 13, 64, 1344, 4095, 4096, 4097, 8200, 65536 };
	static uint8_t tail[PAGEC_SLACK];
	uint32_t x = seed * 2654435761u + 1;
	struct pagec_enc *e;
	struct pagec_dec *d;
	struct pagec_stats st;
	size_t off = 0, at = 0;
	uint64_t coded = 0;

	if (pagec_enc_new(&e, chan, SLOTS) < 0 || pagec_dec_new(&d, SLOTS) < 0)
		abort();
	do {
		size_t n = size - off, cap;
		uint8_t *in, *out, *got;
		ssize_t c, r;

		if (seed) {
			x = x * 1103515245u + 12345u;
			if (sizes[(x >> 16) % 10] < n)
				n = sizes[(x >> 16) % 10];
		}
		if (n > 65536)
			n = 65536; /* a relay's chunk is at most 112 KiB */
		cap = n + PAGEC_SLACK;
		in = malloc(n ? n : 1);
		out = malloc(cap);
		if (!in || !out)
			abort();
		memcpy(in, data + off, n);
		off += n;
		/* zstd on some chunks: the channel's stream goes on across
		 * the ones that skip it. */
		c = pagec_encode(e, in, n, off == size, out, cap, (x >> 8) & 1);
		free(in);
		fuzz_assert(c >= (ssize_t)PAGEC_HDR_LEN && (size_t)c <= cap);
		coded += (size_t)c;
		/* Rebuilds what came before a split record and what it holds. */
		fuzz_assert(fuzz_be32(out + 1) <= size - at);
		r = decode_one(d, out, (size_t)c, false, &got);
		free(out);
		if (r < 0) {
			fprintf(stderr, "coded chunk at channel byte %zu did not decode\n", at);
			abort();
		}
		if (memcmp(got, data + at, (size_t)r) != 0) {
			fprintf(stderr, "coded chunk at channel byte %zu rebuilt other bytes\n", at);
			abort();
		}
		free(got);
		at += (size_t)r;
	} while (off < size);
	fuzz_assert(at == size);
	/* The channel ended: the encoder takes no more. */
	fuzz_assert(pagec_encode(e, data, 0, 1, tail, sizeof(tail), 0) == -EINVAL);
	pagec_enc_stats(e, &st);
	fuzz_assert(st.in == size && st.coded == coded);
	fuzz_assert(st.pages == st.raw + st.zero + st.dup + st.delta);
	pagec_enc_free(e);
	pagec_dec_free(d);
}

FUZZ_INIT_QUIET()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum qstream_chan chans[] = { QSTREAM_MAIN, QSTREAM_MULTIFD,
						   QSTREAM_PREEMPT, QSTREAM_OPAQUE };
	uint8_t *copy;

	if (size < 2)
		return 0;
	/* The harness writes hash fields: into a copy. */
	copy = malloc(size - 2 ? size - 2 : 1);
	if (!copy)
		abort();
	memcpy(copy, data + 2, size - 2);
	hostile(copy, size - 2, data[0] & 4);
	free(copy);
	round_trip(chans[data[0] & 3], data[1], data + 2, size - 2);
	return 0;
}
