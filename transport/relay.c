#include "transport/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "transport/codec.h"
#include "transport/frame.h"
#include "transport/loop.h"
#include "transport/pagecode.h"
#include "transport/seal.h"
#include "transport/workers.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Buffering per stream direction: SLOTS chunks of at most CHUNK bytes. Small
 * on purpose: QEMU sizes its final stop-and-copy from the throughput it sees,
 * and bytes parked in deep queues make that estimate wrong and stretch the
 * guest's pause. */
#define PUMP_SLOTS 4
#define PUMP_CHUNK (128u * 1024u)
/* Below this a chunk is sent raw and packed inline: return-path messages and
 * postcopy page requests must not wait for a worker hop. */
#define PUMP_INLINE_MAX 1024u
#define PUMP_ABORT_REASON_MAX 1024u
/* zstd's level in a page-coded stream, fixed when its zstd stream starts:
 * the codec's own (transport/codec.c), or, on a link measured slower than
 * PUMP_SLOW_LINK_BPS raw, a level that shrinks text-like pages ~4 % more
 * for ~5 % more agent CPU (measured at 100 Mbit/s, docs/benchmarks.md). */
#define PUMP_ZSTD_LEVEL 1
#define PUMP_ZSTD_LEVEL_SLOW 3
#define PUMP_SLOW_LINK_BPS (40.0 * 1000 * 1000)

/* SLOT_QUEUED: a page-coded stream's chunk waiting for its turn (enc_kick,
 * dec_kick). */
enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_READY };

struct enc_slot {
	enum slot_state state;
	int fin;
	int fin_after; /* page-coded: flush the coder into this frame, then FIN */
	uint8_t *raw;
	size_t raw_len;
	uint8_t *coded; /* page-coded streams: the coded chunk */
	uint8_t *frame;
	ssize_t frame_len; /* < 0: packing failed */
	int mode;          /* enum codec_mode want_compress chose for it */
	int zlevel;        /* page-coded zstd: the level, if its stream starts now */
	uint64_t seq;      /* its sequence number under the stream's tx key */
	uint64_t busy_ns;
	struct pump *p;
};

struct dec_slot {
	enum slot_state state;
	int fin;
	uint8_t hdr[FRAME_HDR_LEN];
	struct frame_hdr h;
	uint8_t *wire;
	uint8_t *raw;
	uint8_t *pout;      /* page-coded streams: the rebuilt chunk */
	const uint8_t *out; /* what goes to the plain socket: wire, raw or pout */
	ssize_t out_len;    /* < 0: unpacking failed */
	uint64_t seq;       /* the sequence number it must open with */
	char err[128];
	uint64_t busy_ns;
	struct pump *p;
};

struct relay_stream {
	struct relay_stream_stats st;
	char reason[256];
	struct pump *pump; /* NULL once released */
};

struct pump {
	struct relay *r;
	struct relay_stream *rs;
	int plain, framed;
	uint32_t id;
	int compress;
	/* Sealing (transport/seal.h): sequence numbers are given out on the
	 * loop in wire order, so workers may seal and open out of order. */
	struct seal_key tx, rx;
	uint64_t tx_seq, tx_wire_seq, rx_seq;
	int inflight; /* ops + jobs not yet completed */
	int dead;     /* aborting: no new ops, release when inflight hits 0 */
	int err;
	char reason[256];
	/* I/O that could not be queued: still counted in inflight (and its
	 * busy flag set) until arm_failed_post runs, so that the pump outlives
	 * the callback that tried to queue it. */
	int arm_failed_ops, arm_failed_err;
	const char *arm_failed_what;
	/* Page coding (transport/pagecode.h): the cache each end keeps must
	 * see the chunks in stream order, so a page-coded direction runs one
	 * job at a time, the next slot in order (enc_kick, dec_kick).
	 * Parallelism comes from the other streams. */
	struct pagec_enc *penc;
	struct pagec_dec *pdec;
	int enc_job_busy, dec_job_busy;
	unsigned enc_job_next, dec_job_next;

	/* plain -> framed */
	struct enc_slot enc[PUMP_SLOTS];
	unsigned enc_fill, enc_head;
	int enc_recv_busy, enc_send_busy, enc_eof, enc_done;
	/* Adaptive compression (want_compress). */
	uint64_t win_start_ns, win_raw, windows;
	int win_saturated, mode, probing, probe_last, nmodes, mode_logs;
	/* Guest bytes/s through a saturated link, per enum codec_mode. */
	double mode_bps[CODEC_NMODES];
	size_t enc_send_off;
	struct loop_op enc_recv_op, enc_send_op;

	/* framed -> plain */
	struct dec_slot dec[PUMP_SLOTS];
	unsigned dec_fill, dec_head;
	int dec_recv_busy, dec_send_busy, dec_in_payload, dec_fin_seen, dec_done;
	size_t dec_got, dec_send_off;
	struct loop_op dec_recv_op, dec_send_op;
	char abort_buf[PUMP_ABORT_REASON_MAX + 1];
	/* After the peer's FIN the link is still read, into this slot, so an
	 * ABORT (or the peer vanishing) is noticed even while our direction
	 * is idle; only ABORT and PING may come (dec_frame_complete). */
	struct dec_slot tail;
	uint8_t tail_wire[PUMP_ABORT_REASON_MAX + FRAME_TAG_LEN];
	int dec_tail_closed; /* peer closed the link after both FINs: stop reading */
};

