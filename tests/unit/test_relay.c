/* The relay end to end, inside one process.
 *
 * Two "agents" (each its own loop and compression workers, or both on one
 * loop) run one relay each; every stream gets its own framed link between
 * them (TCP on 127.0.0.1 or a socketpair, optionally through a forwarding
 * thread that corrupts or cuts it), and the test drives the plain ends
 * through socketpairs from a single poll() loop with deadlines (no sleeps).
 *
 *   1 bulk integrity both ways, raw/LZ4/auto streams, stats consistency
 *   2 independence: a stalled stream neither blocks another nor buffers
 *     without bound
 *   3 half-close (FIN) both ways, clean finish, no fd leak
 *   4 abort propagation (idle, busy, after a half-close, racing relay_free)
 *   5 corrupted frames (payload and every header field) never delivered
 *   6 the peer or the link going away mid-stream
 *   7 1 and 3 again on the poll+syscall fallback of the loop
 *
 * FERRY_RELAY_TEST_MIB sets the bulk volume per direction (default 64);
 * FERRY_RELAY_TEST_ONLY="*abort*" runs the matching cases only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "transport/crc32c.h"
#include "transport/frame.h"
#include "transport/link.h"
#include "transport/loop.h"
#include "transport/relay.h"
#include "transport/seal.h"
#include "transport/workers.h"
#include "util/log.h"
#include "util/timeutil.h"

#define KiB 1024ull
#define MiB (1024ull * 1024ull)
#define NO_LIMIT UINT64_MAX

static uint64_t bulk_bytes = 64 * MiB;

/* ---- watchdog ------------------------------------------------------------ */

/* A hang is a failure, not a stuck CI job: every case arms alarm(). */
static const char *volatile watchdog_case = "?";

static void on_alarm(int sig)
{
	static const char m1[] = "test_relay: watchdog expired (hang) in case ";
	const char *c = watchdog_case;

	(void)sig;
	if (write(2, m1, sizeof(m1) - 1) < 0 || write(2, c, strlen(c)) < 0 || write(2, "\n", 1) < 0)
		_exit(3);
	_exit(2);
}

static void watchdog(const char *name, unsigned secs)
{
	watchdog_case = name;
	alarm(secs);
}

/* ---- data ---------------------------------------------------------------- */

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define POOL_LEN (4 * MiB)
#define SEG_MAX (256 * KiB)
static uint8_t *rand_pool, *text_pool;

static void pools_init(void)
{
	static const char *words[] = {
		"migration", "ferry", "page",   "dirty", "the",   "guest",  "of",     "qemu",
		"stream",    "and",   "bytes",  "a",     "block", "target", "source", "socket",
		"ram",       "to",    "return", "path",  "in",    "frame",  "chunk",  "\n",
	};
	uint64_t s = 0x243f6a8885a308d3ull;
	size_t i = 0;

	rand_pool = malloc(POOL_LEN);
	text_pool = malloc(POOL_LEN);
	assert_non_null(rand_pool);
	assert_non_null(text_pool);
	for (i = 0; i < POOL_LEN; i += 8) {
		uint64_t v = xs(&s);

		memcpy(rand_pool + i, &v, 8);
	}
	i = 0;
	while (i < POOL_LEN) {
		const char *w = words[xs(&s) % (sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);

		for (size_t k = 0; k < l && i < POOL_LEN; k++)
			text_pool[i++] = (uint8_t)w[k];
		if (i < POOL_LEN)
			text_pool[i++] = (xs(&s) % 7) ? ' ' : ',';
	}
}

/* A deterministic byte stream: segments of zeros, text-like and random bytes
 * of random lengths, so compressed streams see both LZ4 and raw frames. */
struct gen {
	uint64_t s;
	int kind;
	size_t left;
};

static void gen_init(struct gen *g, uint64_t seed)
{
	g->s = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	if (!g->s)
		g->s = 1;
	g->kind = 0;
	g->left = 0;
}

static void gen_fill(struct gen *g, uint8_t *buf, size_t n)
{
	while (n > 0) {
		size_t m;

		if (g->left == 0) {
			unsigned k = (unsigned)(xs(&g->s) % 100);

			g->kind = k < 25 ? 0 : k < 60 ? 1 : 2;
			g->left = 1 + (size_t)(xs(&g->s) % SEG_MAX);
		}
		m = n < g->left ? n : g->left;
		if (g->kind == 0)
			memset(buf, 0, m);
		else
			memcpy(buf, (g->kind == 1 ? text_pool : rand_pool) + xs(&g->s) % (POOL_LEN - m), m);
		buf += m;
		n -= m;
		g->left -= m;
	}
}

/* Write sizes 1 byte .. 1 MiB, log-uniform so small writes are common too. */
static size_t gen_write_size(struct gen *g)
{
	unsigned bits = (unsigned)(xs(&g->s) % 21);

	return 1 + (size_t)(xs(&g->s) % (1ull << bits));
}

/* ---- the test's side of the plain sockets ------------------------------- */

#define CHUNK_MAX (1 * MiB)
static uint8_t rbuf[1 * MiB];

/* One direction of one stream, as the test sees it: a writer on one plain end
 * and a reader on the other. */
struct flow {
	int wfd, rfd; /* -1: not driven */
	uint64_t total;  /* bytes to write; NO_LIMIT: until told otherwise */
	int shut;        /* shutdown(SHUT_WR) once total is written */
	int paused;      /* reader stopped */
	struct gen g;
	uint8_t *chunk;
	size_t clen, coff;
	uint64_t sent, recvd;
	uint32_t crc_tx, crc_rx;
	int wdone, werr, eof, rerr;
	int wblocked, rblocked;
	uint8_t *keep; /* optional copy of what was sent: received must be a prefix */
	size_t keep_cap;
	int mismatch;
};

static void flow_init(struct flow *f, int wfd, int rfd, uint64_t total, int shut, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->wfd = wfd;
	f->rfd = rfd;
	f->total = total;
	f->shut = shut;
	gen_init(&f->g, seed);
	f->chunk = malloc(CHUNK_MAX);
	assert_non_null(f->chunk);
}

static void flow_fini(struct flow *f)
{
	free(f->chunk);
	free(f->keep);
	f->chunk = f->keep = NULL;
}

static void flow_keep(struct flow *f, size_t cap)
{
	f->keep = malloc(cap);
	f->keep_cap = cap;
	assert_non_null(f->keep);
}

/* Writes until the socket is full, the flow is done, or a budget is spent
 * (so one busy flow cannot starve the others). */
static void flow_write_some(struct flow *f)
{
	size_t budget = 4 * MiB;

	f->wblocked = 0;
	while (f->wfd >= 0 && !f->wdone && budget > 0) {
		ssize_t n;

		if (f->coff == f->clen) {
			uint64_t left = f->total - f->sent;
			size_t len;

			if (left == 0) {
				f->wdone = 1;
				if (f->shut)
					shutdown(f->wfd, SHUT_WR);
				break;
			}
			len = gen_write_size(&f->g);
			if (len > left)
				len = (size_t)left;
			gen_fill(&f->g, f->chunk, len);
			f->crc_tx = crc32c(f->crc_tx, f->chunk, len);
			f->clen = len;
			f->coff = 0;
		}
		n = send(f->wfd, f->chunk + f->coff, f->clen - f->coff, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			if (f->keep) {
				assert_true(f->sent + (uint64_t)n <= f->keep_cap);
				memcpy(f->keep + f->sent, f->chunk + f->coff, (size_t)n);
			}
			f->coff += (size_t)n;
			f->sent += (uint64_t)n;
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			f->wblocked = 1;
			break;
		}
		f->werr = n < 0 ? errno : EPIPE;
		f->wdone = 1;
	}
}

static void flow_read_some(struct flow *f)
{
	size_t budget = 4 * MiB;

	f->rblocked = 0;
	while (f->rfd >= 0 && !f->eof && !f->rerr && !f->paused && budget > 0) {
		ssize_t n = recv(f->rfd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

		if (n > 0) {
			f->crc_rx = crc32c(f->crc_rx, rbuf, (size_t)n);
			if (f->keep && (f->recvd + (uint64_t)n > f->sent ||
					memcmp(f->keep + f->recvd, rbuf, (size_t)n) != 0))
				f->mismatch = 1;
			f->recvd += (uint64_t)n;
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			continue;
		}
		if (n == 0) {
			f->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			f->rblocked = 1;
			break;
		}
		f->rerr = errno;
	}
}

static int flow_reader_done(const struct flow *f)
{
	return f->rfd < 0 || f->paused || f->eof || f->rerr ||
	       (!f->shut && f->total != NO_LIMIT && f->recvd >= f->total);
}

static int all_done(struct flow *fl, int n, void *ctx)
{
	(void)ctx;
	for (int i = 0; i < n; i++)
		if (!(fl[i].wfd < 0 || fl[i].wdone) || !flow_reader_done(&fl[i]))
			return 0;
	return 1;
}

typedef int (*until_fn)(struct flow *fl, int n, void *ctx);

/* Drives the flows until until() holds (default: all done) or the deadline.
 * Waits only in poll() on the sockets that would block, capped at 20 ms so
 * conditions on relay state are re-checked. 0 or -ETIMEDOUT. */
static int run_flows(struct flow *fl, int n, int timeout_ms, until_fn until, void *ctx)
{
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;

	if (!until)
		until = all_done;
	for (;;) {
		struct pollfd pf[32];
		int np = 0;
		uint64_t now;

		for (int i = 0; i < n; i++) {
			flow_write_some(&fl[i]);
			flow_read_some(&fl[i]);
		}
		if (until(fl, n, ctx))
			return 0;
		now = time_mono_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		for (int i = 0; i < n && np < 30; i++) {
			if (fl[i].wblocked)
				pf[np++] = (struct pollfd){.fd = fl[i].wfd, .events = POLLOUT};
			if (fl[i].rblocked)
				pf[np++] = (struct pollfd){.fd = fl[i].rfd, .events = POLLIN};
		}
		if (np == 0) {
			/* Nobody would block: either a budget ran out (go on) or
			 * every flow is over and until() can never hold. */
			int any = 0;

			for (int i = 0; i < n; i++)
				any |= (!fl[i].wdone && fl[i].wfd >= 0) || !flow_reader_done(&fl[i]);
			if (!any)
				return -EDEADLK;
			continue;
		}
		poll(pf, (nfds_t)np, (int)((deadline - now) < 20 ? (deadline - now) : 20));
	}
}

/* Reads and drops until EOF or an error: 0 for EOF, -errno, or -ETIMEDOUT.
 * *dropped (optional) counts the bytes read on the way. */
static int wait_eof_count(int fd, int timeout_ms, uint64_t *dropped)
{
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		uint64_t now;

		if (n == 0)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (n > 0) {
			if (dropped)
				*dropped += (uint64_t)n;
			continue;
		}
		now = time_mono_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		poll(&pf, 1, (int)(deadline - now));
	}
}

static int wait_eof(int fd, int timeout_ms) { return wait_eof_count(fd, timeout_ms, NULL); }

/* ---- agents, links, streams --------------------------------------------- */

struct agent {
	struct loop *lp;
	struct workers *w;
	struct relay *r;
	int owns_loop;
};

static void agent_start(struct agent *a)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(loop_new(&a->lp), 0);
	assert_int_equal(workers_new(a->lp, 1, &a->w), 0);
	assert_int_equal(relay_new(a->lp, a->w, &a->r), 0);
	a->owns_loop = 1;
}

