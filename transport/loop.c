#include "transport/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

enum { FB_NONE, FB_RECV, FB_SEND, FB_ACCEPT };

struct posted {
	void (*fn)(void *);
	void *arg;
	struct posted *next;
};

struct loop {
	struct io_uring ring;
	struct loop_features feat;
	int force_fallback;
	pthread_t thread;
	int started_ok, start_err;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	uint64_t efd_val;
	struct loop_op efd_op;
	struct posted *head, *tail;
	int stopping;
};

static __thread struct loop *t_current;

static struct io_uring_sqe *get_sqe(struct loop *lp)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&lp->ring);

	if (!sqe) {
		/* Ring full: flush what we have and take a fresh slot. */
		io_uring_submit(&lp->ring);
		sqe = io_uring_get_sqe(&lp->ring);
	}
	return sqe;
}

/* Fallback: wait for readiness with POLL_ADD, then do the syscall. */
static int fallback_arm(struct loop *lp, struct loop_op *op, short events)
{
	struct io_uring_sqe *sqe = get_sqe(lp);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, op->fb_fd, events);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

static int fallback_complete(struct loop *lp, struct loop_op *op, int res)
{
	ssize_t n;

	if (res < 0)
		return res;
	switch (op->fb_kind) {
	case FB_RECV:
		n = recv(op->fb_fd, op->fb_buf, op->fb_len, op->fb_flags | MSG_DONTWAIT);
		break;
	case FB_SEND:
		n = send(op->fb_fd, op->fb_buf, op->fb_len,
			 op->fb_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case FB_ACCEPT:
		n = accept4(op->fb_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		/* Spurious readiness: wait again, report nothing yet. */
		short ev = op->fb_kind == FB_SEND ? POLLOUT : POLLIN;
		int r = fallback_arm(lp, op, ev);
		return r < 0 ? r : INT32_MIN;
	}
	return n < 0 ? -errno : (int)n;
}

static void dispatch(struct loop *lp, struct io_uring_cqe *cqe)
{
	struct loop_op *op = io_uring_cqe_get_data(cqe);
	int res = cqe->res;

	if (!op)
		return; /* cancel requests carry no op */
	if (op->fb_kind != FB_NONE) {
		int kind = op->fb_kind;

		res = fallback_complete(lp, op, res);
		if (res == INT32_MIN)
			return;
		if (kind == FB_ACCEPT && res >= 0 && op->multishot) {
			/* Keep accepting: re-arm before handing the fd over. */
			fallback_arm(lp, op, POLLIN);
		} else {
			op->fb_kind = FB_NONE;
		}
		op->cb(op, res);
		return;
	}
	if (op->multishot && res >= 0 && !(cqe->flags & IORING_CQE_F_MORE)) {
		/* The kernel ended a multishot accept: deliver, then re-arm. */
		int r;

		op->cb(op, res);
		r = loop_accept(lp, op, op->fb_fd);
		if (r < 0)
			op->cb(op, r); /* the listener's owner learns it stopped */
		return;
	}
	op->cb(op, res);
}

static void drain_posted(struct loop *lp)
{
	struct posted *p;

	for (;;) {
		pthread_mutex_lock(&lp->mu);
		p = lp->head;
		if (p) {
			lp->head = p->next;
			if (!lp->head)
				lp->tail = NULL;
		}
		pthread_mutex_unlock(&lp->mu);
		if (!p)
			break;
		p->fn(p->arg);
		free(p);
	}
}

static void efd_cb(struct loop_op *op, int res)
{
	struct loop *lp = t_current;
	struct io_uring_sqe *sqe;

	(void)op;
	(void)res;
	drain_posted(lp);
	if (lp->stopping)
		return;
	sqe = get_sqe(lp);
	if (sqe) {
		io_uring_prep_read(sqe, lp->efd, &lp->efd_val, sizeof(lp->efd_val), 0);
		io_uring_sqe_set_data(sqe, &lp->efd_op);
	}
}

static void probe(struct loop *lp)
{
	struct io_uring_probe *pr = io_uring_get_probe_ring(&lp->ring);

	if (pr) {
		lp->feat.native_recv = io_uring_opcode_supported(pr, IORING_OP_RECV);
		lp->feat.native_send = io_uring_opcode_supported(pr, IORING_OP_SEND);
		lp->feat.native_accept = io_uring_opcode_supported(pr, IORING_OP_ACCEPT);
		lp->feat.native_connect = io_uring_opcode_supported(pr, IORING_OP_CONNECT);
		io_uring_free_probe(pr);
	}
	/* Multishot accept appeared in 5.19 together with COOP_TASKRUN; the
	 * probe cannot see flags, so infer it from the setup flag we got. */
	lp->feat.multishot_accept = lp->feat.native_accept && lp->feat.coop_taskrun;
	if (lp->force_fallback)
		lp->feat.native_recv = lp->feat.native_send = lp->feat.native_accept =
			lp->feat.multishot_accept = 0;
}

static int ring_init(struct loop *lp)
{
	struct io_uring_params p;
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int r = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		r = io_uring_queue_init_params(512, &lp->ring, &p);
		if (r == 0) {
			lp->feat.single_issuer = !!(tries[i] & IORING_SETUP_SINGLE_ISSUER);
			lp->feat.defer_taskrun = !!(tries[i] & IORING_SETUP_DEFER_TASKRUN);
			lp->feat.coop_taskrun = !!(tries[i] & IORING_SETUP_COOP_TASKRUN);
			return 0;
		}
	}
	return r;
}

static void *loop_thread(void *arg)
{
	struct loop *lp = arg;
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int r;

	t_current = lp;
	r = ring_init(lp);
	if (r == 0) {
		probe(lp);
		lp->efd_op.cb = efd_cb;
		efd_cb(&lp->efd_op, 0);
	}
	pthread_mutex_lock(&lp->mu);
	lp->started_ok = 1;
	lp->start_err = r;
	pthread_cond_broadcast(&lp->cv);
	pthread_mutex_unlock(&lp->mu);
	if (r < 0)
		return NULL;
	log_info("loop", "event=loop_started recv=%s send=%s accept=%s multishot_accept=%d single_issuer=%d defer_taskrun=%d",
		 lp->feat.native_recv ? "io_uring" : "poll", lp->feat.native_send ? "io_uring" : "poll",
		 lp->feat.native_accept ? "io_uring" : "poll", lp->feat.multishot_accept,
		 lp->feat.single_issuer, lp->feat.defer_taskrun);

	while (!lp->stopping) {
		r = io_uring_submit_and_wait(&lp->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_error("loop", "event=loop_failed err=%s", strerror(-r));
			break;
		}
		n = 0;
		io_uring_for_each_cqe(&lp->ring, head, cqe) {
			dispatch(lp, cqe);
			n++;
		}
		io_uring_cq_advance(&lp->ring, n);
	}
	drain_posted(lp);
	io_uring_queue_exit(&lp->ring);
	return NULL;
}

int loop_new(struct loop **out)
{
	struct loop *lp;
	const char *fb = getenv("FERRY_URING_FALLBACK");
	int r;

	lp = calloc(1, sizeof(*lp));
	if (!lp)
		return -ENOMEM;
	lp->force_fallback = fb && *fb == '1';
	pthread_mutex_init(&lp->mu, NULL);
	pthread_cond_init(&lp->cv, NULL);
	lp->efd = eventfd(0, EFD_CLOEXEC);
	if (lp->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&lp->thread, NULL, loop_thread, lp);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&lp->mu);
	while (!lp->started_ok)
		pthread_cond_wait(&lp->cv, &lp->mu);
	r = lp->start_err;
	pthread_mutex_unlock(&lp->mu);
	if (r < 0) {
		pthread_join(lp->thread, NULL);
		goto fail;
	}
	*out = lp;
	return 0;
fail:
	if (lp->efd >= 0)
		close(lp->efd);
	free(lp);
	return r;
}