struct relay {
	struct loop *lp;
	struct workers *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct relay_stream **streams;
	size_t n, cap;
	int live;   /* pumps not yet released */
	int posted; /* abort_all_fn calls queued on the loop; they use r */
	int failed;
	int final; /* relay_set_final: the guest is stopped */
	int nmodes; /* modes AUTO may use: CODEC_NMODES, or 2 (no zstd) */
	char fail_reason[320];
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void pump_abort(struct pump *p, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void enc_pump(struct pump *p);
static void dec_pump(struct pump *p);

static void stat_add(uint64_t *ctr, uint64_t v) { __atomic_add_fetch(ctr, v, __ATOMIC_RELAXED); }

static const char *const mode_name[CODEC_NMODES] = {"raw", "lz4", "zstd"};

/* ---- release ---------------------------------------------------------- */

static void pump_free(struct pump *p)
{
	if (!p)
		return;
	for (int i = 0; i < PUMP_SLOTS; i++) {
		free(p->enc[i].raw);
		free(p->enc[i].coded);
		free(p->enc[i].frame);
		free(p->dec[i].wire);
		free(p->dec[i].raw);
		free(p->dec[i].pout);
	}
	pagec_enc_free(p->penc);
	pagec_dec_free(p->pdec);
	free(p);
}

static void pump_release_if_idle(struct pump *p)
{
	struct relay *r = p->r;

	if (p->inflight > 0)
		return;
	if (!p->dead && !(p->enc_done && p->dec_done))
		return;
	close(p->plain);
	close(p->framed);
	pthread_mutex_lock(&r->mu);
	p->rs->st.done = 1;
	p->rs->st.err = p->err;
	snprintf(p->rs->reason, sizeof(p->rs->reason), "%s", p->reason);
	p->rs->pump = NULL;
	if (p->err && !r->failed) {
		r->failed = 1;
		snprintf(r->fail_reason, sizeof(r->fail_reason), "stream %s: %s", p->rs->st.label,
			 p->reason);
	}
	r->live--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	log_debug("relay", "event=stream_released stream=%u err=%d", p->id, p->err);
	OPENSSL_cleanse(&p->tx, sizeof(p->tx));
	OPENSSL_cleanse(&p->rx, sizeof(p->rx));
	pump_free(p);
}

static void pump_check_done(struct pump *p)
{
	if (p->enc_done && p->dec_done && !p->dead) {
		log_info("relay", "event=stream_finished stream=%u label=%s raw_in=%llu wire_out=%llu wire_in=%llu raw_out=%llu "
			 "raw_lz4=%llu raw_zstd=%llu",
			 p->id, p->rs->st.label, (unsigned long long)p->rs->st.raw_in,
			 (unsigned long long)p->rs->st.wire_out, (unsigned long long)p->rs->st.wire_in,
			 (unsigned long long)p->rs->st.raw_out, (unsigned long long)p->rs->st.raw_lz4,
			 (unsigned long long)p->rs->st.raw_zstd);
		if (p->penc)
			log_info("relay", "event=pages_coded stream=%u label=%s pages=%llu zero=%llu dup=%llu delta=%llu "
				 "coded=%llu passed_through=\"%s\"",
				 p->id, p->rs->st.label, (unsigned long long)p->rs->st.pages,
				 (unsigned long long)p->rs->st.pages_zero, (unsigned long long)p->rs->st.pages_dup,
				 (unsigned long long)p->rs->st.pages_delta, (unsigned long long)p->rs->st.coded,
				 log_q(pagec_enc_reason(p->penc) ? pagec_enc_reason(p->penc) : "-"));
		p->dead = 1; /* nothing more to do: close and release */
		if (p->dec_recv_busy) {
			/* Only the read kept armed after the peer's FIN can be
			 * pending; nothing more is expected on it. SHUT_RD ends it
			 * even where cancelling by fd is unsupported. */
			shutdown(p->framed, SHUT_RD);
			loop_cancel_fd(p->r->lp, p->framed);
		}
	}
	pump_release_if_idle(p);
}

/* Best-effort ABORT frame: only when no frame is half-sent on the link,
 * otherwise the peer would read our reason as the rest of a payload. */
static void send_abort_frame(struct pump *p, const char *reason)
{
	uint8_t buf[FRAME_HDR_LEN + 256 + FRAME_TAG_LEN];
	struct frame_hdr h = {FRAME_VERSION, FRAME_ABORT, 0, p->id, 0, 0, 0};
	size_t n = strnlen(reason, 256);
	ssize_t len;

	/* Not while a frame is (or was left) half-sent: its prefix is on the
	 * wire under the sequence number the ABORT would take, so the same
	 * key and nonce would seal two texts. */
	if (p->enc_send_busy || p->enc_send_off)
		return;
	h.wire_len = h.raw_len = (uint32_t)n;
	memcpy(buf + FRAME_HDR_LEN, reason, n);
	frame_hdr_encode(&h, buf);
	h.crc = frame_crc(buf, buf + FRAME_HDR_LEN, n);
	frame_hdr_encode(&h, buf);
	/* Frames queued behind the wire are dropped: the ABORT takes the
	 * sequence number the peer expects next. */
	len = seal_frame(&p->tx, p->tx_wire_seq, buf);
	if (len < 0 || send(p->framed, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("relay", "event=abort_frame_unsent stream=%u err=%s", p->id, strerror(errno));
}

static void pump_abort(struct pump *p, int err, const char *fmt, ...)
{
	va_list ap;

	if (p->dead)
		return;
	p->dead = 1;
	p->err = err ? err : -ECONNABORTED;
	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	log_warn("relay", "event=stream_aborted stream=%u label=%s reason=\"%s\"", p->id,
		 p->rs->st.label, log_q(p->reason));
	send_abort_frame(p, p->reason);
	/* Shutting both sockets down completes every pending op promptly. */
	shutdown(p->plain, SHUT_RDWR);
	shutdown(p->framed, SHUT_RDWR);
	loop_cancel_fd(p->r->lp, p->plain);
	loop_cancel_fd(p->r->lp, p->framed);
	pump_release_if_idle(p);
}

/* ---- plain -> framed (encode) ------------------------------------------ */

static void enc_pack_work(void *arg, struct codec *c)
{
	struct enc_slot *s = arg;
	struct pump *p = s->p;
	const uint8_t *raw = s->raw;
	size_t raw_len = s->raw_len;
	int mode = s->mode;
	uint64_t t0 = time_mono_ns();

	if (p->penc) {
		/* Pages first, then a codec over the coded chunk: zstd as the
		 * channel's own stream, inside the coder (its window spans
		 * chunks), or LZ4 on the frame. */
		ssize_t n = pagec_encode(p->penc, s->raw, s->raw_len, s->fin_after, s->coded,
					 PUMP_CHUNK, mode == CODEC_ZSTD ? s->zlevel : 0);

		if (n < 0) {
			s->frame_len = n;
			goto out;
		}
		raw = s->coded;
		raw_len = (size_t)n;
		if (mode == CODEC_ZSTD)
			mode = CODEC_RAW;
	}
	s->frame_len = codec_pack(c, FRAME_DATA, p->id, raw, raw_len, mode, s->frame,
				  codec_frame_bound(PUMP_CHUNK));
	if (s->frame_len >= 0 && p->penc)
		frame_add_flag(s->frame, FRAME_F_PAGES, p->tx.aead == SEAL_NONE);
	/* Sealed after compression: ciphertext does not compress. */
	if (s->frame_len >= 0)
		s->frame_len = seal_frame(&p->tx, s->seq, s->frame);
out:
	s->busy_ns = time_mono_ns() - t0;
}

static void page_stats(struct pump *p)
{
	struct pagec_stats st;
	struct relay_stream_stats *o = &p->rs->st;

	pagec_enc_stats(p->penc, &st);
	__atomic_store_n(&o->pages, st.pages, __ATOMIC_RELAXED);
	__atomic_store_n(&o->pages_zero, st.zero, __ATOMIC_RELAXED);
	__atomic_store_n(&o->pages_dup, st.dup, __ATOMIC_RELAXED);
	__atomic_store_n(&o->pages_delta, st.delta, __ATOMIC_RELAXED);
	__atomic_store_n(&o->coded, st.coded, __ATOMIC_RELAXED);
}

static void enc_pack_done(void *arg);

/* Submits the next page-coded chunk in order if none is being coded.
 * -1 when it aborted the pump. */
static int enc_kick(struct pump *p)
{
	struct enc_slot *s = &p->enc[p->enc_job_next % PUMP_SLOTS];

	if (p->dead || p->enc_job_busy || p->enc_job_next == p->enc_fill || s->state != SLOT_QUEUED)
		return 0;
	s->state = SLOT_BUSY;
	p->enc_job_busy = 1;
	p->inflight++;
	if (workers_submit(p->r->w, enc_pack_work, enc_pack_done, s) < 0) {
		p->inflight--;
		pump_abort(p, -ENOMEM, "no memory to queue a chunk for page coding");
		return -1;
	}
	return 0;
}

static void enc_pack_done(void *arg)
{
	struct enc_slot *s = arg;
	struct pump *p = s->p;

	p->inflight--;
	stat_add(&p->rs->st.busy_ns, s->busy_ns);
	if (p->penc) {
		p->enc_job_busy = 0;
		p->enc_job_next++;
		page_stats(p);
	}
	if (p->dead) {
		/* This job may have been the last thing holding the pump. */
		pump_release_if_idle(p);
		return;
	}
	if (s->frame_len < 0) {
		pump_abort(p, (int)s->frame_len, "%s a chunk failed: %s",
			   p->penc ? "page coding, compressing or sealing" : "compressing or sealing",
			   strerror((int)-s->frame_len));
		return;
	}
	s->state = SLOT_READY;
	if (enc_kick(p) < 0)
		return;
	enc_pump(p);
}

/* Compress only where it pays, and with the codec that pays most. LZ4 and
 * zstd cost CPU on the host that also runs the guest; they pay back only
 * when the link, not the CPU, limits the copy, and the sender cannot tell a
 * slow wire from a slow receiver (on loopback with one core per host the
 * receiving agent is the limit, and compressing there measured 2-4x slower).
 * zstd (level 1) shrinks memory pages much more than LZ4 but costs several
 * times its CPU, so which of the two wins depends on the link's speed too.
 * So the pump measures instead of guessing:
 *
 *  - a window (PUMP_RATE_WINDOW_NS) is "saturated" when a backlog sits in
 *    front of the link (bytes the kernel has not sent, SIOCOUTQNSD, plus our
 *    own frames waiting); otherwise QEMU is the limit and raw is cheapest;
 *  - for saturated windows it keeps, per mode (raw, LZ4, zstd), the raw bytes
 *    per second that got through (EWMA), and uses the mode that moves the
 *    most guest data;
 *  - a mode never measured is tried first (raw, then LZ4, then zstd); after
 *    that, every PUMP_PROBE_EVERY windows it tries one of the other modes,
 *    in rotation, for one window, since links and receivers change.
 * RELAY_COMPRESS_ALWAYS (LZ4) and RELAY_COMPRESS_ZSTD skip all this, for
 * benchmarks and tests. */
#define PUMP_RATE_WINDOW_NS (100ull * 1000000ull)
#define PUMP_PROBE_EVERY 10
/* Once the guest is stopped: a link that carries raw frames faster than
 * this (1.6 Gbit/s) is not worth a compression step on the pause's path. */
#define PUMP_FINAL_RAW_FAST_BPS (200.0 * 1000 * 1000)
/* Mode changes logged per stream: enough to see the first probes and what
 * won, without a line per second for a long migration. */
#define PUMP_MODE_LOG_MAX 8

/* The measured mode that moves the most guest bytes; raw on ties. */
static int best_mode(const struct pump *p)
{
	int best = CODEC_RAW;

	for (int m = 1; m < p->nmodes; m++)
		if (p->mode_bps[m] > p->mode_bps[best])
			best = m;
	return best;
}

static void set_mode(struct pump *p, int mode)
{
	if (mode == p->mode)
		return;
	p->mode = mode;
	if (p->mode_logs > PUMP_MODE_LOG_MAX)
		return;
	if (p->mode_logs++ == PUMP_MODE_LOG_MAX) {
		log_info("relay", "event=compress_mode stream=%u label=%s further_changes=unlogged",
			 p->id, p->rs->st.label);
		return;
	}
	log_info("relay", "event=compress_mode stream=%u label=%s mode=%s probing=%d "
		 "raw_bps=%.0f lz4_bps=%.0f zstd_bps=%.0f",
		 p->id, p->rs->st.label, mode_name[mode], p->probing, p->mode_bps[0],
		 p->mode_bps[1], p->mode_bps[2]);
}

/* After a saturated window measured in p->mode: the mode for the next one. */
static int next_mode(struct pump *p)
{
	int best;

	for (int m = 0; m < p->nmodes; m++) {
		if (p->mode_bps[m] == 0) {
			p->probing = 1;
			return m;
		}
	}
	best = best_mode(p);
	if (p->probing || ++p->windows % PUMP_PROBE_EVERY != 0) {
		p->probing = 0;
		return best;
	}
	/* Probe the next mode after the one probed last, skipping the best. */
	for (int i = 1; i <= p->nmodes; i++) {
		int m = (p->probe_last + i) % p->nmodes;

		if (m != best) {
			p->probe_last = m;
			p->probing = 1;
			return m;
		}
	}
	return best;
}

/* Once the guest is stopped every chunk is on the critical path of its pause,
 * and so is the compression step: it stays only where the link itself is
 * slow, with the compressing mode measured to move the most through it. */
static int final_mode(struct pump *p)
{
	p->probing = 0;
	if (!(p->mode_bps[CODEC_RAW] > 0 && p->mode_bps[CODEC_RAW] < PUMP_FINAL_RAW_FAST_BPS))
		return CODEC_RAW;
	return best_mode(p);
}

/* Returns the enum codec_mode for chunk s (just counted in enc_fill). */
static int want_compress(struct pump *p, const struct enc_slot *s)
{
	uint64_t now = time_mono_ns(), dt;
	int notsent = 0;
	size_t backlog;

	if (p->compress == RELAY_COMPRESS_OFF || s->raw_len <= PUMP_INLINE_MAX)
		return CODEC_RAW;
	if (p->compress == RELAY_COMPRESS_ALWAYS)
		return CODEC_LZ4;
	if (p->compress == RELAY_COMPRESS_ZSTD)
		return CODEC_ZSTD;
	if (__atomic_load_n(&p->r->final, __ATOMIC_RELAXED)) {
		set_mode(p, final_mode(p));
		return p->mode;
	}
	if (ioctl(p->framed, SIOCOUTQNSD, &notsent) < 0 && ioctl(p->framed, SIOCOUTQ, &notsent) < 0)
		notsent = 0;
	/* Slots ahead of this one (it was just counted in enc_fill). */
	backlog = (size_t)(notsent > 0 ? notsent : 0) +
		  (size_t)(p->enc_fill - 1 - p->enc_head) * PUMP_CHUNK;
	if (backlog >= 2 * PUMP_CHUNK)
		p->win_saturated = 1;
	if (!p->win_start_ns)
		p->win_start_ns = now;
	dt = now - p->win_start_ns;
	if (dt < PUMP_RATE_WINDOW_NS)
		return p->mode;

	if (p->win_saturated) {
		double rate = (double)p->win_raw * 1e9 / (double)dt;
		double *est = &p->mode_bps[p->mode];

		*est = *est > 0 ? 0.5 * *est + 0.5 * rate : rate;
		set_mode(p, next_mode(p));
	} else {
		/* QEMU is the limit: nothing to gain from compressing. */
		p->probing = 0;
		set_mode(p, CODEC_RAW);
	}
	p->win_start_ns = now;
	p->win_raw = 0;
	p->win_saturated = 0;
	return p->mode;
}

/* Turns slot s (its seq given) into the stream's FIN frame. -1 when it
 * aborted the pump. */
static int build_fin(struct pump *p, struct enc_slot *s)
{
	struct frame_hdr fin = {FRAME_VERSION, FRAME_FIN, 0, p->id, 0, 0, 0};

	s->fin = 1;
	frame_hdr_encode(&fin, s->frame);
	fin.crc = frame_crc(s->frame, NULL, 0);
	frame_hdr_encode(&fin, s->frame);
	s->frame_len = seal_frame(&p->tx, s->seq, s->frame);
	if (s->frame_len < 0) {
		pump_abort(p, (int)s->frame_len, "sealing the FIN frame failed");
		return -1;
	}
	s->state = SLOT_READY;
	return 0;
}

static void enc_recv_cb(struct loop_op *op, int res)
{
	struct pump *p = container_of(op, struct pump, enc_recv_op);
	struct enc_slot *s = &p->enc[p->enc_fill % PUMP_SLOTS];

	p->inflight--;
	p->enc_recv_busy = 0;
	if (p->dead) {
		pump_release_if_idle(p);
		return;
	}
	if (res < 0) {
		pump_abort(p, res, "reading the local socket failed: %s", strerror(-res));
		return;
	}
	p->enc_fill++;
	s->seq = p->tx_seq++;
	if (res > 0) {
		stat_add(&p->rs->st.raw_in, (uint64_t)res);
		s->raw_len = (size_t)res;
		s->mode = want_compress(p, s);
		if (s->mode != CODEC_RAW)
			stat_add(s->mode == CODEC_LZ4 ? &p->rs->st.raw_lz4 : &p->rs->st.raw_zstd,
				 s->raw_len);
	}
	if (p->penc) {
		/* Every chunk, the end included (the coder may hold a split
		 * record), goes through the coder in order. */
		s->zlevel = p->mode_bps[CODEC_RAW] > 0 && p->mode_bps[CODEC_RAW] < PUMP_SLOW_LINK_BPS ?
				    PUMP_ZSTD_LEVEL_SLOW : PUMP_ZSTD_LEVEL;
		if (res == 0) {
			p->enc_eof = 1;
			s->fin_after = 1;
			s->raw_len = 0;
			s->mode = CODEC_RAW;
		}
		s->state = SLOT_QUEUED;
		if (enc_kick(p) < 0)
			return;
	} else if (res == 0) {
		/* Local side closed its write half: a FIN frame, in order. */
		p->enc_eof = 1;
		if (build_fin(p, s) < 0)
			return;
	} else {
		/* Compression and sealing of full chunks run on a worker;
		 * small chunks stay inline (see PUMP_INLINE_MAX). */
		if (s->mode != CODEC_RAW || (p->tx.aead != SEAL_NONE && s->raw_len > PUMP_INLINE_MAX)) {
			p->inflight++;
			if (workers_submit(p->r->w, enc_pack_work, enc_pack_done, s) < 0) {
				p->inflight--;
				pump_abort(p, -ENOMEM, "no memory to queue a chunk for compression");
				return;
			}
		} else {
			uint64_t t0 = time_mono_ns();

			/* codec_pack without compression touches no codec state. */
			s->frame_len = codec_pack(NULL, FRAME_DATA, p->id, s->raw, s->raw_len, CODEC_RAW,
						  s->frame, codec_frame_bound(PUMP_CHUNK));
			if (s->frame_len >= 0)
				s->frame_len = seal_frame(&p->tx, s->seq, s->frame);
			stat_add(&p->rs->st.busy_ns, time_mono_ns() - t0);
			if (s->frame_len < 0) {
				pump_abort(p, (int)s->frame_len, "framing a chunk failed");
				return;
			}
			s->state = SLOT_READY;
		}
	}
	enc_pump(p);
}

/* What both send completions do first: account for the op, give a dead
 * pump its chance to be released, turn a failed or short-circuited send
 * into an abort. 0 when the caller may go on with res bytes sent. */
static int send_done(struct pump *p, int *busy, int res, const char *what, const char *closed)
{
	p->inflight--;
	*busy = 0;
	if (p->dead) {
		pump_release_if_idle(p);
		return -1;
	}
	if (res <= 0) {
		pump_abort(p, res < 0 ? res : -EPIPE, "%s failed: %s", what,
			   res < 0 ? strerror(-res) : closed);
		return -1;
	}
	return 0;
}

static void enc_send_cb(struct loop_op *op, int res)
{
	struct pump *p = container_of(op, struct pump, enc_send_op);
	struct enc_slot *s = &p->enc[p->enc_head % PUMP_SLOTS];

	if (send_done(p, &p->enc_send_busy, res, "sending to the peer", "link closed") < 0)
		return;
	stat_add(&p->rs->st.wire_out, (uint64_t)res);
	p->enc_send_off += (size_t)res;
	if (p->enc_send_off >= (size_t)s->frame_len) {
		p->enc_send_off = 0;
		p->tx_wire_seq++;
		if (s->fin_after) {
			/* The coder's last chunk went: the FIN follows from
			 * the same slot, the last sequence number. */
			s->fin_after = 0;
			s->seq = p->tx_seq++;
			if (build_fin(p, s) < 0)
				return;
			enc_pump(p);
			pump_check_done(p);
			return;
		}
		if (s->fin)
			p->enc_done = 1;
		else
			p->win_raw += s->raw_len; /* guest bytes through the link */
		s->fin = 0;
		s->state = SLOT_FREE;
		p->enc_head++;
	}
	enc_pump(p);
	pump_check_done(p);
}

/* Runs on the loop thread after the callback that failed to queue I/O
 * has returned: drops the failed ops from inflight and fails the stream
 * (releasing the pump once idle). */
static void arm_failed_post(void *arg)
{
	struct pump *p = arg;

	p->inflight -= p->arm_failed_ops;
	p->arm_failed_ops = 0;
	if (p->dead)
		pump_release_if_idle(p);
	else
		pump_abort(p, p->arm_failed_err, "cannot queue a %s: %s", p->arm_failed_what,
			   strerror(-p->arm_failed_err));
}

/* An I/O that could not be queued (r < 0): nothing will ever complete it,
 * so the stream fails; otherwise the pump would never go idle and
 * relay_free would wait forever. Its busy flag stays set (nothing re-arms
 * it) and its count stays in inflight until arm_failed_post: the callers
 * go on using p after this returns. */
static void arm_failed(struct pump *p, int r, const char *what)
{
	if (!p->arm_failed_ops++) {
		p->arm_failed_err = r;
		p->arm_failed_what = what;
		loop_post_must(p->r->lp, arm_failed_post, p);
	}
}

/* Arms whatever can run now: a recv into the next free slot, a send of the
 * oldest ready slot. Order on the wire is slot order. */
static void enc_pump(struct pump *p)
{
	int r;

	struct enc_slot *s;

	if (p->dead)
		return;
	s = &p->enc[p->enc_fill % PUMP_SLOTS];
	if (!p->enc_eof && !p->enc_recv_busy && s->state == SLOT_FREE &&
	    p->enc_fill - p->enc_head < PUMP_SLOTS) {
		s->state = SLOT_BUSY;
		p->enc_recv_busy = 1;
		p->inflight++;
		/* A coded chunk may be a little larger than its input. */
		r = loop_recv(p->r->lp, &p->enc_recv_op, p->plain, s->raw,
			      p->penc ? PUMP_CHUNK - PAGEC_SLACK : PUMP_CHUNK, 0);
		if (r < 0) {
			arm_failed(p, r, "receive from QEMU");
			return;
		}
	}
	s = &p->enc[p->enc_head % PUMP_SLOTS];
	if (!p->enc_send_busy && p->enc_head != p->enc_fill && s->state == SLOT_READY) {
		p->enc_send_busy = 1;
		p->inflight++;
		r = loop_send(p->r->lp, &p->enc_send_op, p->framed, s->frame + p->enc_send_off,
			      (size_t)s->frame_len - p->enc_send_off, 0);
		if (r < 0)
			arm_failed(p, r, "send to the peer");
	}
}

/* ---- framed -> plain (decode) ------------------------------------------ */

/* Nothing in a frame is acted upon before its CRC matched: the CRC covers the
 * header, so a flipped type, stream id or length is caught like a flipped
 * payload byte (docs/protocol.md, "Checksum"). Acting on the header first
 * turned a corrupted DATA frame into a PING that silently dropped a chunk,
 * or into an ABORT with garbage for a reason. The header stage before the
 * payload only bounds wire_len by the buffer it is read into. Runs on the
 * loop or, for compressed frames, on a worker (p->id is immutable). 0 or -errno,
 * the reason in s->err. */
static int dec_check(const struct pump *p, struct dec_slot *s)
{
	/* Opens (decrypts in place) a sealed frame, checks the CRC otherwise. */
	if (seal_open(&p->rx, s->seq, &s->h, s->hdr, s->wire) < 0) {
		snprintf(s->err, sizeof(s->err), "%s", frame_strerror_last());
		return -EBADMSG;
	}
	if (s->h.stream_id != p->id) {
		snprintf(s->err, sizeof(s->err), "frame for stream %u on the link of stream %u",
			 s->h.stream_id, p->id);
		return -EPROTO;
	}
	if (s->h.raw_len > PUMP_CHUNK) {
		snprintf(s->err, sizeof(s->err), "frame of %u bytes exceeds the stream chunk limit %u",
			 s->h.raw_len, PUMP_CHUNK);
		return -EMSGSIZE;
	}
	if (s->h.type == FRAME_DATA && !(s->h.flags & FRAME_F_PAGES) != !p->pdec) {
		snprintf(s->err, sizeof(s->err), "%s",
			 p->pdec ? "DATA frame without page coding on a page-coded stream"
				 : "page-coded frame on a stream that did not negotiate page coding");
		return -EPROTO;
	}
	return 0;
}

static void dec_unpack_work(void *arg, struct codec *c)
{
	struct dec_slot *s = arg;
	uint64_t t0 = time_mono_ns();
	int r;

	r = dec_check(s->p, s);
	if (r < 0) {
		s->out_len = r;
	} else if (!(s->h.flags & FRAME_F_COMPRESSED)) {
		s->out = s->wire; /* sealed raw chunk, opened in place */
		s->out_len = s->h.wire_len;
	} else {
		/* The worker's codec: zstd decodes with its context. */
		s->out_len = codec_unpack(c, &s->h, s->wire, s->raw, PUMP_CHUNK);
		if (s->out_len < 0)
			snprintf(s->err, sizeof(s->err), "%s", frame_strerror_last());
		s->out = s->raw;
	}
	if (s->out_len >= 0 && s->p->pdec && s->h.type == FRAME_DATA) {
		/* In stream order, one at a time (dec_kick). */
		s->out_len = pagec_decode(s->p->pdec, s->out, (size_t)s->out_len, s->pout, PUMP_CHUNK,
					  s->err, sizeof(s->err));
		if (s->out_len == -ENOSPC)
			snprintf(s->err, sizeof(s->err), "page-coded chunk rebuilds to more than %u bytes",
				 PUMP_CHUNK);
		s->out = s->pout;
	}
	s->busy_ns = time_mono_ns() - t0;
}

static void dec_unpack_done(void *arg);

/* Submits the next page-coded frame in order if none is being decoded;
 * frames decoded inline (FIN) are stepped over. -1 when it aborted the
 * pump. */
static int dec_kick(struct pump *p)
{
	struct dec_slot *s;

	if ((int)(p->dec_head - p->dec_job_next) > 0)
		p->dec_job_next = p->dec_head;
	while (!p->dead && !p->dec_job_busy && p->dec_job_next != p->dec_fill) {
		s = &p->dec[p->dec_job_next % PUMP_SLOTS];
		if (s->state != SLOT_QUEUED) {
			p->dec_job_next++;
			continue;
		}
		s->state = SLOT_BUSY;
		p->dec_job_busy = 1;
		p->inflight++;
		if (workers_submit(p->r->w, dec_unpack_work, dec_unpack_done, s) < 0) {
			p->inflight--;
			pump_abort(p, -ENOMEM, "no memory to queue a chunk for decoding");
			return -1;
		}
	}
	return 0;
}

static void dec_unpack_done(void *arg)
{
	struct dec_slot *s = arg;
	struct pump *p = s->p;

	p->inflight--;
	stat_add(&p->rs->st.busy_ns, s->busy_ns);
	if (p->pdec) {
		p->dec_job_busy = 0;
		p->dec_job_next++;
	}
	if (p->dead) {
		pump_release_if_idle(p);
		return;
	}
	if (s->out_len < 0) {
		pump_abort(p, -EBADMSG, "bad frame from peer: %s", s->err);
		return;
	}
	s->state = SLOT_READY;
	if (dec_kick(p) < 0)
		return;
	dec_pump(p);
	/* Delivering may have reached the FIN (a chunk that rebuilt to
	 * nothing is stepped over at once). */
	pump_check_done(p);
}

/* Returns -1 when it aborted the pump, which may then be freed already:
 * the caller must not touch p again. */
static int dec_frame_complete(struct pump *p, struct dec_slot *s)
{
	uint64_t t0;

	p->dec_in_payload = 0;
	p->dec_got = 0;
	stat_add(&p->rs->st.wire_in, (uint64_t)frame_wire_size(&s->h));
	s->seq = p->rx_seq++;
	if (s->h.type == FRAME_DATA && s != &p->tail && p->pdec) {
		/* Checked, unpacked and rebuilt on a worker, in order. */
		p->dec_fill++;
		s->state = SLOT_QUEUED;
		return dec_kick(p);
	}
	if (s->h.type == FRAME_DATA && s != &p->tail &&
	    ((s->h.flags & FRAME_F_COMPRESSED) ||
	     (p->rx.aead != SEAL_NONE && s->h.wire_len > PUMP_INLINE_MAX))) {
		/* Checked on the worker, together with the unpacking. */
		p->dec_fill++;
		s->state = SLOT_BUSY;
		p->inflight++;
		if (workers_submit(p->r->w, dec_unpack_work, dec_unpack_done, s) < 0) {
			p->inflight--;
			pump_abort(p, -ENOMEM, "no memory to queue a chunk for decompression");
			return -1;
		}
		return 0;
	}
	/* Everything else is checked inline (CRC32C, or a small AEAD pass). */
	t0 = time_mono_ns();
	if (dec_check(p, s) < 0) {
		pump_abort(p, -EBADMSG, "bad frame from peer: %s", s->err);
		return -1;
	}
	stat_add(&p->rs->st.busy_ns, time_mono_ns() - t0);
	if (s == &p->tail && s->h.type != FRAME_ABORT && s->h.type != FRAME_PING) {
		pump_abort(p, -EPROTO, "%s frame from peer after its FIN", frame_type_name(s->h.type));
		return -1;
	}
	switch (s->h.type) {
	case FRAME_DATA:
		/* Raw payload: pass the wire buffer through without a copy. */
		p->dec_fill++;
		s->out = s->wire;
		s->out_len = s->h.wire_len;
		s->state = SLOT_READY;
		return 0;
	case FRAME_FIN:
		p->dec_fill++;
		p->dec_fin_seen = 1;
		s->fin = 1;
		s->out_len = 0;
		s->state = SLOT_READY;
		return 0;
	case FRAME_ABORT:
		if (s->h.wire_len > PUMP_ABORT_REASON_MAX) {
			pump_abort(p, -EMSGSIZE, "ABORT frame from peer with a %u-byte reason",
				   s->h.wire_len);
			return -1;
		}
		memcpy(p->abort_buf, s->wire, s->h.wire_len);
		p->abort_buf[s->h.wire_len] = '\0';
		pump_abort(p, -ECONNABORTED, "peer aborted the stream: %s", p->abort_buf);
		return -1;
	case FRAME_PING:
		return 0;
	default:
		pump_abort(p, -EPROTO, "unexpected %s frame on a data stream",
			   frame_type_name(s->h.type));
		return -1;
	}
}

static void dec_recv_cb(struct loop_op *op, int res)
{
	struct pump *p = container_of(op, struct pump, dec_recv_op);
	struct dec_slot *s = p->dec_fin_seen ? &p->tail : &p->dec[p->dec_fill % PUMP_SLOTS];
	uint32_t cap = s == &p->tail ? PUMP_ABORT_REASON_MAX : PUMP_CHUNK;
	int r;

	p->inflight--;
	p->dec_recv_busy = 0;
	if (p->dead) {
		pump_release_if_idle(p);
		return;
	}
	if (res < 0) {
		pump_abort(p, res, "reading the peer link failed: %s", strerror(-res));
		return;
	}
	if (res == 0 && s == &p->tail && !p->dec_in_payload && !p->dec_got && p->enc_eof) {
		/* Both FINs are out: the peer finished and closed. */
		p->dec_tail_closed = 1;
		goto rearm;
	}
	if (res == 0) {
		pump_abort(p, -ECONNRESET, "peer closed the link %s",
			   p->dec_in_payload || p->dec_got ? "in the middle of a frame"
							    : "without finishing the stream");
		return;
	}
	p->dec_got += (size_t)res;
	if (!p->dec_in_payload) {
		if (p->dec_got < FRAME_HDR_LEN)
			goto rearm;
		r = frame_hdr_decode(s->hdr, FRAME_HDR_LEN, &s->h);
		if (r < 0) {
			pump_abort(p, r, "bad frame header from peer: %s", frame_strerror_last());
			return;
		}
		/* Only what keeps the payload inside its buffer is checked
		 * before the CRC; the rest waits for dec_check. */
		if (s->h.wire_len > cap) {
			pump_abort(p, -EMSGSIZE,
				   "bad frame header from peer: %s payload of %u bytes exceeds the limit %u",
				   frame_type_name(s->h.type), s->h.wire_len, cap);
			return;
		}
		if ((s->h.flags & FRAME_F_SEALED) != (p->rx.aead != SEAL_NONE ? FRAME_F_SEALED : 0)) {
			pump_abort(p, -EBADMSG, "bad frame from peer: %s frame on a%s link",
				   s->h.flags & FRAME_F_SEALED ? "sealed" : "unsealed",
				   p->rx.aead != SEAL_NONE ? " sealed" : "n insecure_transport");
			return;
		}
		p->dec_got = 0;
		p->dec_in_payload = 1;
		if (frame_wire_size(&s->h) == FRAME_HDR_LEN) {
			if (dec_frame_complete(p, s) < 0)
				return;
			goto rearm;
		}
	} else if (p->dec_got == frame_wire_size(&s->h) - FRAME_HDR_LEN) {
		if (dec_frame_complete(p, s) < 0)
			return;
	}
rearm:
	dec_pump(p);
	pump_check_done(p);
}

static void dec_send_cb(struct loop_op *op, int res)
{
	struct pump *p = container_of(op, struct pump, dec_send_op);
	struct dec_slot *s = &p->dec[p->dec_head % PUMP_SLOTS];

	if (send_done(p, &p->dec_send_busy, res, "writing to the local socket", "closed") < 0)
		return;
	stat_add(&p->rs->st.raw_out, (uint64_t)res);
	p->dec_send_off += (size_t)res;
	if (p->dec_send_off >= (size_t)s->out_len) {
		p->dec_send_off = 0;
		s->state = SLOT_FREE;
		p->dec_head++;
	}
	dec_pump(p);
	pump_check_done(p);
}

static void dec_pump(struct pump *p)
{
	int r = 0;
	struct dec_slot *s;

	if (p->dead)
		return;
	/* Deliver in order; a FIN slot turns into a half-close of the socket. */
	for (;;) {
		s = &p->dec[p->dec_head % PUMP_SLOTS];
		if (p->dec_send_busy || p->dec_head == p->dec_fill || s->state != SLOT_READY)
			break;
		if (s->fin) {
			shutdown(p->plain, SHUT_WR);
			s->fin = 0;
			s->state = SLOT_FREE;
			p->dec_head++;
			p->dec_done = 1;
			continue;
		}
		if (!s->out_len) {
			/* A page-coded chunk that rebuilt to nothing (all of
			 * it held for the next one, or the final flush). */
			s->state = SLOT_FREE;
			p->dec_head++;
			continue;
		}
		p->dec_send_busy = 1;
		p->inflight++;
		r = loop_send(p->r->lp, &p->dec_send_op, p->plain, s->out + p->dec_send_off,
			      (size_t)s->out_len - p->dec_send_off, 0);
		if (r < 0) {
			arm_failed(p, r, "send to QEMU");
			return;
		}
		break;
	}
	/* After the peer's FIN, read on into the tail slot (see struct pump)
	 * until the stream is finished or the peer closed. */
	if (p->dec_recv_busy || p->dec_tail_closed || (p->enc_done && p->dec_done))
		return;
	s = p->dec_fin_seen ? &p->tail : &p->dec[p->dec_fill % PUMP_SLOTS];
	if (p->dec_in_payload) {
		p->dec_recv_busy = 1;
		p->inflight++;
		r = loop_recv(p->r->lp, &p->dec_recv_op, p->framed, s->wire + p->dec_got,
			      frame_wire_size(&s->h) - FRAME_HDR_LEN - p->dec_got, MSG_WAITALL);
	} else if (s == &p->tail ||
		   (s->state == SLOT_FREE && p->dec_fill - p->dec_head < PUMP_SLOTS)) {
		p->dec_recv_busy = 1;
		p->inflight++;
		r = loop_recv(p->r->lp, &p->dec_recv_op, p->framed, s->hdr + p->dec_got,
			      FRAME_HDR_LEN - p->dec_got, MSG_WAITALL);
	}
	if (r < 0)
		arm_failed(p, r, "receive from the peer");
}

/* ---- start ------------------------------------------------------------- */

static void pump_start(void *arg)
{
	struct pump *p = arg;

	enc_pump(p);
	dec_pump(p);
}

static void pump_abort_post(void *arg)
{
	struct pump *p = arg;

	pump_abort(p, -ECANCELED, "%s", p->r->fail_reason[0] ? p->r->fail_reason : "aborted");
}

void relay_set_final(struct relay *r) { __atomic_store_n(&r->final, 1, __ATOMIC_RELAXED); }

int relay_new(struct loop *lp, struct workers *w, struct relay **out)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->lp = lp;
	r->w = w;
	/* For measuring what zstd adds on a given link (docs/benchmarks.md):
	 * the adaptive policy then chooses between raw and LZ4 only. Read
	 * once per migration, not per chunk. */
	r->nmodes = getenv("FERRY_RELAY_NO_ZSTD") ? CODEC_ZSTD : CODEC_NMODES;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	*out = r;
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int relay_add_stream(struct relay *r, int plain_fd, int framed_fd, uint32_t stream_id,
		     const char *label, const struct relay_stream_opts *o,
		     const struct seal_stream *keys)
{
	static const struct relay_stream_opts none = {RELAY_COMPRESS_OFF, 0, 0, QSTREAM_OPAQUE};
	struct relay_stream *rs = NULL;
	struct pump *p = NULL;
	int ret = -ENOMEM;

	if (!o)
		o = &none;

	if (set_nonblock(plain_fd) < 0 || set_nonblock(framed_fd) < 0) {
		ret = -EBADF;
		goto fail;
	}
	rs = calloc(1, sizeof(*rs));
	p = calloc(1, sizeof(*p));
	if (!rs || !p)
		goto fail;
	for (int i = 0; i < PUMP_SLOTS; i++) {
		p->enc[i].p = p;
		p->dec[i].p = p;
		p->enc[i].raw = malloc(PUMP_CHUNK);
		p->enc[i].frame = malloc(codec_frame_bound(PUMP_CHUNK) + FRAME_TAG_LEN);
		p->dec[i].wire = malloc((PUMP_CHUNK > PUMP_ABORT_REASON_MAX ? PUMP_CHUNK : PUMP_ABORT_REASON_MAX) +
					FRAME_TAG_LEN);
		p->dec[i].raw = malloc(PUMP_CHUNK);
		if (!p->enc[i].raw || !p->enc[i].frame || !p->dec[i].wire || !p->dec[i].raw)
			goto fail;
		if ((o->page_enc_slots && !(p->enc[i].coded = malloc(PUMP_CHUNK))) ||
		    (o->page_dec_slots && !(p->dec[i].pout = malloc(PUMP_CHUNK))))
			goto fail;
	}
	if (o->page_enc_slots && (ret = pagec_enc_new(&p->penc, o->chan, o->page_enc_slots)) < 0)
		goto fail;
	if (o->page_dec_slots && (ret = pagec_dec_new(&p->pdec, o->page_dec_slots)) < 0)
		goto fail;
	ret = -ENOMEM;
	p->tail.p = p;
	p->tail.wire = p->tail_wire;
	p->r = r;
	p->rs = rs;
	p->plain = plain_fd;
	p->framed = framed_fd;
	p->id = stream_id;
	p->compress = o->compress;
	if (!keys || keys->tx.stream_id != stream_id || keys->rx.stream_id != stream_id) {
		ret = -EINVAL;
		goto fail;
	}
	p->tx = keys->tx;
	p->rx = keys->rx;
	p->nmodes = r->nmodes;
	p->enc_recv_op.cb = enc_recv_cb;
	p->enc_send_op.cb = enc_send_cb;
	p->dec_recv_op.cb = dec_recv_cb;
	p->dec_send_op.cb = dec_send_cb;
	rs->st.stream_id = stream_id;
	snprintf(rs->st.label, sizeof(rs->st.label), "%s", label ? label : "");
	rs->pump = p;

	pthread_mutex_lock(&r->mu);
	if (r->n >= RELAY_MAX_STREAMS) {
		pthread_mutex_unlock(&r->mu);
		log_warn("relay", "event=stream_refused stream=%u reason=\"more than %d streams\"", stream_id,
			 RELAY_MAX_STREAMS);
		ret = -EMFILE;
		goto fail;
	}
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 8;
		struct relay_stream **ns = realloc(r->streams, nc * sizeof(*ns));

		if (!ns) {
			pthread_mutex_unlock(&r->mu);
			goto fail;
		}
		r->streams = ns;
		r->cap = nc;
	}
	r->streams[r->n++] = rs;
	r->live++;
	pthread_mutex_unlock(&r->mu);
	log_info("relay", "event=stream_started stream=%u label=%s compress=%d aead=%s page_slots_out=%u "
		 "page_slots_in=%u", stream_id, rs->st.label, o->compress, seal_aead_name(keys->tx.aead),
		 o->page_enc_slots, o->page_dec_slots);
	loop_post_must(r->lp, pump_start, p);
	return 0;
fail:
	pump_free(p);
	free(rs);
	close(plain_fd);
	close(framed_fd);
	return ret;
}

static void abort_all_fn(void *arg)
{
	struct relay *r = arg;
	struct pump *live[RELAY_MAX_STREAMS];
	size_t n = 0;

	/* Collect under the lock, abort outside it: release takes the lock.
	 * relay_add_stream keeps r->n within the array. */
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n && n < RELAY_MAX_STREAMS; i++)
		if (r->streams[i]->pump)
			live[n++] = r->streams[i]->pump;
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < n; i++)
		pump_abort_post(live[i]);
	/* Last touch of r: relay_free waits for this before freeing it. */
	pthread_mutex_lock(&r->mu);
	r->posted--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void relay_abort(struct relay *r, const char *reason)
{
	pthread_mutex_lock(&r->mu);
	if (!r->failed) {
		r->failed = 1;
		snprintf(r->fail_reason, sizeof(r->fail_reason), "%s", reason ? reason : "aborted");
	}
	/* Counted so relay_free cannot free r under a queued abort_all_fn: the
	 * streams may all be released before the loop runs it. */
	r->posted++;
	pthread_mutex_unlock(&r->mu);
	if (loop_post(r->lp, abort_all_fn, r) == -ENOMEM) { /* not queued */
		pthread_mutex_lock(&r->mu);
		r->posted--;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

int relay_wait(struct relay *r, int timeout_ms)
{
	struct timespec dl = time_cond_deadline(timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&r->mu);
	while (r->live > 0 && !r->failed) {
		if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	if (r->failed) {
		ret = -ECONNABORTED;
		for (size_t i = 0; i < r->n; i++)
			if (r->streams[i]->st.err) {
				ret = r->streams[i]->st.err;
				break;
			}
	}
	pthread_mutex_unlock(&r->mu);
	return ret;
}

int relay_failed(struct relay *r, char *reason, size_t len)
{
	int f;

	pthread_mutex_lock(&r->mu);
	f = r->failed;
	if (f && reason)
		snprintf(reason, len, "%s", r->fail_reason);
	pthread_mutex_unlock(&r->mu);
	return f;
}

size_t relay_nstreams(struct relay *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static void read_stats(const struct relay_stream_stats *in, struct relay_stream_stats *o)
{
	*o = *in;
	o->raw_in = __atomic_load_n(&in->raw_in, __ATOMIC_RELAXED);
	o->raw_out = __atomic_load_n(&in->raw_out, __ATOMIC_RELAXED);
	o->wire_in = __atomic_load_n(&in->wire_in, __ATOMIC_RELAXED);
	o->wire_out = __atomic_load_n(&in->wire_out, __ATOMIC_RELAXED);
	o->busy_ns = __atomic_load_n(&in->busy_ns, __ATOMIC_RELAXED);
	o->raw_lz4 = __atomic_load_n(&in->raw_lz4, __ATOMIC_RELAXED);
	o->raw_zstd = __atomic_load_n(&in->raw_zstd, __ATOMIC_RELAXED);
	o->pages = __atomic_load_n(&in->pages, __ATOMIC_RELAXED);
	o->pages_zero = __atomic_load_n(&in->pages_zero, __ATOMIC_RELAXED);
	o->pages_dup = __atomic_load_n(&in->pages_dup, __ATOMIC_RELAXED);
	o->pages_delta = __atomic_load_n(&in->pages_delta, __ATOMIC_RELAXED);
	o->coded = __atomic_load_n(&in->coded, __ATOMIC_RELAXED);
}

size_t relay_stats(struct relay *r, struct relay_stream_stats *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	for (size_t i = 0; i < n && i < max; i++)
		read_stats(&r->streams[i]->st, &out[i]);
	pthread_mutex_unlock(&r->mu);
	return n;
}

void relay_totals(struct relay *r, struct relay_stream_stats *sum)
{
	struct relay_stream_stats s;

	memset(sum, 0, sizeof(*sum));
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++) {
		read_stats(&r->streams[i]->st, &s);
		sum->raw_in += s.raw_in;
		sum->raw_out += s.raw_out;
		sum->wire_in += s.wire_in;
		sum->wire_out += s.wire_out;
		sum->busy_ns += s.busy_ns;
		sum->raw_lz4 += s.raw_lz4;
		sum->raw_zstd += s.raw_zstd;
		sum->pages += s.pages;
		sum->pages_zero += s.pages_zero;
		sum->pages_dup += s.pages_dup;
		sum->pages_delta += s.pages_delta;
		sum->coded += s.coded;
	}
	pthread_mutex_unlock(&r->mu);
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	int live = r->live;
	pthread_mutex_unlock(&r->mu);
	if (live > 0)
		relay_abort(r, "relay closed");
	pthread_mutex_lock(&r->mu);
	while (r->live > 0 || r->posted > 0)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		free(r->streams[i]);
	free(r->streams);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}