/* A second relay on another agent's loop and workers. */
static void agent_start_shared(struct agent *a, const struct agent *host)
{
	memset(a, 0, sizeof(*a));
	a->lp = host->lp;
	a->w = host->w;
	assert_int_equal(relay_new(a->lp, a->w, &a->r), 0);
}

static void agent_stop(struct agent *a)
{
	relay_free(a->r);
	if (a->owns_loop) {
		workers_free(a->w);
		loop_free(a->lp);
	}
	memset(a, 0, sizeof(*a));
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A connected TCP pair on 127.0.0.1, tuned like a peer link. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct pollfd pf;
	int lfd;

	assert_int_equal(link_listen_tcp("127.0.0.1", 0, &lfd), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(link_connect_tcp("127.0.0.1", ntohs(sin.sin_port), 2000, a), 0);
	pf = (struct pollfd){.fd = lfd, .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 2000), 1);
	*b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*b >= 0);
	link_tune_peer(*b);
	close(lfd);
}

enum link_kind { LINK_TCP, LINK_UNIX };

static void link_pair(enum link_kind k, int *a, int *b)
{
	int sv[2];

	if (k == LINK_TCP) {
		tcp_pair(a, b);
		return;
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*a = sv[0];
	*b = sv[1];
}

/* Sealed runs (g_sealed): both test agents derive the same keys from the
 * stream id, as two real agents export them from their link's TLS session. */
static int g_sealed;

static void test_keys(uint32_t id, struct seal_stream *k)
{
	memset(k, 0, sizeof(*k));
	k->tx.stream_id = k->rx.stream_id = id;
	if (!g_sealed)
		return;
	k->tx.aead = k->rx.aead = seal_cpu_has_aes() ? SEAL_AES256GCM : SEAL_CHACHA20;
	memset(k->tx.key, (int)(0x40 + id), SEAL_KEY_LEN);
	memset(k->tx.iv, (int)(0x80 + id), SEAL_IV_LEN);
	k->rx = k->tx; /* one key both ways: test agents are symmetric */
}

/* Frame bytes beyond the payload. */
static unsigned frame_overhead(void)
{
	return FRAME_HDR_LEN + (g_sealed ? FRAME_TAG_LEN : 0);
}

/* Gives the relay a stream on framed_fd; returns the test's plain end and,
 * if asked, the number of the relay's own plain fd (to look at its queue). */
/* Page-coded runs: every stream codes what it sends and decodes what it
 * gets with g_page_out / g_page_in slots (0: off). */
static uint32_t g_page_out, g_page_in;

static int add_stream_fd(struct agent *ag, int framed_fd, uint32_t id, const char *label,
			 int compress, int *relay_plain)
{
	struct relay_stream_opts o = {compress, g_page_out, g_page_in, QSTREAM_MAIN};
	struct seal_stream k;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	set_nonblock(sv[1]);
	if (relay_plain)
		*relay_plain = sv[0];
	test_keys(id, &k);
	assert_int_equal(relay_add_stream(ag->r, sv[0], framed_fd, id, label, &o, &k), 0);
	return sv[1];
}

static int add_stream(struct agent *ag, int framed_fd, uint32_t id, const char *label,
		      int compress)
{
	return add_stream_fd(ag, framed_fd, id, label, compress, NULL);
}

/* Bytes the kernel holds for a socket: unread (SIOCINQ) or, for TCP, not
 * yet acknowledged by the peer (SIOCOUTQ). */
static uint64_t sock_q(int fd, unsigned long req)
{
	int n = 0;

	assert_int_equal(ioctl(fd, req, &n), 0);
	return n > 0 ? (uint64_t)n : 0;
}

/* One stream between two agents over a direct link. */
static void open_stream(struct agent *A, struct agent *B, enum link_kind k, uint32_t id,
			const char *label, int compress, int *xa, int *xb)
{
	int fa, fb;

	link_pair(k, &fa, &fb);
	*xa = add_stream(A, fa, id, label, compress);
	*xb = add_stream(B, fb, id, label, compress);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static int wait_failed(struct relay *r, int timeout_ms, char *reason, size_t len)
{
	int ret = relay_wait(r, timeout_ms);

	reason[0] = '\0';
	relay_failed(r, reason, len);
	return ret;
}

/* ---- a forwarder between two framed sockets ------------------------------ */

enum fwd_mode { FWD_PASS, FWD_FLIP_AT, FWD_FLIP_FRAME, FWD_CUT_AT, FWD_SLOW };

struct fwd;
struct fwd_dir {
	struct fwd *f;
	int src, dst, ab;
	pthread_t th;
};

struct fwd {
	int a, b; /* a faces relay A's framed end, b relay B's */
	enum fwd_mode mode;
	uint64_t at;          /* FLIP_AT / CUT_AT: offset in the A->B byte stream */
	unsigned frame_no;    /* FLIP_FRAME: which frame (0-based) */
	unsigned frame_off;   /* ... and which byte of it (< 20: header) */
	uint8_t mask;         /* XORed into that byte */
	uint64_t rate;        /* SLOW: A->B bytes per second */
	volatile int acted;
	/* A->B frame tracking (FLIP_FRAME) */
	uint8_t hdr[FRAME_HDR_LEN];
	unsigned hdr_have, cur_frame;
	uint32_t payload_left;
	uint64_t pos;
	struct fwd_dir d[2];
};

static void fwd_inspect(struct fwd *f, uint8_t *buf, size_t n)
{
	size_t i = 0;

	if (f->mode == FWD_FLIP_AT) {
		if (!f->acted && f->at >= f->pos && f->at < f->pos + n) {
			buf[f->at - f->pos] ^= f->mask;
			f->acted = 1;
		}
		f->pos += n;
		return;
	}
	if (f->mode != FWD_FLIP_FRAME)
		return;
	while (i < n) {
		size_t take;

		if (f->hdr_have < FRAME_HDR_LEN) {
			take = FRAME_HDR_LEN - f->hdr_have;
			if (take > n - i)
				take = n - i;
			memcpy(f->hdr + f->hdr_have, buf + i, take);
			if (!f->acted && f->cur_frame == f->frame_no && f->frame_off >= f->hdr_have &&
			    f->frame_off < f->hdr_have + take) {
				buf[i + f->frame_off - f->hdr_have] ^= f->mask;
				f->acted = 1;
			}
			f->hdr_have += (unsigned)take;
			i += take;
			if (f->hdr_have == FRAME_HDR_LEN) {
				/* Parsed from the bytes as sent, before any flip. */
				f->payload_left = (uint32_t)f->hdr[8] << 24 | (uint32_t)f->hdr[9] << 16 |
						  (uint32_t)f->hdr[10] << 8 | f->hdr[11];
				if (f->hdr[3] & FRAME_F_SEALED)
					f->payload_left += FRAME_TAG_LEN;
				if (f->payload_left == 0) {
					f->cur_frame++;
					f->hdr_have = 0;
				}
			}
		} else {
			uint64_t off = FRAME_HDR_LEN + 0ull; /* offset of buf[i] in the frame */
			uint32_t wl = (uint32_t)f->hdr[8] << 24 | (uint32_t)f->hdr[9] << 16 |
				      (uint32_t)f->hdr[10] << 8 | f->hdr[11];

			if (f->hdr[3] & FRAME_F_SEALED)
				wl += FRAME_TAG_LEN; /* the tag follows the payload */

			off += wl - f->payload_left;
			take = f->payload_left;
			if (take > n - i)
				take = n - i;
			if (!f->acted && f->cur_frame == f->frame_no && f->frame_off >= off &&
			    f->frame_off < off + take) {
				buf[i + (f->frame_off - off)] ^= f->mask;
				f->acted = 1;
			}
			f->payload_left -= (uint32_t)take;
			i += take;
			if (f->payload_left == 0) {
				f->cur_frame++;
				f->hdr_have = 0;
			}
		}
	}
}

static int send_all_blocking(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *fwd_main(void *arg)
{
	struct fwd_dir *d = arg;
	struct fwd *f = d->f;
	uint8_t *buf = malloc(64 * KiB);
	uint64_t t0 = time_mono_ns(), moved = 0;

	while (buf) {
		ssize_t n = recv(d->src, buf, 64 * KiB, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (d->ab && f->mode == FWD_CUT_AT && f->pos + (uint64_t)n >= f->at) {
			/* The peer goes away mid-stream: forward up to the cut,
			 * then tear both connections down. */
			send_all_blocking(d->dst, buf, (size_t)(f->at - f->pos));
			f->acted = 1;
			shutdown(f->a, SHUT_RDWR);
			shutdown(f->b, SHUT_RDWR);
			break;
		}
		if (d->ab)
			fwd_inspect(f, buf, (size_t)n);
		if (d->ab && f->mode == FWD_CUT_AT)
			f->pos += (uint64_t)n;
		if (send_all_blocking(d->dst, buf, (size_t)n) < 0)
			break;
		if (d->ab && f->mode == FWD_SLOW) {
			/* A slow link: sleep until the bytes so far fit the rate. */
			uint64_t due = t0 + (moved += (uint64_t)n) * 1000000000ull / f->rate;
			uint64_t now = time_mono_ns();

			if (due > now)
				usleep((useconds_t)((due - now) / 1000));
		}
	}
	/* Pass the end of this direction on as a half-close, after everything
	 * read so far, and leave the other direction alone: an ABORT frame
	 * still travelling back must not be cut off by the forwarder. */
	shutdown(d->dst, SHUT_WR);
	free(buf);
	return NULL;
}

/* Creates the forwarder and returns the framed ends for relays A and B. */
static struct fwd *fwd_start(enum fwd_mode mode, int *fa, int *fb)
{
	struct fwd *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mode = mode;
	tcp_pair(fa, &f->a);
	tcp_pair(&f->b, fb);
	return f;
}

static void fwd_run(struct fwd *f)
{
	f->d[0] = (struct fwd_dir){f, f->a, f->b, 1, 0};
	f->d[1] = (struct fwd_dir){f, f->b, f->a, 0, 0};
	assert_int_equal(pthread_create(&f->d[0].th, NULL, fwd_main, &f->d[0]), 0);
	assert_int_equal(pthread_create(&f->d[1].th, NULL, fwd_main, &f->d[1]), 0);
}

static void fwd_stop(struct fwd *f)
{
	shutdown(f->a, SHUT_RDWR);
	shutdown(f->b, SHUT_RDWR);
	pthread_join(f->d[0].th, NULL);
	pthread_join(f->d[1].th, NULL);
	close(f->a);
	close(f->b);
	free(f);
}

/* ---- 1 / 7: bulk integrity both ways, compressed and not ---------------- */

static void check_stream_stats(const struct relay_stream_stats *a, const struct relay_stream_stats *b,
			       uint64_t a_to_b, uint64_t b_to_a, enum relay_compress compress)
{
	assert_int_equal(a->stream_id, b->stream_id);
	assert_true(a->done && b->done);
	assert_int_equal(a->err, 0);
	assert_int_equal(b->err, 0);
	/* What one side took in is what the other handed out, and the link
	 * lost or invented no byte. */
	assert_int_equal(a->raw_in, a_to_b);
	assert_int_equal(b->raw_out, a_to_b);
	assert_int_equal(b->raw_in, b_to_a);
	assert_int_equal(a->raw_out, b_to_a);
	assert_int_equal(a->wire_out, b->wire_in);
	assert_int_equal(b->wire_out, a->wire_in);
	if (g_page_out && compress == RELAY_COMPRESS_OFF) {
		/* Coded chunks, not compressed: the bytes and the ops. */
		assert_true(a->coded >= a->raw_in && b->coded >= b->raw_in);
	} else if (compress == RELAY_COMPRESS_OFF) {
		/* Raw frames: payload plus one header per frame, FIN included. */
		assert_true(a->wire_out >= a->raw_in + frame_overhead());
		assert_int_equal((a->wire_out - a->raw_in) % frame_overhead(), 0);
		assert_true(b->wire_out >= b->raw_in + frame_overhead());
		assert_int_equal((b->wire_out - b->raw_in) % frame_overhead(), 0);
	} else if (compress == RELAY_COMPRESS_ALWAYS || compress == RELAY_COMPRESS_ZSTD) {
		/* Most of the data is zeros and text: the codec must have paid,
		 * and it was the one asked for on every chunk above 1 KiB. */
		const struct relay_stream_stats *s[2] = {a, b};

		for (int i = 0; i < 2; i++) {
			uint64_t used = compress == RELAY_COMPRESS_ZSTD ? s[i]->raw_zstd : s[i]->raw_lz4;
			uint64_t other = compress == RELAY_COMPRESS_ZSTD ? s[i]->raw_lz4 : s[i]->raw_zstd;

			assert_true(s[i]->wire_out < s[i]->raw_in * 9 / 10);
			assert_true(used > s[i]->raw_in / 2);
			assert_int_equal(other, 0);
		}
	}
}

#define NBULK 4
static const enum relay_compress bulk_mode[NBULK] = {RELAY_COMPRESS_OFF, RELAY_COMPRESS_ALWAYS,
						     RELAY_COMPRESS_AUTO, RELAY_COMPRESS_ZSTD};

static void bulk_roundtrip(const char *tag)
{
	struct agent A, B;
	struct flow f[2 * NBULK];
	int x[NBULK][2]; /* [stream][side] */
	struct relay_stream_stats sa[NBULK], sb[NBULK], ta, tb;
	uint64_t t0, ms;
	static const char *labels[NBULK] = {"main", "multifd0", "multifd1", "multifd2"};

	agent_start(&A);
	agent_start(&B);
	for (int s = 0; s < NBULK; s++)
		open_stream(&A, &B, LINK_TCP, 1 + (uint32_t)s, labels[s], bulk_mode[s], &x[s][0], &x[s][1]);
	for (int s = 0; s < NBULK; s++) {
		flow_init(&f[2 * s], x[s][0], x[s][1], bulk_bytes, 1, 100 + 2 * (uint64_t)s);
		flow_init(&f[2 * s + 1], x[s][1], x[s][0], bulk_bytes, 1, 101 + 2 * (uint64_t)s);
	}
	t0 = time_mono_ms();
	assert_int_equal(run_flows(f, 2 * NBULK, 60000, NULL, NULL), 0);
	ms = time_mono_ms() - t0;
	for (int i = 0; i < 2 * NBULK; i++) {
		assert_int_equal(f[i].werr, 0);
		assert_int_equal(f[i].rerr, 0);
		assert_true(f[i].eof);
		assert_int_equal(f[i].sent, bulk_bytes);
		assert_int_equal(f[i].recvd, bulk_bytes);
		assert_int_equal(f[i].crc_rx, f[i].crc_tx);
	}
	assert_int_equal(relay_wait(A.r, 5000), 0);
	assert_int_equal(relay_wait(B.r, 5000), 0);
	assert_int_equal(relay_nstreams(A.r), NBULK);
	assert_int_equal(relay_stats(A.r, sa, NBULK), NBULK);
	assert_int_equal(relay_stats(B.r, sb, NBULK), NBULK);
	for (int s = 0; s < NBULK; s++)
		check_stream_stats(&sa[s], &sb[s], bulk_bytes, bulk_bytes, bulk_mode[s]);
	relay_totals(A.r, &ta);
	relay_totals(B.r, &tb);
	assert_int_equal(ta.raw_in, sa[0].raw_in + sa[1].raw_in + sa[2].raw_in + sa[3].raw_in);
	assert_int_equal(ta.raw_zstd, sa[0].raw_zstd + sa[1].raw_zstd + sa[2].raw_zstd +
				      sa[3].raw_zstd);
	assert_int_equal(ta.wire_out, tb.wire_in);
	assert_int_equal(tb.wire_out, ta.wire_in);
	assert_int_equal(ta.raw_out, tb.raw_in);
	print_message("[ info     ] %s: %d x %llu MiB in %llu ms; wire/raw: off %.4f, always %.3f, auto %.3f, zstd %.3f\n",
		      tag, 2 * NBULK, (unsigned long long)(bulk_bytes / MiB), (unsigned long long)ms,
		      (double)sa[0].wire_out / (double)sa[0].raw_in,
		      (double)sa[1].wire_out / (double)sa[1].raw_in,
		      (double)sa[2].wire_out / (double)sa[2].raw_in,
		      (double)sa[3].wire_out / (double)sa[3].raw_in);
	for (int i = 0; i < 2 * NBULK; i++)
		flow_fini(&f[i]);
	for (int s = 0; s < NBULK; s++) {
		close(x[s][0]);
		close(x[s][1]);
	}
	agent_stop(&A);
	agent_stop(&B);
}

static void test_bulk_integrity(void **state)
{
	(void)state;
	watchdog("bulk_integrity", 90);
	bulk_roundtrip("io_uring");
	alarm(0);
}

/* The same with every frame sealed: the bytes arrive exact, and the
 * codecs still pay (sealing comes after compression). */
static void test_bulk_integrity_sealed(void **state)
{
	(void)state;
	watchdog("bulk_integrity_sealed", 120);
	g_sealed = 1;
	bulk_roundtrip("io_uring sealed");
	g_sealed = 0;
	alarm(0);
}

/* Page coding on every stream, both ways, sealed: the bytes (not a QEMU
 * stream: the coder passes them as literal bytes) arrive exact with every
 * codec, the coded chunks go in order through one job at a time, and the
 * end of the stream flushes the coder before its FIN. */
static void test_bulk_integrity_pages(void **state)
{
	(void)state;
	watchdog("bulk_integrity_pages", 120);
	g_sealed = 1;
	g_page_out = g_page_in = 64;
	bulk_roundtrip("io_uring sealed page-coded");
	g_page_out = g_page_in = 0;
	g_sealed = 0;
	alarm(0);
}

/* A receiver that expects page-coded frames refuses plain ones, and one
 * that does not expect them refuses coded ones: the two ends disagree
 * about what the bytes mean, so the stream must end, naming why. */
static void test_page_coding_mismatch(void **state)
{
	for (int dir = 0; dir < 2; dir++) {
		struct agent A, B;
		struct flow f;
		int xa, xb, fa, fb;
		char reason[512];

		(void)state;
		watchdog("page_coding_mismatch", 30);
		agent_start(&A);
		agent_start(&B);
		link_pair(LINK_TCP, &fa, &fb);
		g_page_out = dir ? 64 : 0;
		xa = add_stream(&A, fa, 1, "main", RELAY_COMPRESS_OFF);
		g_page_out = 0;
		g_page_in = dir ? 0 : 64;
		xb = add_stream(&B, fb, 1, "main", RELAY_COMPRESS_OFF);
		g_page_in = 0;
		flow_init(&f, xa, xb, 1 * MiB, 1, 7);
		(void)run_flows(&f, 1, 5000, NULL, NULL);
		assert_true(wait_failed(B.r, 3000, reason, sizeof(reason)) < 0);
		print_message("[ info     ] receiver: %s\n", reason);
		assert_non_null(strstr(reason, dir ? "did not negotiate page coding"
						   : "without page coding"));
		flow_fini(&f);
		close(xa);
		close(xb);
		agent_stop(&A);
		agent_stop(&B);
	}
	alarm(0);
}

/* ---- 2: independence and backpressure ----------------------------------- */

static int stream_b_arrived(struct flow *fl, int n, void *ctx)
{
	(void)n;
	(void)ctx;
	return fl[1].recvd >= fl[1].total;
}

static void test_independence(void **state)
{
	struct agent A, B;
	struct flow f[4];
	int xa1, xb1, xa2, xb2, fa, fb, pa, buf = 256 * 1024;
	uint64_t stalled_sent, in_kernel, in_relays, t0, ms;
	struct pollfd pf;

	(void)state;
	watchdog("independence", 60);
	agent_start(&A);
	agent_start(&B);
	/* The stalled stream: raw frames, so the bytes in the kernel can be
	 * told apart from the bytes in the relays below; its link has modest
	 * socket buffers (as link.h intends for peer links; the kernel's
	 * autotuning would otherwise let loopback TCP hold ~8 MiB). */
	tcp_pair(&fa, &fb);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(setsockopt(i ? fb : fa, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), 0);
		assert_int_equal(setsockopt(i ? fb : fa, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)), 0);
	}
	xa1 = add_stream_fd(&A, fa, 1, "stalled", RELAY_COMPRESS_OFF, &pa);
	xb1 = add_stream(&B, fb, 1, "stalled", RELAY_COMPRESS_OFF);
	open_stream(&A, &B, LINK_TCP, 2, "busy", RELAY_COMPRESS_ALWAYS, &xa2, &xb2);
	/* f[0]: A's writer never stops, its reader never reads.
	 * f[1]: 32 MiB on the other stream must get through regardless. */
	flow_init(&f[0], xa1, xb1, NO_LIMIT, 1, 7);
	f[0].paused = 1;
	flow_init(&f[1], xa2, xb2, 32 * MiB, 1, 8);
	t0 = time_mono_ms();
	assert_int_equal(run_flows(f, 2, 10000, stream_b_arrived, NULL), 0);
	ms = time_mono_ms() - t0;
	assert_int_equal(f[1].crc_rx, f[1].crc_tx);

	/* The stalled stream's writer blocks eventually, and stays blocked
	 * (no room for 300 ms): backpressure reached it instead of bytes
	 * piling up somewhere. */
	t0 = time_mono_ms();
	for (;;) {
		flow_write_some(&f[0]);
		assert_false(f[0].wdone);
		pf = (struct pollfd){.fd = xa1, .events = POLLOUT};
		if (f[0].wblocked && poll(&pf, 1, 300) == 0)
			break;
		assert_true(time_mono_ms() - t0 < 5000);
	}
	stalled_sent = f[0].sent;
	/* Where the stalled bytes are: socket queues along the path (test ->
	 * relay A's plain socket, the TCP link, relay B -> test), and the rest
	 * in the relays' own slots, at most PUMP_SLOTS x PUMP_CHUNK = 512 KiB
	 * per direction per side plus 20-byte frame headers. */
	in_kernel = sock_q(pa, SIOCINQ) + sock_q(fa, SIOCOUTQ) + sock_q(fb, SIOCINQ) +
		    sock_q(xb1, SIOCINQ);
	assert_true(in_kernel <= stalled_sent);
	in_relays = stalled_sent - in_kernel;
	print_message("[ info     ] 32 MiB beside a stalled stream in %llu ms; the stalled stream holds %llu KiB (%llu KiB in the relays)\n",
		      (unsigned long long)ms, (unsigned long long)(stalled_sent / KiB),
		      (unsigned long long)(in_relays / KiB));
	assert_int_equal(f[0].recvd, 0);
	assert_true(stalled_sent > 256 * KiB); /* it did flow until the buffers filled */
	assert_true(stalled_sent < 4 * MiB);   /* ... and those buffers are bounded */
	assert_true(in_relays <= 2 * 512 * KiB);
	assert_false(relay_failed(A.r, NULL, 0));
	assert_false(relay_failed(B.r, NULL, 0));

	/* Unstall: everything A's writer managed must arrive intact, then both
	 * streams close in both directions and finish cleanly. */
	f[0].paused = 0;
	f[0].total = f[0].sent + (f[0].clen - f[0].coff);
	flow_init(&f[2], xb1, xa1, 0, 1, 9);
	flow_init(&f[3], xb2, xa2, 0, 1, 10);
	assert_int_equal(run_flows(f, 4, 10000, NULL, NULL), 0);
	for (int i = 0; i < 4; i++) {
		assert_true(f[i].eof);
		assert_int_equal(f[i].recvd, f[i].sent);
		assert_int_equal(f[i].crc_rx, f[i].crc_tx);
	}
	assert_int_equal(relay_wait(A.r, 5000), 0);
	assert_int_equal(relay_wait(B.r, 5000), 0);
	for (int i = 0; i < 4; i++)
		flow_fini(&f[i]);
	close(xa1);
	close(xb1);
	close(xa2);
	close(xb2);
	agent_stop(&A);
	agent_stop(&B);
	alarm(0);
}

/* ---- 3 / 7: half-close -------------------------------------------------- */

static void half_close(const char *tag, int shared_loop, enum link_kind lk)
{
	struct agent A, B;
	struct flow f[2];
	struct relay_stream_stats sa, sb;
	char reason[512];
	int fd0 = count_fds(), xa, xb;

	agent_start(&A);
	if (shared_loop)
		agent_start_shared(&B, &A);
	else
		agent_start(&B);
	open_stream(&A, &B, lk, 5, "halfclose", RELAY_COMPRESS_ALWAYS, &xa, &xb);

	/* A -> B, then A shuts its write half: B reads everything, then EOF. */
	flow_init(&f[0], xa, xb, 3 * MiB + 17, 1, 21);
	assert_int_equal(run_flows(f, 1, 10000, NULL, NULL), 0);
	assert_true(f[0].eof);
	assert_int_equal(f[0].recvd, f[0].sent);
	assert_int_equal(f[0].crc_rx, f[0].crc_tx);
	/* Half a stream is not a finished stream. */
	assert_int_equal(relay_wait(A.r, 50), -ETIMEDOUT);
	assert_int_equal(relay_wait(B.r, 50), -ETIMEDOUT);
	assert_false(relay_failed(A.r, reason, sizeof(reason)));
	assert_false(relay_failed(B.r, reason, sizeof(reason)));

	/* The reverse direction still works, after the FIN went the other way. */
	flow_init(&f[1], xb, xa, 5 * MiB + 3, 0, 22);
	assert_int_equal(run_flows(&f[1], 1, 10000, NULL, NULL), 0);
	assert_int_equal(f[1].crc_rx, f[1].crc_tx);
	assert_false(f[1].eof);
	/* ... and closes the same way. */
	shutdown(xb, SHUT_WR);
	assert_int_equal(wait_eof(xa, 5000), 0);
	assert_int_equal(relay_wait(A.r, 5000), 0);
	assert_int_equal(relay_wait(B.r, 5000), 0);
	assert_false(relay_failed(A.r, reason, sizeof(reason)));

	/* Finished means the relays let go of their sockets. */
	assert_int_equal(send(xa, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(send(xb, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(relay_stats(A.r, &sa, 1), 1);
	assert_int_equal(relay_stats(B.r, &sb, 1), 1);
	check_stream_stats(&sa, &sb, f[0].sent, f[1].sent, RELAY_COMPRESS_ALWAYS);
	print_message("[ info     ] %s: half-close ok\n", tag);
	flow_fini(&f[0]);
	flow_fini(&f[1]);
	close(xa);
	close(xb);
	agent_stop(&B);
	agent_stop(&A);
	assert_int_equal(count_fds(), fd0);
}

static void test_half_close(void **state)
{
	(void)state;
	watchdog("half_close", 30);
	half_close("io_uring, shared loop, unix link", 1, LINK_UNIX);
	half_close("io_uring, two loops, tcp link", 0, LINK_TCP);
	alarm(0);
}

/* ---- 4: abort ----------------------------------------------------------- */

static void check_peer_abort(struct agent *A, struct agent *B, const char *why, int require_reason)
{
	char reason[512];
	int r;

	/* The aborting side fails with its own reason ... */
	r = wait_failed(A->r, 3000, reason, sizeof(reason));
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, why));
	/* ... and the peer learns promptly. */
	r = wait_failed(B->r, 3000, reason, sizeof(reason));
	print_message("[ info     ] peer of the aborting side: ret=%d reason=\"%s\"\n", r, reason);
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_true(reason[0] != '\0');
	if (require_reason) {
		assert_non_null(strstr(reason, "peer aborted"));
		assert_non_null(strstr(reason, why));
	}
}

static int both_got(struct flow *fl, int n, void *ctx)
{
	for (int i = 0; i < n; i++)
		if (fl[i].recvd < *(uint64_t *)ctx)
			return 0;
	return 1;
}

static int readers_finished(struct flow *fl, int n, void *ctx)
{
	(void)ctx;
	for (int i = 0; i < n; i++)
		if (!(fl[i].eof || fl[i].rerr) || !fl[i].wdone)
			return 0;
	return 1;
}

static void test_abort(void **state)
{
	struct agent A, B;
	struct flow f[2];
	int xa, xb, r, fd0 = count_fds();

	(void)state;
	watchdog("abort", 40);

	/* (a) Between bursts: the ABORT frame goes out and carries the reason. */
	agent_start(&A);
	agent_start(&B);
	open_stream(&A, &B, LINK_TCP, 3, "aborted", RELAY_COMPRESS_ALWAYS, &xa, &xb);
	flow_init(&f[0], xa, xb, 1 * MiB, 0, 31);
	flow_init(&f[1], xb, xa, 1 * MiB, 0, 32);
	assert_int_equal(run_flows(f, 2, 5000, NULL, NULL), 0);
	relay_abort(A.r, "operator cancelled (idle)");
	relay_abort(A.r, "second abort is a no-op");
	check_peer_abort(&A, &B, "operator cancelled (idle)", 1);
	r = wait_eof(xa, 2000);
	assert_true(r == 0 || r == -ECONNRESET || r == -EPIPE);
	r = wait_eof(xb, 2000);
	assert_true(r == 0 || r == -ECONNRESET || r == -EPIPE);
	flow_fini(&f[0]);
	flow_fini(&f[1]);
	close(xa);
	close(xb);
	agent_stop(&A);
	agent_stop(&B);

	/* (b) Under load, both ways: both ends see EOF or an error promptly,
	 * the peer fails, nothing hangs. The reason itself is best effort here
	 * (relay.h): the ABORT frame is skipped while a frame is half-sent, and
	 * closing a socket with unread bytes resets the connection, so the peer
	 * may only see the reset. */
	agent_start(&A);
	agent_start(&B);
	open_stream(&A, &B, LINK_TCP, 4, "aborted-busy", RELAY_COMPRESS_ALWAYS, &xa, &xb);
	flow_init(&f[0], xa, xb, NO_LIMIT, 0, 33);
	flow_init(&f[1], xb, xa, NO_LIMIT, 0, 34);
	assert_int_equal(run_flows(f, 2, 10000, both_got, &(uint64_t){8 * MiB}), 0);
	relay_abort(A.r, "operator cancelled (busy)");
	assert_int_equal(run_flows(f, 2, 5000, readers_finished, NULL), 0);
	check_peer_abort(&A, &B, "operator cancelled (busy)", 0);
	flow_fini(&f[0]);
	flow_fini(&f[1]);
	close(xa);
	close(xb);
	/* relay_free right after relay_abort, with streams possibly live. */
	agent_stop(&A);
	agent_stop(&B);

	/* (c) After a half-close: A's side already sent its FIN, the reverse
	 * direction is open and idle. The peer must still learn. */
	agent_start(&A);
	agent_start(&B);
	open_stream(&A, &B, LINK_TCP, 5, "aborted-half", RELAY_COMPRESS_OFF, &xa, &xb);
	flow_init(&f[0], xa, xb, 100 * KiB, 1, 35);
	assert_int_equal(run_flows(f, 1, 5000, NULL, NULL), 0);
	assert_true(f[0].eof);
	relay_abort(A.r, "operator cancelled (half-closed)");
	check_peer_abort(&A, &B, "operator cancelled (half-closed)", 1);
	r = wait_eof(xa, 2000);
	assert_true(r == 0 || r == -ECONNRESET || r == -EPIPE);
	flow_fini(&f[0]);
	close(xa);
	close(xb);
	agent_stop(&A);
	agent_stop(&B);

	/* (d) relay_abort and relay_free back to back, streams live: each queues
	 * an abort on the loop, and the relay must outlive both. Repeated, as
	 * the window is small. */
	agent_start(&A);
	agent_start(&B);
	for (int i = 0; i < 20; i++) {
		struct relay *ra, *rb;
		int fa, fb;

		assert_int_equal(relay_new(A.lp, A.w, &ra), 0);
		assert_int_equal(relay_new(B.lp, B.w, &rb), 0);
		link_pair(i % 2 ? LINK_TCP : LINK_UNIX, &fa, &fb);
		xa = add_stream(&(struct agent){.r = ra}, fa, 10, "racing", RELAY_COMPRESS_ALWAYS);
		xb = add_stream(&(struct agent){.r = rb}, fb, 10, "racing", RELAY_COMPRESS_ALWAYS);
		if (i % 3 == 0)
			assert_int_equal(send(xa, rbuf, 64 * 1024, MSG_DONTWAIT | MSG_NOSIGNAL), 64 * 1024);
		relay_abort(ra, "racing abort");
		relay_free(ra);
		r = wait_failed(rb, 3000, (char[512]){0}, 512);
		assert_true(r < 0 && r != -ETIMEDOUT);
		relay_free(rb);
		close(xa);
		close(xb);
	}
	agent_stop(&A);
	agent_stop(&B);

	/* (e) relay_free with live streams and no prior abort. */
	agent_start(&A);
	agent_start(&B);
	open_stream(&A, &B, LINK_UNIX, 6, "freed", RELAY_COMPRESS_AUTO, &xa, &xb);
	agent_stop(&A);
	r = wait_failed(B.r, 3000, (char[512]){0}, 512);
	assert_true(r < 0 && r != -ETIMEDOUT);
	close(xa);
	close(xb);
	agent_stop(&B);
	assert_int_equal(count_fds(), fd0);
	alarm(0);
}

/* ---- 5: corrupted frames ------------------------------------------------ */

struct corruption {
	const char *name;
	enum relay_compress compress;
	enum fwd_mode mode;
	uint64_t at;
	unsigned frame_no, frame_off;
	uint8_t mask;
};

static void corrupt_one(const struct corruption *c)
{
	struct agent A, B;
	struct flow f[1];
	struct fwd *fw;
	char reason[512];
	int fa, fb, xa, xb, r;
	uint64_t total = 6 * MiB;

	agent_start(&A);
	agent_start(&B);
	fw = fwd_start(c->mode, &fa, &fb);
	fw->at = c->at;
	fw->frame_no = c->frame_no;
	fw->frame_off = c->frame_off;
	fw->mask = c->mask;
	fwd_run(fw);
	xa = add_stream(&A, fa, 9, "corrupted", c->compress);
	xb = add_stream(&B, fb, 9, "corrupted", c->compress);
	flow_init(&f[0], xa, xb, total, 1, 51);
	flow_keep(&f[0], total);
	r = run_flows(f, 1, 10000, readers_finished, NULL);
	assert_int_equal(r, 0);
	assert_true(fw->acted);
	/* Whatever reached the plain end is exactly what was sent, no more. */
	assert_false(f[0].mismatch);
	assert_true(f[0].recvd < total);
	r = wait_failed(B.r, 3000, reason, sizeof(reason));
	print_message("[ info     ] %-28s receiver: ret=%d delivered=%llu reason=\"%s\"\n", c->name, r,
		      (unsigned long long)f[0].recvd, reason);
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, "bad frame"));
	/* The sender is told why (the ABORT travels the clean direction). */
	r = wait_failed(A.r, 3000, reason, sizeof(reason));
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, "bad frame"));
	flow_fini(&f[0]);
	close(xa);
	close(xb);
	agent_stop(&A);
	agent_stop(&B);
	fwd_stop(fw);
}

