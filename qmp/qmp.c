/* qmp.c: QMP client over a unix socket, written against the QMP wire
 * protocol (one JSON object per '\n'-terminated line in each direction).
 *
 * The socket is non-blocking and every wait is a poll() against a monotonic
 * deadline, so no call blocks longer than its timeout. Input is buffered in
 * one growing buffer (at most QMP_MAX_LINE + 1 bytes: a line plus its '\n');
 * complete lines are parsed with json_tokener and dispatched as greeting,
 * event (queued) or reply (matched by id).
 */
#include "qmp/qmp.h"

#include "util/log.h"
#include "util/net.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#define QMP_RX_INITIAL (64 * 1024)
#define QMP_RX_MAX (QMP_MAX_LINE + 1)
#define QMP_EVQ_INITIAL 16
#define QMP_JSON_DEPTH 64
/* Pause between connect attempts while QEMU has not created the socket. */
/* qmp_pump reads at most this many chunks per call so that a chatty QEMU
 * cannot keep the caller inside it; the fd stays readable for the next
 * poll. */
#define QMP_PUMP_MAX_READS 64
#define QMP_LOCAL_CLASS "LocalError"

struct qmp {
	int fd;
	int dead;               /* 0, or the -errno that broke the session */
	int dead_reported;      /* a call has returned that code already */
	char *rx;               /* input buffer */
	size_t rx_cap;
	size_t rx_start;        /* first byte not consumed yet */
	size_t rx_len;          /* end of the data received */
	size_t rx_scan;         /* [rx_start, rx_scan) holds no '\n' */
	unsigned long long next_id;
	struct qmp_event *evq;  /* ring buffer of queued events */
	size_t evq_cap, evq_head, evq_count;
	unsigned long long ev_dropped;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char last_err[512];
};

/* ---- small helpers ---------------------------------------------------- */

static void fill_err(struct qmp_error *err, const char *cls, const char *desc)
{
	if (!err)
		return;
	snprintf(err->cls, sizeof(err->cls), "%s", cls ? cls : "");
	snprintf(err->desc, sizeof(err->desc), "%s", desc ? desc : "");
}

/* Printable excerpt of untrusted input for error messages and logs. */
static void snippet(char *dst, size_t dst_len, const char *src, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < dst_len; i++)
		dst[o++] = (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '"') ?
				   src[i] : '?';
	if (i < n && o + 3 < dst_len) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

static void set_error(struct qmp *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_error(struct qmp *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->last_err, sizeof(q->last_err), fmt, ap);
	va_end(ap);
}

/* The session is out of sync (or gone): remember why, refuse further use. */
static int fail(struct qmp *q, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct qmp *q, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->last_err, sizeof(q->last_err), fmt, ap);
	va_end(ap);
	q->dead = rc;
	q->dead_reported = 0;
	log_warn("qmp", "event=qmp_session_broken path=%s rc=%d reason=\"%s\"",
		 q->path, rc, log_q(q->last_err));
	return rc;
}

/* What a call on a broken handle returns: the original code if no call
 * has returned it yet (it can surface while a call that succeeded drains
 * the lines behind its reply), -EPIPE after that. */
static int dead_rc(struct qmp *q)
{
	int rc = q->dead_reported ? -EPIPE : q->dead;

	q->dead_reported = 1;
	return rc;
}

static void note_returned(struct qmp *q, int rc)
{
	if (q && q->dead && rc == q->dead)
		q->dead_reported = 1;
}

/* poll() one fd until it is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n, rc;

	for (;;) {
		n = poll(&pfd, 1, time_remaining_ms(deadline));
		if (n > 0) {
			rc = (pfd.revents & POLLNVAL) ? -EBADF : 0;
			break;
		}
		if (n == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	return rc;
}

/* ---- event queue -------------------------------------------------------- */

static struct qmp_event *evq_at(struct qmp *q, size_t i)
{
	return &q->evq[(q->evq_head + i) % q->evq_cap];
}