static void stop_fn(void *arg)
{
	((struct loop *)arg)->stopping = 1;
}

void loop_free(struct loop *lp)
{
	if (!lp)
		return;
	loop_post_must(lp, stop_fn, lp);
	pthread_join(lp->thread, NULL);
	close(lp->efd);
	pthread_mutex_destroy(&lp->mu);
	pthread_cond_destroy(&lp->cv);
	free(lp);
}

const struct loop_features *loop_features(const struct loop *lp) { return &lp->feat; }


int loop_post(struct loop *lp, void (*fn)(void *), void *arg)
{
	struct posted *p = malloc(sizeof(*p));
	uint64_t one = 1;

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&lp->mu);
	if (lp->tail)
		lp->tail->next = p;
	else
		lp->head = p;
	lp->tail = p;
	pthread_mutex_unlock(&lp->mu);
	/* The only failure, EAGAIN, means the counter is already non-zero:
	 * the loop wakes either way, and the item is queued. */
	(void)!write(lp->efd, &one, sizeof(one));
	return 0;
}

void loop_post_must(struct loop *lp, void (*fn)(void *), void *arg)
{
	/* Only a failed allocation stops a post; a lost post hangs whoever
	 * waits for it, so try for a second, then stop loudly. */
	for (int i = 0; i < 1000; i++) {
		if (loop_post(lp, fn, arg) == 0)
			return;
		poll(NULL, 0, 1); /* memory may come back; nothing to wait on */
	}
	log_error("loop", "event=post_failed reason=\"out of memory\"");
	abort();
}