static void test_corrupted_frame(void **state)
{
	static const struct corruption cases[] = {
#define OFF RELAY_COMPRESS_OFF
#define LZ4 RELAY_COMPRESS_ALWAYS
#define ZSTD RELAY_COMPRESS_ZSTD
		{"payload, raw stream", OFF, FWD_FLIP_AT, 3 * MiB + 777, 0, 0, 0x10},
		{"payload, lz4 stream", LZ4, FWD_FLIP_AT, 2 * MiB + 12345, 0, 0, 0x01},
		{"header version", OFF, FWD_FLIP_FRAME, 0, 3, 0, 0x01},
		{"header type DATA->FIN", OFF, FWD_FLIP_FRAME, 0, 3, 1, 0x03},
		{"header type DATA->ABORT", OFF, FWD_FLIP_FRAME, 0, 3, 1, 0x02},
		{"header type DATA->PING", OFF, FWD_FLIP_FRAME, 0, 3, 1, 0x07},
		{"header type DATA->PING lz4", LZ4, FWD_FLIP_FRAME, 0, 5, 1, 0x07},
		{"header flags (LZ4 bit)", LZ4, FWD_FLIP_FRAME, 0, 4, 3, 0x01},
		{"header stream id", OFF, FWD_FLIP_FRAME, 0, 3, 7, 0x01},
		{"header wire_len, lz4", LZ4, FWD_FLIP_FRAME, 0, 6, 10, 0x01},
		{"header raw_len, lz4", LZ4, FWD_FLIP_FRAME, 0, 6, 13, 0x04},
		{"header crc", OFF, FWD_FLIP_FRAME, 0, 3, 17, 0x80},
		{"payload byte 0 of frame 2", LZ4, FWD_FLIP_FRAME, 0, 2, FRAME_HDR_LEN, 0x40},
		{"payload, zstd stream", ZSTD, FWD_FLIP_AT, 2 * MiB + 4321, 0, 0, 0x08},
		{"header flags ZSTD->LZ4+ZSTD", ZSTD, FWD_FLIP_FRAME, 0, 6, 3, 0x01},
		{"header raw_len, zstd", ZSTD, FWD_FLIP_FRAME, 0, 6, 13, 0x04},
		{"zstd magic of frame 6", ZSTD, FWD_FLIP_FRAME, 0, 6, FRAME_HDR_LEN, 0x40},
#undef ZSTD
#undef OFF
#undef LZ4
	};

	int fd0 = count_fds();

	(void)state;
	watchdog("corrupted_frame", 120);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		corrupt_one(&cases[i]);
	/* A man in the middle who rewrites the CRC gains nothing on a sealed
	 * link: any flipped bit of header, payload or tag fails the AEAD. */
	g_sealed = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		corrupt_one(&cases[i]);
	g_sealed = 0;
	assert_int_equal(count_fds(), fd0);
	alarm(0);
}