static int evq_grow(struct qmp *q)
{
	size_t cap = q->evq_cap ? q->evq_cap * 2 : QMP_EVQ_INITIAL;
	struct qmp_event *n;
	size_t i;

	if (cap > QMP_EVENT_QUEUE_MAX)
		cap = QMP_EVENT_QUEUE_MAX;
	n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	/* Linearise the ring into the new array. */
	for (i = 0; i < q->evq_count; i++)
		n[i] = *evq_at(q, i);
	free(q->evq);
	q->evq = n;
	q->evq_cap = cap;
	q->evq_head = 0;
	return 0;
}

/* Queue the event in msg (which stays owned by the caller). */
static int evq_push(struct qmp *q, struct json_object *msg)
{
	struct json_object *name, *ts, *sec, *usec, *data;
	struct qmp_event *ev;
	int64_t s = -1, us = -1;
	int rc = 0;

	name = json_object_object_get(msg, "event");
	if (!json_object_is_type(name, json_type_string)) {
		rc = fail(q, -EPROTO, "malformed QMP event: \"event\" is not a string");
		goto out;
	}
	if (json_object_object_get_ex(msg, "timestamp", &ts) &&
	    json_object_object_get_ex(ts, "seconds", &sec) &&
	    json_object_object_get_ex(ts, "microseconds", &usec)) {
		s = json_object_get_int64(sec);
		us = json_object_get_int64(usec);
	}
	if (q->evq_count == QMP_EVENT_QUEUE_MAX) {
		/* Nobody is taking events: keep the newest, which are the ones a
		 * late reader is most likely to wait for. */
		qmp_event_clear(evq_at(q, 0));
		q->evq_head = (q->evq_head + 1) % q->evq_cap;
		q->evq_count--;
		if (q->ev_dropped++ % 256 == 0)
			log_warn("qmp", "event=qmp_event_dropped path=%s queue_max=%d dropped_total=%llu",
				 q->path, QMP_EVENT_QUEUE_MAX, q->ev_dropped);
	}
	if (q->evq_count == q->evq_cap) {
		rc = evq_grow(q);
		if (rc) {
			rc = fail(q, rc, "out of memory queueing a QMP event");
			goto out;
		}
	}
	ev = evq_at(q, q->evq_count);
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->name, sizeof(ev->name), "%s", json_object_get_string(name));
	ev->ts_us = (s >= 0 && us >= 0) ? (uint64_t)s * 1000000u + (uint64_t)us : 0;
	data = json_object_object_get(msg, "data");
	ev->data = data ? json_object_get(data) : NULL;
	q->evq_count++;
	log_debug("qmp", "event=qmp_event_queued path=%s name=%s ts_us=%llu queued=%zu",
		  q->path, ev->name, (unsigned long long)ev->ts_us, q->evq_count);
out:
	return rc;
}

static int evq_take(struct qmp *q, const char *name, struct qmp_event *out)
{
	size_t i, j;
	int rc = -EAGAIN;

	for (i = 0; i < q->evq_count; i++) {
		if (name && strcmp(evq_at(q, i)->name, name))
			continue;
		*out = *evq_at(q, i);
		if (i == 0) {
			q->evq_head = (q->evq_head + 1) % q->evq_cap;
		} else {
			for (j = i; j + 1 < q->evq_count; j++)
				*evq_at(q, j) = *evq_at(q, j + 1);
		}
		q->evq_count--;
		rc = 0;
		break;
	}
	return rc;
}

/* ---- input ------------------------------------------------------------ */

/* Next complete line of the buffer, NUL-terminated in place of its '\n'.
 * Returns 1 with *line and *n set, or 0 when no complete line is buffered. */
static int rx_next_line(struct qmp *q, char **line, size_t *n)
{
	char *nl = memchr(q->rx + q->rx_scan, '\n', q->rx_len - q->rx_scan);

	if (!nl) {
		q->rx_scan = q->rx_len;
		return 0;
	}
	*nl = '\0';
	*line = q->rx + q->rx_start;
	*n = (size_t)(nl - *line);
	q->rx_start = q->rx_scan = (size_t)(nl - q->rx) + 1;
	return 1;
}

