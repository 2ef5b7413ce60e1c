/* qmp: a small blocking QMP client over a unix socket.
 *
 * One handle is one QMP session with one QEMU. Commands carry an id
 * ("ferry-<n>") and their reply is matched by it, so a reply that arrives
 * after its command timed out is recognised and dropped instead of being
 * taken for the answer to the next command. Events that arrive while we wait
 * for a reply (or during qmp_pump) are queued with QEMU's own timestamps, so
 * that e.g. the STOP/RESUME pair that measures downtime is never lost.
 *
 * Conventions: functions return 0 on success or -errno and never touch
 * errno. Error mapping:
 *   -EREMOTEIO  QEMU answered {"error":...}; err->cls/desc hold its class/desc
 *   -ETIMEDOUT  nothing (matching) arrived in time; the handle stays usable
 *   -EPIPE      QEMU hung up (also mid-line), or the handle is already dead
 *   -EPROTO     invalid JSON, a line that is not an object, or a message that
 *               is neither greeting, event nor reply
 *   -EMSGSIZE   a line longer than QMP_MAX_LINE bytes
 *   -ENOMEM, -EINVAL, and connect()'s errors from qmp_connect
 * After -EPIPE/-EPROTO/-EMSGSIZE (or a write that timed out half-way) the
 * session is out of sync and the handle is dead: later calls return -EPIPE,
 * and qmp_last_error() keeps the original reason. (If the bad input came
 * right behind a reply, so that the call itself succeeded, the next call
 * returns the original code once before -EPIPE.) Events queued before the
 * failure can still be taken.
 *
 * Timeouts are in milliseconds; a negative timeout waits forever, 0 only
 * looks at what is already available.
 *
 * Thread safety: none. A handle must be used by one thread at a time (the
 * intended model is one owning thread per QEMU); different handles are
 * independent.
 */
#ifndef FERRY_QMP_QMP_H
#define FERRY_QMP_QMP_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Longest line (without its '\n') accepted from QEMU. */
#define QMP_MAX_LINE (1024 * 1024)
/* Events kept while nobody takes them; beyond this the oldest is dropped. */
#define QMP_EVENT_QUEUE_MAX 4096

struct qmp; /* opaque */

/* QEMU's error class and description, or for a local failure the class
 * "LocalError" and the same text as qmp_last_error(). */
struct qmp_error {
	char cls[64];
	char desc[512];
};

struct qmp_event {
	char name[64];
	uint64_t ts_us;            /* QEMU's timestamp: seconds*1e6+microseconds */
	struct json_object *data;  /* owned by the event, may be NULL */
};

/* Connect to QEMU's QMP socket, read the greeting and leave capability
 * negotiation mode (qmp_capabilities). While the socket does not exist yet
 * or refuses connections (QEMU still starting) the connect is retried until
 * timeout_ms has passed; the whole call is bounded by timeout_ms. On failure
 * *out is NULL and err (may be NULL) says why. */
int qmp_connect(const char *sock_path, int timeout_ms, struct qmp **out,
		struct qmp_error *err);

/* Close the socket, free queued events. NULL-safe. */
void qmp_close(struct qmp *q);

/* Run cmd with args (borrowed, may be NULL) and wait for its reply.
 * On success *ret (if ret is not NULL) gets a new reference to "return",
 * which the caller must json_object_put(); on failure *ret is NULL. */
int qmp_execute(struct qmp *q, const char *cmd, struct json_object *args,
		struct json_object **ret, struct qmp_error *err, int timeout_ms);

/* qmp_execute with any failure put as one sentence into err: "QEMU
 * refused CMD: <QEMU's description>" or "QMP CMD failed: <local reason>". */
int qmp_call(struct qmp *q, const char *cmd, struct json_object *args,
	     struct json_object **ret, int timeout_ms, char *err, size_t errlen);

/* Like qmp_execute, but the command line is sent with fd attached as
 * SCM_RIGHTS ancillary data (for getfd / add-fd). fd stays owned by the
 * caller; QEMU receives its own duplicate. -EBADF (handle still usable) if
 * fd is not an open descriptor. */
int qmp_execute_fd(struct qmp *q, const char *cmd, struct json_object *args,
		   int fd, struct json_object **ret, struct qmp_error *err,
		   int timeout_ms);

/* Take the oldest queued event called name (NULL = any), reading from the
 * socket until one arrives. -ETIMEDOUT if none within timeout_ms. *ev is
 * overwritten (zeroed on failure); release it with qmp_event_clear(). */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms,
		   struct qmp_event *ev);

/* Non-blocking: take the oldest queued event called name (NULL = any), or
 * -EAGAIN if there is none. Does not read the socket (see qmp_pump). */
int qmp_take_event(struct qmp *q, const char *name, struct qmp_event *ev);

/* Wait up to timeout_ms for input, then read everything available and queue
 * the events in it (replies nobody waits for are dropped). Returns 0 whether
 * or not something arrived, or -errno (-EPIPE when QEMU hung up). Meant for
 * callers that poll qmp_fd() themselves: after any qmp_* call returns, no
 * complete line is left unprocessed in the handle's buffer. */
int qmp_pump(struct qmp *q, int timeout_ms);

/* Release ev->data and reset ev. NULL-safe, idempotent. */
void qmp_event_clear(struct qmp_event *ev);

/* The socket, for poll(POLLIN); -EBADF for NULL. */
int qmp_fd(struct qmp *q);

/* Human-readable text of the last local failure ("" if none so far). */
const char *qmp_last_error(struct qmp *q);

#endif