/* ---- adaptive compression over a slow link ------------------------------ */

/* A link at 16 MB/s is the bottleneck: the AUTO policy must measure all three
 * modes and end up compressing most of the stream, zstd included; and the
 * bytes arrive exact. */
static void test_adaptive_slow_link(void **state)
{
	struct agent A, B;
	struct flow f[1];
	struct fwd *fw;
	struct relay_stream_stats sa;
	int fa, fb, xa, xb;
	uint64_t total = 48 * MiB, t0, ms;

	(void)state;
	watchdog("adaptive_slow_link", 60);
	agent_start(&A);
	agent_start(&B);
	fw = fwd_start(FWD_SLOW, &fa, &fb);
	fw->rate = 16 * 1000 * 1000;
	fwd_run(fw);
	xa = add_stream(&A, fa, 11, "slow", RELAY_COMPRESS_AUTO);
	xb = add_stream(&B, fb, 11, "slow", RELAY_COMPRESS_AUTO);
	flow_init(&f[0], xa, xb, total, 1, 77);
	t0 = time_mono_ms();
	assert_int_equal(run_flows(f, 1, 50000, NULL, NULL), 0);
	ms = time_mono_ms() - t0;
	assert_int_equal(f[0].werr, 0);
	assert_int_equal(f[0].rerr, 0);
	assert_int_equal(f[0].recvd, total);
	assert_int_equal(f[0].crc_rx, f[0].crc_tx);
	shutdown(xb, SHUT_WR);
	assert_int_equal(relay_stats(A.r, &sa, 1), 1);
	print_message("[ info     ] 48 MiB over a 16 MB/s link in %llu ms: wire/raw %.3f, "
		      "lz4 %.0f%%, zstd %.0f%% of the guest bytes\n",
		      (unsigned long long)ms, (double)sa.wire_out / (double)sa.raw_in,
		      100.0 * (double)sa.raw_lz4 / (double)sa.raw_in,
		      100.0 * (double)sa.raw_zstd / (double)sa.raw_in);
	assert_true(sa.raw_zstd > 0); /* measured at least once */
	assert_true(sa.raw_lz4 + sa.raw_zstd > sa.raw_in / 2);
	assert_true(sa.wire_out < sa.raw_in * 9 / 10);
	flow_fini(&f[0]);
	close(xa);
	close(xb);
	agent_stop(&A);
	agent_stop(&B);
	fwd_stop(fw);
	alarm(0);
}

