/* The agent's one io_uring event loop.
 *
 * Every socket read and write of the data path, every accept and every timer
 * runs on this loop's thread. Other threads (the engine, the API, the
 * compression workers) never touch the ring: they hand work to the loop with
 * loop_post(), which is the only thread-safe entry point besides loop_stop().
 *
 * An operation is a `struct loop_op` embedded in the caller's object; its
 * callback runs on the loop thread with the io_uring result (bytes, fd, or
 * -errno). The op memory must stay valid until the callback has run. */
#ifndef FERRY_TRANSPORT_LOOP_H
#define FERRY_TRANSPORT_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/compiler.h"

struct loop;
struct loop_op;

typedef void (*loop_cb)(struct loop_op *op, int res);

struct loop_op {
	loop_cb cb;
	/* Fallback bookkeeping (poll + syscall when the kernel lacks an op). */
	int fb_kind, fb_fd, fb_flags;
	void *fb_buf;
	size_t fb_len;
	long long ts[2]; /* struct __kernel_timespec for timeouts */
	int multishot;   /* accept: callback may run many times */
};

/* What the running kernel offers; probed once at start. */
struct loop_features {
	int native_recv, native_send, native_accept, native_connect;
	int multishot_accept, single_issuer, defer_taskrun, coop_taskrun;
};

/* Starts the loop thread. Set FERRY_URING_FALLBACK=1 to force the
 * poll+syscall path (tests use it to exercise the fallback). */
int loop_new(struct loop **out);
/* Stops the thread (thread-safe), then frees. Ops still pending are dropped:
 * stop the users first. */
void loop_free(struct loop *lp);
const struct loop_features *loop_features(const struct loop *lp);

/* Run fn(arg) on the loop thread, in order. Thread-safe. 0, or -ENOMEM
 * (nothing was queued). */
FERRY_MUST_CHECK int loop_post(struct loop *lp, void (*fn)(void *), void *arg);
/* The same for a caller that cannot go on without it (a completion, a
 * stop): retries for a second, then aborts the process. */
void loop_post_must(struct loop *lp, void (*fn)(void *), void *arg);

/* The following must be called on the loop thread. They return 0 or -errno
 * (only -ENOMEM-like setup failures; I/O errors arrive in the callback). */
FERRY_MUST_CHECK int loop_recv(struct loop *lp, struct loop_op *op, int fd, void *buf, size_t len, int flags);
FERRY_MUST_CHECK int loop_send(struct loop *lp, struct loop_op *op, int fd, const void *buf, size_t len, int flags);
/* Accepts repeatedly: the callback runs once per connection (res = new fd,
 * already non-blocking and close-on-exec) until it gets an error. */
FERRY_MUST_CHECK int loop_accept(struct loop *lp, struct loop_op *op, int listen_fd);
FERRY_MUST_CHECK int loop_timeout(struct loop *lp, struct loop_op *op, unsigned ms);
/* Cancel every op on fd (best effort; their callbacks run with -ECANCELED). */
int loop_cancel_fd(struct loop *lp, int fd);

#endif