/* Receive more input (there is no complete line buffered). -ETIMEDOUT
 * leaves the handle usable; every other error breaks it. */
static int rx_fill(struct qmp *q, uint64_t deadline)
{
	size_t pending = q->rx_len - q->rx_start;
	size_t cap;
	ssize_t n;
	char *nb;
	int rc;

	if (pending > QMP_MAX_LINE) {
		rc = fail(q, -EMSGSIZE, "QMP line longer than %d bytes", QMP_MAX_LINE);
		goto out;
	}
	if (q->rx_start) {
		memmove(q->rx, q->rx + q->rx_start, pending);
		q->rx_scan -= q->rx_start;
		q->rx_len = pending;
		q->rx_start = 0;
	}
	if (q->rx_len == q->rx_cap) {
		cap = q->rx_cap * 2 > QMP_RX_MAX ? QMP_RX_MAX : q->rx_cap * 2;
		nb = realloc(q->rx, cap);
		if (!nb) {
			rc = fail(q, -ENOMEM, "out of memory buffering QMP input");
			goto out;
		}
		q->rx = nb;
		q->rx_cap = cap;
	}
	rc = wait_fd(q->fd, POLLIN, deadline);
	if (rc == -ETIMEDOUT)
		goto out;
	if (rc) {
		rc = fail(q, rc, "poll on the QMP socket failed: %s", strerror(-rc));
		goto out;
	}
	n = recv(q->fd, q->rx + q->rx_len, q->rx_cap - q->rx_len, MSG_DONTWAIT);
	if (n > 0) {
		q->rx_len += (size_t)n;
		rc = 0;
	} else if (n == 0 && pending) {
		rc = fail(q, -EPIPE,
			  "QEMU closed the QMP socket mid-line (%zu bytes of an unterminated line)",
			  pending);
	} else if (n == 0) {
		rc = fail(q, -EPIPE, "QEMU closed the QMP socket");
	} else if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
		rc = 0;
	} else if (errno == ECONNRESET) {
		rc = fail(q, -EPIPE, "QEMU closed the QMP socket (connection reset)");
	} else {
		rc = fail(q, -errno, "reading the QMP socket failed: %s", strerror(errno));
	}
out:
	return rc;
}

/* Parse one line into a JSON object (*out, new reference). */
static int parse_line(struct qmp *q, const char *line, size_t n,
		      struct json_object **out)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	char ex[96];
	size_t end;
	int rc = 0;

	*out = NULL;
	tok = json_tokener_new_ex(QMP_JSON_DEPTH);
	if (!tok) {
		rc = fail(q, -ENOMEM, "out of memory parsing QMP input");
		goto out;
	}
	/* n + 1: include the terminating NUL so that a bare scalar at the end
	 * of the line is complete rather than "to be continued". */
	obj = json_tokener_parse_ex(tok, line, (int)(n + 1));
	jerr = json_tokener_get_error(tok);
	snippet(ex, sizeof(ex), line, n);
	if (jerr != json_tokener_success) {
		rc = fail(q, -EPROTO, "invalid JSON from QEMU: %s: \"%s\"",
			  jerr == json_tokener_continue ? "unexpected end of line" :
							  json_tokener_error_desc(jerr),
			  ex);
		goto out;
	}
	for (end = json_tokener_get_parse_end(tok); end < n; end++) {
		if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r') {
			rc = fail(q, -EPROTO, "invalid JSON from QEMU: trailing data after the value: \"%s\"", ex);
			goto out;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = fail(q, -EPROTO, "QMP message is not a JSON object: \"%s\"", ex);
		goto out;
	}
	*out = obj;
	obj = NULL;
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