/* ---- 6: the peer goes away ---------------------------------------------- */

static void test_peer_closes(void **state)
{
	struct agent A, B;
	struct flow f[2];
	struct fwd *fw;
	char reason[512];
	int fa, fb, xa, xb, r, fr;
	uint64_t dropped;
	uint8_t hdr[FRAME_HDR_LEN + 500];
	struct frame_hdr h = {FRAME_VERSION, FRAME_DATA, 0, 7, 1000, 1000, 0};
	int fd0 = count_fds();

	(void)state;
	watchdog("peer_closes", 40);

	/* (a) The link dies mid-stream, both directions busy. */
	agent_start(&A);
	agent_start(&B);
	fw = fwd_start(FWD_CUT_AT, &fa, &fb);
	fw->at = 5 * MiB + 333;
	fwd_run(fw);
	xa = add_stream(&A, fa, 7, "cut", RELAY_COMPRESS_ALWAYS);
	xb = add_stream(&B, fb, 7, "cut", RELAY_COMPRESS_ALWAYS);
	flow_init(&f[0], xa, xb, NO_LIMIT, 0, 61);
	flow_init(&f[1], xb, xa, NO_LIMIT, 0, 62);
	assert_int_equal(run_flows(f, 2, 10000, readers_finished, NULL), 0);
	assert_true(fw->acted);
	r = wait_failed(A.r, 3000, reason, sizeof(reason));
	print_message("[ info     ] link cut: A ret=%d reason=\"%s\"\n", r, reason);
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, "peer"));
	r = wait_failed(B.r, 3000, reason, sizeof(reason));
	print_message("[ info     ] link cut: B ret=%d reason=\"%s\"\n", r, reason);
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, "peer"));
	flow_fini(&f[0]);
	flow_fini(&f[1]);
	close(xa);
	close(xb);
	agent_stop(&A);
	agent_stop(&B);
	fwd_stop(fw);

	/* (b) A raw peer sends half a frame and closes. */
	agent_start(&A);
	link_pair(LINK_TCP, &fa, &fr);
	xa = add_stream(&A, fa, 7, "half-frame", RELAY_COMPRESS_OFF);
	frame_hdr_encode(&h, hdr);
	memset(hdr + FRAME_HDR_LEN, 'z', 500);
	assert_int_equal(link_send_all(fr, hdr, sizeof(hdr), 2000), 0);
	close(fr);
	r = wait_failed(A.r, 3000, reason, sizeof(reason));
	print_message("[ info     ] half a frame: ret=%d reason=\"%s\"\n", r, reason);
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, "middle of a frame"));
	/* The partial frame was never delivered. */
	dropped = 0;
	r = wait_eof_count(xa, 2000, &dropped);
	assert_true(r == 0 || r == -ECONNRESET);
	assert_int_equal(dropped, 0);
	close(xa);
	agent_stop(&A);

	/* (c) A raw peer closes at a frame boundary without a FIN. */
	agent_start(&A);
	link_pair(LINK_UNIX, &fa, &fr);
	xa = add_stream(&A, fa, 8, "no-fin", RELAY_COMPRESS_OFF);
	close(fr);
	r = wait_failed(A.r, 3000, reason, sizeof(reason));
	print_message("[ info     ] no FIN: ret=%d reason=\"%s\"\n", r, reason);
	assert_true(r < 0 && r != -ETIMEDOUT);
	assert_non_null(strstr(reason, "without finishing"));
	r = wait_eof(xa, 2000);
	assert_true(r == 0 || r == -ECONNRESET);
	close(xa);
	agent_stop(&A);
	assert_int_equal(count_fds(), fd0);
	alarm(0);
}