int loop_recv(struct loop *lp, struct loop_op *op, int fd, void *buf, size_t len, int flags)
{
	struct io_uring_sqe *sqe;

	op->multishot = 0;
	if (!lp->feat.native_recv) {
		op->fb_kind = FB_RECV;
		op->fb_fd = fd;
		op->fb_buf = buf;
		op->fb_len = len;
		op->fb_flags = flags;
		return fallback_arm(lp, op, POLLIN);
	}
	op->fb_kind = FB_NONE;
	sqe = get_sqe(lp);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, fd, buf, len, flags);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int loop_send(struct loop *lp, struct loop_op *op, int fd, const void *buf, size_t len, int flags)
{
	struct io_uring_sqe *sqe;

	op->multishot = 0;
	if (!lp->feat.native_send) {
		op->fb_kind = FB_SEND;
		op->fb_fd = fd;
		op->fb_buf = (void *)buf;
		op->fb_len = len;
		op->fb_flags = flags;
		return fallback_arm(lp, op, POLLOUT);
	}
	op->fb_kind = FB_NONE;
	sqe = get_sqe(lp);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, fd, buf, len, flags | MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int loop_accept(struct loop *lp, struct loop_op *op, int listen_fd)
{
	struct io_uring_sqe *sqe;

	op->multishot = 1;
	op->fb_fd = listen_fd;
	if (!lp->feat.native_accept) {
		op->fb_kind = FB_ACCEPT;
		return fallback_arm(lp, op, POLLIN);
	}
	op->fb_kind = FB_NONE;
	sqe = get_sqe(lp);
	if (!sqe)
		return -EBUSY;
	if (lp->feat.multishot_accept) {
		io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} else {
		/* Single shot: dispatch() re-arms after each connection. */
		io_uring_prep_accept(sqe, listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	}
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int loop_timeout(struct loop *lp, struct loop_op *op, unsigned ms)
{
	struct io_uring_sqe *sqe = get_sqe(lp);
	struct __kernel_timespec *ts = (struct __kernel_timespec *)op->ts;

	if (!sqe)
		return -EBUSY;
	op->fb_kind = FB_NONE;
	op->multishot = 0;
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (long long)(ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, ts, 0, 0);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int loop_cancel_fd(struct loop *lp, int fd)
{
	struct io_uring_sqe *sqe = get_sqe(lp);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}