static int line_is_blank(const char *line, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

/* Read the next message (skipping blank lines), waiting until deadline. */
static int rx_next_msg(struct qmp *q, uint64_t deadline, struct json_object **out)
{
	char *line;
	size_t n;
	int rc;

	*out = NULL;
	for (;;) {
		if (rx_next_line(q, &line, &n)) {
			if (line_is_blank(line, n))
				continue;
			rc = parse_line(q, line, n, out);
			break;
		}
		rc = rx_fill(q, deadline);
		if (rc)
			break;
	}
	return rc;
}

/* Route one message (owned by the caller). An event is queued; a reply
 * whose id is want_id is handed over through *reply (new reference);
 * other replies are dropped. */
static int dispatch(struct qmp *q, struct json_object *msg, const char *want_id,
		    struct json_object **reply)
{
	struct json_object *id;
	int rc = 0;

	if (json_object_object_get_ex(msg, "event", NULL)) {
		rc = evq_push(q, msg);
		goto out;
	}
	if (json_object_object_get_ex(msg, "return", NULL) ||
	    json_object_object_get_ex(msg, "error", NULL)) {
		id = json_object_object_get(msg, "id");
		if (want_id && reply && !*reply && json_object_is_type(id, json_type_string) &&
		    !strcmp(json_object_get_string(id), want_id)) {
			*reply = json_object_get(msg);
		} else if (want_id && reply && !*reply && !id &&
			   json_object_object_get_ex(msg, "error", NULL)) {
			/* QEMU leaves out the id only when it could not parse the
			 * request at all; with one command in flight it is ours. */
			log_warn("qmp", "event=qmp_error_without_id path=%s id=%s", q->path, want_id);
			*reply = json_object_get(msg);
		} else {
			log_warn("qmp", "event=qmp_reply_dropped path=%s id=%s waiting_for=%s",
				 q->path, id ? json_object_to_json_string(id) : "none",
				 want_id ? want_id : "none");
		}
		goto out;
	}
	if (json_object_object_get_ex(msg, "QMP", NULL)) {
		log_warn("qmp", "event=qmp_unexpected_greeting path=%s", q->path);
		goto out;
	}
	rc = fail(q, -EPROTO, "QMP message is neither greeting, event nor reply: %.200s",
		  json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
out:
	return rc;
}

/* Dispatch every complete line already buffered, without reading. */
static int rx_dispatch_buffered(struct qmp *q, const char *want_id,
				struct json_object **reply)
{
	struct json_object *msg = NULL;
	char *line;
	size_t n;
	int rc = 0;

	while (!q->dead && rx_next_line(q, &line, &n)) {
		if (line_is_blank(line, n))
			continue;
		rc = parse_line(q, line, n, &msg);
		if (rc)
			break;
		rc = dispatch(q, msg, want_id, reply);
		json_object_put(msg);
		msg = NULL;
		if (rc)
			break;
	}
	return rc;
}

/* ---- output ----------------------------------------------------------- */

/* Write all of buf, with fd (if >= 0) riding along the first bytes. */
static int tx_all(struct qmp *q, const char *buf, size_t len, int fd,
		  uint64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *c;
	size_t off = 0;
	ssize_t n;
	int rc = 0;

	while (off < len) {
		if (fd >= 0) {
			memset(&mh, 0, sizeof(mh));
			memset(&cbuf, 0, sizeof(cbuf));
			iov.iov_base = (void *)(buf + off);
			iov.iov_len = len - off;
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf.buf;
			mh.msg_controllen = sizeof(cbuf.buf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
			n = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			n = send(q->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (n > 0) {
			off += (size_t)n;
			fd = -1; /* the fd went with these bytes */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(q->fd, POLLOUT, deadline);
			if (rc == -ETIMEDOUT && off == 0) {
				set_error(q, "QMP socket not writable in time");
				goto out;
			}
			if (rc == -ETIMEDOUT) {
				rc = fail(q, -ETIMEDOUT, "timed out after writing %zu of %zu bytes of a QMP command",
					  off, len);
				goto out;
			}
			if (rc) {
				rc = fail(q, rc, "poll on the QMP socket failed: %s", strerror(-rc));
				goto out;
			}
			continue;
		}
		if (n < 0 && errno == EBADF && fd >= 0 && off == 0) {
			/* The caller's fd is bad; nothing was sent. */
			rc = -EBADF;
			set_error(q, "cannot pass fd %d to QEMU: %s", fd, strerror(EBADF));
			goto out;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			rc = fail(q, -EPIPE, "QEMU closed the QMP socket");
			goto out;
		}
		rc = fail(q, n < 0 ? -errno : -EIO, "writing the QMP socket failed: %s",
			  n < 0 ? strerror(errno) : "no progress");
		goto out;
	}
out:
	return rc;
}

/* ---- public API --------------------------------------------------------- */

/* Add val to obj under key; on failure val is released, not leaked. */
static int obj_add(struct json_object *obj, const char *key, struct json_object *val)
{
	int rc = 0;

	if (!val || json_object_object_add(obj, key, val)) {
		json_object_put(val);
		rc = -ENOMEM;
	}
	return rc;
}

/* {"execute": cmd, "arguments": args, "id": id}; NULL when out of memory. */
static struct json_object *build_request(const char *cmd, struct json_object *args,
					 const char *id)
{
	struct json_object *req = json_object_new_object();

	if (req && (obj_add(req, "execute", json_object_new_string(cmd)) ||
		    (args && obj_add(req, "arguments", json_object_get(args))) ||
		    obj_add(req, "id", json_object_new_string(id)))) {
		json_object_put(req);
		req = NULL;
	}
	return req;
}

static int exec_common(struct qmp *q, const char *cmd, struct json_object *args,
		       int fd, struct json_object **ret, struct qmp_error *err,
		       int timeout_ms)
{
	struct json_object *req = NULL, *reply = NULL, *e, *v;
	const char *s;
	char *line = NULL;
	char id[32];
	uint64_t deadline = time_deadline_ms(timeout_ms);
	int saved_errno = errno;
	size_t len;
	int rc = 0;

	if (ret)
		*ret = NULL;
	fill_err(err, "", "");
	if (!q || !cmd || !*cmd || (args && !json_object_is_type(args, json_type_object))) {
		fill_err(err, QMP_LOCAL_CLASS, "invalid argument");
		rc = -EINVAL;
		goto out;
	}
	if (q->dead) {
		rc = dead_rc(q);
		goto out;
	}
	snprintf(id, sizeof(id), "ferry-%llu", ++q->next_id);

	req = build_request(cmd, args, id);
	if (!req) {
		set_error(q, "out of memory building a QMP command");
		rc = -ENOMEM;
		goto out;
	}
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);
	len = s ? strlen(s) : 0;
	line = s ? malloc(len + 1) : NULL;
	if (!line) {
		set_error(q, "out of memory building a QMP command");
		rc = -ENOMEM;
		goto out;
	}
	memcpy(line, s, len);
	line[len] = '\n';
	log_debug("qmp", "event=qmp_send path=%s cmd=%s id=%s fd=%d", q->path, cmd, id, fd);

	rc = tx_all(q, line, len + 1, fd, deadline);
	if (rc)
		goto out;
	for (;;) {
		rc = rx_dispatch_buffered(q, id, &reply);
		if (reply || rc)
			break;
		rc = rx_fill(q, deadline);
		if (rc == -ETIMEDOUT)
			set_error(q, "no reply to %s (id %s) within %d ms", cmd, id, timeout_ms);
		if (rc)
			break;
	}
	if (!reply)
		goto out;
	/* A broken line after our reply does not undo the reply; the handle
	 * is dead and the next call will say so. */
	rc = 0;
	if (json_object_object_get_ex(reply, "error", &e)) {
		v = json_object_object_get(e, "class");
		fill_err(err, v ? json_object_get_string(v) : "GenericError",
			 json_object_get_string(json_object_object_get(e, "desc")));
		log_debug("qmp", "event=qmp_error path=%s cmd=%s id=%s class=%s", q->path, cmd,
			  id, v ? json_object_get_string(v) : "?");
		rc = -EREMOTEIO;
		goto out;
	}
	if (ret)
		*ret = json_object_get(json_object_object_get(reply, "return"));
	log_debug("qmp", "event=qmp_reply path=%s cmd=%s id=%s", q->path, cmd, id);
out:
	if (rc && rc != -EREMOTEIO && rc != -EINVAL)
		fill_err(err, QMP_LOCAL_CLASS, q->last_err);
	note_returned(q, rc);
	json_object_put(reply);
	json_object_put(req);
	free(line);
	errno = saved_errno;
	return rc;
}

int qmp_execute(struct qmp *q, const char *cmd, struct json_object *args,
		struct json_object **ret, struct qmp_error *err, int timeout_ms)
{
	return exec_common(q, cmd, args, -1, ret, err, timeout_ms);
}

int qmp_execute_fd(struct qmp *q, const char *cmd, struct json_object *args,
		   int fd, struct json_object **ret, struct qmp_error *err,
		   int timeout_ms)
{
	if (fd < 0) {
		if (ret)
			*ret = NULL;
		fill_err(err, QMP_LOCAL_CLASS, "invalid file descriptor");
		return -EBADF;
	}
	return exec_common(q, cmd, args, fd, ret, err, timeout_ms);
}

int qmp_connect(const char *sock_path, int timeout_ms, struct qmp **out,
		struct qmp_error *err)
{
	struct json_object *greet = NULL, *ver;
	uint64_t deadline = time_deadline_ms(timeout_ms);
	struct qmp *q = NULL;
	int saved_errno = errno;
	int rc = 0;

	fill_err(err, "", "");
	if (out)
		*out = NULL;
	if (!sock_path || !out) {
		fill_err(err, QMP_LOCAL_CLASS, "invalid argument");
		rc = -EINVAL;
		goto out;
	}
	if (strlen(sock_path) >= sizeof(q->path)) {
		fill_err(err, QMP_LOCAL_CLASS, "QMP socket path too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	q = calloc(1, sizeof(*q));
	if (q)
		q->rx = malloc(QMP_RX_INITIAL);
	if (!q || !q->rx) {
		fill_err(err, QMP_LOCAL_CLASS, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	q->fd = -1;
	q->rx_cap = QMP_RX_INITIAL;
	snprintf(q->path, sizeof(q->path), "%s", sock_path);

	/* QEMU creates the socket some time after it was started: retry
	 * while the socket is absent or nobody listens on it yet. */
	rc = net_connect_unix(sock_path, timeout_ms, &q->fd);
	if (rc == -ENOENT || rc == -ECONNREFUSED || rc == -EAGAIN) {
		set_error(q, "cannot connect to %s within %d ms: %s", sock_path,
			  timeout_ms, strerror(-rc));
		rc = -ETIMEDOUT;
		goto out;
	}
	if (rc) {
		set_error(q, "cannot connect to %s: %s", sock_path, strerror(-rc));
		goto out;
	}
	if (fcntl(q->fd, F_SETFL, fcntl(q->fd, F_GETFL) | O_NONBLOCK) < 0) {
		rc = -errno;
		set_error(q, "cannot make the QMP socket non-blocking: %s", strerror(errno));
		goto out;
	}

	rc = rx_next_msg(q, deadline, &greet);
	if (rc == -ETIMEDOUT)
		set_error(q, "no QMP greeting from %s within %d ms (is another client connected?)",
			  sock_path, timeout_ms);
	if (rc)
		goto out;
	if (!json_object_object_get_ex(greet, "QMP", NULL)) {
		rc = fail(q, -EPROTO, "first QMP message is not a greeting: %.200s",
			  json_object_to_json_string_ext(greet, JSON_C_TO_STRING_PLAIN));
		goto out;
	}
	rc = qmp_execute(q, "qmp_capabilities", NULL, NULL, err, time_remaining_ms(deadline));
	if (rc)
		goto out;
	ver = json_object_object_get(json_object_object_get(json_object_object_get(greet, "QMP"),
							    "version"), "qemu");
	log_info("qmp", "event=qmp_connected path=%s qemu=%d.%d.%d", sock_path,
		 json_object_get_int(json_object_object_get(ver, "major")),
		 json_object_get_int(json_object_object_get(ver, "minor")),
		 json_object_get_int(json_object_object_get(ver, "micro")));
	*out = q;
	q = NULL;
out:
	if (rc && q && !(err && err->cls[0]))
		fill_err(err, QMP_LOCAL_CLASS, q->last_err);
	if (rc && q)
		log_warn("qmp", "event=qmp_connect_failed path=%s rc=%d reason=\"%s\"",
			 sock_path, rc, log_q(err && err->desc[0] ? err->desc : q->last_err));
	json_object_put(greet);
	qmp_close(q);
	errno = saved_errno;
	return rc;
}

void qmp_close(struct qmp *q)
{
	int saved_errno = errno;
	size_t i;

	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	errno = saved_errno;
	for (i = 0; i < q->evq_count; i++)
		qmp_event_clear(evq_at(q, i));
	free(q->evq);
	free(q->rx);
	free(q);
}

int qmp_take_event(struct qmp *q, const char *name, struct qmp_event *ev)
{
	if (!q || !ev)
		return -EINVAL;
	memset(ev, 0, sizeof(*ev));
	return evq_take(q, name, ev);
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms,
		   struct qmp_event *ev)
{
	uint64_t deadline = time_deadline_ms(timeout_ms);
	int saved_errno = errno;
	int rc;

	if (!q || !ev) {
		rc = -EINVAL;
		goto out;
	}
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		/* A bad line breaks the handle, but events queued before it
		 * are still handed out; only then does the error surface. */
		rc = rx_dispatch_buffered(q, NULL, NULL);
		if (evq_take(q, name, ev) == 0) {
			rc = 0;
			break;
		}
		if (q->dead) {
			rc = rc ? rc : dead_rc(q);
			break;
		}
		rc = rx_fill(q, deadline);
		if (rc == -ETIMEDOUT)
			set_error(q, "no %s event within %d ms", name ? name : "QMP", timeout_ms);
		if (rc)
			break;
	}
out:
	note_returned(q, rc);
	errno = saved_errno;
	return rc;
}

int qmp_pump(struct qmp *q, int timeout_ms)
{
	uint64_t deadline = time_deadline_ms(timeout_ms);
	int saved_errno = errno;
	int rc = 0, i;

	if (!q) {
		rc = -EINVAL;
		goto out;
	}
	if (q->dead) {
		rc = dead_rc(q);
		goto out;
	}
	rc = rx_dispatch_buffered(q, NULL, NULL);
	for (i = 0; !rc && i < QMP_PUMP_MAX_READS; i++) {
		/* The first read waits up to the timeout, the others only take
		 * what is already there. */
		rc = rx_fill(q, i == 0 ? deadline : 0);
		if (rc == -ETIMEDOUT) {
			rc = 0;
			break;
		}
		if (!rc)
			rc = rx_dispatch_buffered(q, NULL, NULL);
	}
out:
	note_returned(q, rc);
	errno = saved_errno;
	return rc;
}

int qmp_call(struct qmp *q, const char *cmd, struct json_object *args,
	     struct json_object **ret, int timeout_ms, char *err, size_t errlen)
{
	struct qmp_error qe = {{0}, {0}};
	int r = qmp_execute(q, cmd, args, ret, &qe, timeout_ms);

	if (r == -EREMOTEIO)
		snprintf(err, errlen, "QEMU refused %s: %s", cmd, qe.desc);
	else if (r < 0)
		snprintf(err, errlen, "QMP %s failed: %s", cmd, qmp_last_error(q));
	return r;
}

void qmp_event_clear(struct qmp_event *ev)
{
	if (!ev)
		return;
	json_object_put(ev->data);
	memset(ev, 0, sizeof(*ev));
}

int qmp_fd(struct qmp *q)
{
	return q ? q->fd : -EBADF;
}

const char *qmp_last_error(struct qmp *q)
{
	return q ? q->last_err : "no QMP handle";
}