/* ---- 7: the poll+syscall fallback --------------------------------------- */

static void test_fallback(void **state)
{
	struct loop *lp;
	const struct loop_features *ft;

	(void)state;
	watchdog("fallback", 90);
	assert_int_equal(setenv("FERRY_URING_FALLBACK", "1", 1), 0);
	assert_int_equal(loop_new(&lp), 0);
	ft = loop_features(lp);
	assert_false(ft->native_recv);
	assert_false(ft->native_send);
	assert_false(ft->native_accept);
	assert_false(ft->multishot_accept);
	loop_free(lp);
	bulk_roundtrip("fallback");
	half_close("fallback, shared loop, tcp link", 1, LINK_TCP);
	half_close("fallback, two loops, unix link", 0, LINK_UNIX);
	unsetenv("FERRY_URING_FALLBACK");
	alarm(0);
}

/* Regression: a relay with more than 256 streams used to overflow the
 * abort's fixed list and hang relay_free. Now the stream past the cap is
 * refused (its sockets closed), and abort and free of a full relay end. */
static void test_stream_cap(void **state)
{
	struct agent A;
	int keep[RELAY_MAX_STREAMS][2], fd0 = count_fds(), sv[2], tv[2];
	struct seal_stream k;

	(void)state;
	watchdog("stream_cap", 40);
	agent_start(&A);
	for (int i = 0; i < RELAY_MAX_STREAMS; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tv), 0);
		test_keys((uint32_t)i + 1, &k);
		assert_int_equal(relay_add_stream(A.r, sv[0], tv[0], (uint32_t)i + 1, "s", NULL, &k), 0);
		keep[i][0] = sv[1];
		keep[i][1] = tv[1];
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tv), 0);
	test_keys(9999, &k);
	assert_int_equal(relay_add_stream(A.r, sv[0], tv[0], 9999, "over", NULL, &k), -EMFILE);
	/* the refused stream's sockets are closed: our ends see EOF */
	assert_int_equal(wait_eof(sv[1], 2000), 0);
	close(sv[1]);
	close(tv[1]);
	relay_abort(A.r, "cap test");
	agent_stop(&A);
	for (int i = 0; i < RELAY_MAX_STREAMS; i++) {
		close(keep[i][0]);
		close(keep[i][1]);
	}
	assert_int_equal(count_fds(), fd0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bulk_integrity),
		cmocka_unit_test(test_bulk_integrity_sealed),
		cmocka_unit_test(test_bulk_integrity_pages),
		cmocka_unit_test(test_page_coding_mismatch),
		cmocka_unit_test(test_independence),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_corrupted_frame),
		cmocka_unit_test(test_adaptive_slow_link),
		cmocka_unit_test(test_peer_closes),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_stream_cap),
	};
	const char *mib = getenv("FERRY_RELAY_TEST_MIB");
	const char *only = getenv("FERRY_RELAY_TEST_ONLY"); /* cmocka pattern, e.g. "*abort*" */

	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	if (!getenv("FERRY_LOG"))
		log_set_level(LOG_ERROR);
	if (mib && atoi(mib) > 0)
		bulk_bytes = (uint64_t)atoi(mib) * MiB;
	unsetenv("FERRY_URING_FALLBACK");
	pools_init();
	if (only)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
