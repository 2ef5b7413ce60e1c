/* Relay: the streams of one migration, carried between a local byte socket
 * (a QEMU migration channel, an NBD connection) and a framed peer link.
 *
 * Each stream is bidirectional and independent: its own bounded buffers, its
 * own backpressure (a full stream stops reading its own source and nothing
 * else), half-close carried as a FIN frame, abort as an ABORT frame. The same
 * code runs on both agents: on the source the plain side is QEMU's outgoing
 * connection, on the target it is the connection to the incoming QEMU.
 *
 * All functions are thread-safe; the pumps themselves live on the loop. */
#ifndef FERRY_TRANSPORT_RELAY_H
#define FERRY_TRANSPORT_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "transport/qstream.h"
#include "util/compiler.h"

struct loop;
struct workers;
struct relay;
struct seal_stream;

struct relay_stream_stats {
	uint32_t stream_id;
	char label[32];
	uint64_t raw_in;   /* bytes read from the local socket */
	uint64_t wire_out; /* frame bytes written to the peer link */
	uint64_t wire_in;  /* frame bytes read from the peer link */
	uint64_t raw_out;  /* bytes written to the local socket */
	uint64_t busy_ns;  /* time spent packing/unpacking this stream's chunks */
	/* Of raw_in: bytes handed to LZ4 / zstd (the rest went raw; a chunk
	 * that did not shrink still counts for the codec that tried). */
	uint64_t raw_lz4, raw_zstd;
	/* Page coding (encoding side): pages seen, and how each went. */
	uint64_t pages, pages_zero, pages_dup, pages_delta, coded;
	int done;          /* finished (cleanly or not) */
	int err;           /* 0 or -errno of its failure */
};

/* How a stream uses compression (LZ4, zstd) on the link. */
enum relay_compress {
	RELAY_COMPRESS_OFF = 0,
	RELAY_COMPRESS_AUTO = 1,   /* measured per mode, while the link is the bottleneck */
	RELAY_COMPRESS_ALWAYS = 2, /* LZ4 on every chunk (benchmarks) */
	RELAY_COMPRESS_ZSTD = 3,   /* zstd on every chunk (tests) */
};

/* How one stream is carried. */
struct relay_stream_opts {
	int compress; /* enum relay_compress */
	/* Page coding (transport/pagecode.h); both 0: opaque chunks.
	 * page_enc_slots > 0: what the plain side sends (a QEMU channel of
	 * kind chan) is page-coded with that many cache slots before the
	 * link; page_dec_slots > 0: the peer page-codes what it sends with
	 * that many, and this end rebuilds it. */
	uint32_t page_enc_slots, page_dec_slots;
	enum qstream_chan chan;
};

FERRY_MUST_CHECK int relay_new(struct loop *lp, struct workers *w, struct relay **out);

/* Streams one relay carries at most: a main channel, up to 64 multifd
 * channels and a disk mirror per disk fit many times over. */
#define RELAY_MAX_STREAMS 256

/* Starts a stream. Takes ownership of both fds, also on failure.
 * o: how it is carried (NULL: no compression, no page coding). keys: the stream's keys on its link
 * (peer_link_stream_keys; copied, sequence numbers from 0); every frame is
 * sealed with them and every frame received must open with them, else the
 * stream aborts. -EMFILE past RELAY_MAX_STREAMS, -EINVAL for keys of
 * another stream. */
FERRY_MUST_CHECK int relay_add_stream(struct relay *r, int plain_fd, int framed_fd, uint32_t stream_id,
		     const char *label, const struct relay_stream_opts *o,
		     const struct seal_stream *keys);

/* Aborts every stream: an ABORT frame with the reason goes to the peer where
 * possible, sockets are shut down. Idempotent. */
void relay_abort(struct relay *r, const char *reason);

/* The last copy has begun (the guest is stopped): from now on latency is
 * everything, so streams stop probing and keep the faster known mode. */
void relay_set_final(struct relay *r);

/* Waits until every stream has finished, or one failed, or timeout.
 * 0 = all finished cleanly; -ETIMEDOUT; or the failed stream's -errno. */
int relay_wait(struct relay *r, int timeout_ms);

/* Nonzero when some stream failed; reason says which and why. */
int relay_failed(struct relay *r, char *reason, size_t len);

size_t relay_nstreams(struct relay *r);
/* Copies per-stream figures; returns how many streams exist. */
size_t relay_stats(struct relay *r, struct relay_stream_stats *out, size_t max);
/* Sum over all streams (stream_id/label unset). */
void relay_totals(struct relay *r, struct relay_stream_stats *sum);

/* Aborts what still runs, waits for every pump to release its sockets. */
void relay_free(struct relay *r);

#endif
