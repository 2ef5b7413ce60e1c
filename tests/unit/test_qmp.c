/* Unit tests for qmp/: a fake QMP server on a unix socket in a temp dir,
 * run by a thread, plays scripted conversations against the client; one
 * case talks to a real QEMU when qemu-system-x86_64 is installed.
 *
 * The server thread never calls cmocka asserts (they longjmp, which is only
 * valid on the test's own thread): it records its first failed check in
 * srv->fail, and srv_finish() asserts on that from the test thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "qmp/qmp.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#define SRV_TIMEOUT_MS 10000
#define GREETING                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}," \
	" \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n"

struct srv;
typedef void (*srv_script)(struct srv *s);

struct srv {
	char dir[64];
	char path[108];
	int lfd, cfd;
	pthread_t th;
	int running;
	srv_script script;
	const char *greeting;  /* NULL: the standard one; "" : send none */
	int listen_delay_ms;   /* create the socket only after this long */
	const char *arg;       /* per-test parameter for the script */
	char fail[256];
	char buf[65536];
	size_t len;
	int fds[8];
	int nfds;
	char id[64];           /* id of the last command received */
};

struct fixture {
	struct srv srv;
	struct qmp *q;
	pid_t qemu;
	char qdir[64];
};

#define SCHECK(s, cond)                                                                  \
	do {                                                                             \
		if (!(cond) && !(s)->fail[0])                                             \
			snprintf((s)->fail, sizeof((s)->fail), "%s:%d: %s", __FILE__, __LINE__, \
				 #cond);                                                  \
	} while (0)

/* ---- fake server ---------------------------------------------------------- */

static void ms_sleep(int ms)
{
	poll(NULL, 0, ms);
}

static int srv_listen(struct srv *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void srv_send_raw(struct srv *s, const char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(s->cfd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		SCHECK(s, n > 0);
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void srv_sendf(struct srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void srv_sendf(struct srv *s, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	srv_send_raw(s, line, (size_t)n);
}

/* Receive one command line (collecting SCM_RIGHTS fds); NULL on EOF. */
static struct json_object *srv_recv(struct srv *s)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cbuf;
	struct pollfd pfd = { .fd = s->cfd, .events = POLLIN };
	struct json_object *o = NULL, *id;
	struct cmsghdr *c;
	struct msghdr mh;
	struct iovec iov;
	char *nl;
	ssize_t n;
	size_t k;

	while (!(nl = memchr(s->buf, '\n', s->len))) {
		if (poll(&pfd, 1, SRV_TIMEOUT_MS) != 1 || s->len == sizeof(s->buf))
			return NULL;
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = s->buf + s->len;
		iov.iov_len = sizeof(s->buf) - s->len;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(s->cfd, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			return NULL;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				if (s->nfds < 8)
					memcpy(&s->fds[s->nfds++], CMSG_DATA(c) + k * sizeof(int),
					       sizeof(int));
			}
		}
		s->len += (size_t)n;
	}
	*nl = '\0';
	o = json_tokener_parse(s->buf);
	k = (size_t)(nl - s->buf) + 1;
	memmove(s->buf, s->buf + k, s->len - k);
	s->len -= k;
	SCHECK(s, json_object_is_type(o, json_type_object));
	id = json_object_object_get(o, "id");
	SCHECK(s, json_object_is_type(id, json_type_string));
	snprintf(s->id, sizeof(s->id), "%s", json_object_get_string(id));
	return o;
}

/* Receive a command, check its name, return it (caller puts). */
static struct json_object *srv_expect(struct srv *s, const char *cmd)
{
	struct json_object *o = srv_recv(s);

	SCHECK(s, o != NULL);
	SCHECK(s, o && !strcmp(json_object_get_string(json_object_object_get(o, "execute")), cmd));
	return o;
}

static void srv_reply(struct srv *s, const char *ret_json)
{
	srv_sendf(s, "{\"return\": %s, \"id\": \"%s\"}\r\n", ret_json, s->id);
}

/* Wait until the client closes its end. */
static void srv_wait_close(struct srv *s)
{
	struct pollfd pfd = { .fd = s->cfd, .events = POLLIN };
	char b[4096];

	while (poll(&pfd, 1, SRV_TIMEOUT_MS) == 1 && recv(s->cfd, b, sizeof(b), 0) > 0)
		;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct pollfd pfd;
	struct json_object *o;

	if (s->listen_delay_ms) {
		ms_sleep(s->listen_delay_ms);
		s->lfd = srv_listen(s);
		SCHECK(s, s->lfd >= 0);
	}
	pfd.fd = s->lfd;
	pfd.events = POLLIN;
	if (s->lfd < 0 || poll(&pfd, 1, SRV_TIMEOUT_MS) != 1)
		goto out;
	s->cfd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	SCHECK(s, s->cfd >= 0);
	if (s->cfd < 0)
		goto out;
	if (s->greeting && !s->greeting[0]) {
		srv_wait_close(s);
		goto out;
	}
	srv_sendf(s, "%s", s->greeting ? s->greeting : GREETING);
	o = srv_recv(s);
	if (!o) /* the client gave up, e.g. after a bad greeting */
		goto out;
	SCHECK(s, !strcmp(json_object_get_string(json_object_object_get(o, "execute")),
			  "qmp_capabilities"));
	SCHECK(s, !strncmp(s->id, "ferry-", 6));
	SCHECK(s, !json_object_object_get_ex(o, "arguments", NULL));
	json_object_put(o);
	srv_reply(s, "{}");
	if (s->script)
		s->script(s);
out:
	if (s->cfd >= 0)
		close(s->cfd);
	s->cfd = -1;
	return NULL;
}

/* Start the fake server; f->srv.greeting and .listen_delay_ms, when set
 * (after srv_reset), are kept. */
static void srv_reset(struct fixture *f)
{
	memset(&f->srv, 0, sizeof(f->srv));
}

static void srv_start(struct fixture *f, srv_script script, const char *arg)
{
	struct srv *s = &f->srv;
	const char *greeting = s->greeting;
	int delay = s->listen_delay_ms;

	memset(s, 0, sizeof(*s));
	s->greeting = greeting;
	s->listen_delay_ms = delay;
	s->lfd = s->cfd = -1;
	s->script = script;
	s->arg = arg;
	snprintf(s->dir, sizeof(s->dir), "/tmp/ferry-qmp-test-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/qmp.sock", s->dir);
	if (!s->listen_delay_ms) {
		s->lfd = srv_listen(s);
		assert_true(s->lfd >= 0);
	}
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	s->running = 1;
}

static void srv_cleanup(struct srv *s)
{
	int i;

	if (!s->running)
		return;
	pthread_join(s->th, NULL);
	s->running = 0;
	if (s->lfd >= 0)
		close(s->lfd);
	for (i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	unlink(s->path);
	rmdir(s->dir);
}

/* Close the client, join the server and fail on any server-side check. */
static void srv_finish(struct fixture *f)
{
	char fail[sizeof(f->srv.fail)];

	qmp_close(f->q);
	f->q = NULL;
	srv_cleanup(&f->srv);
	snprintf(fail, sizeof(fail), "%s", f->srv.fail);
	srv_reset(f);
	if (fail[0])
		fail_msg("fake server: %s", fail);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->qemu = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int st;

	qmp_close(f->q);
	srv_cleanup(&f->srv);
	if (f->qemu > 0) {
		kill(f->qemu, SIGKILL);
		waitpid(f->qemu, &st, 0);
	}
	if (f->qdir[0]) {
		char p[128];

		snprintf(p, sizeof(p), "%s/qmp.sock", f->qdir);
		unlink(p);
		rmdir(f->qdir);
	}
	free(f);
	return 0;
}

static void connect_ok(struct fixture *f)
{
	struct qmp_error err;
	int rc = qmp_connect(f->srv.path, 5000, &f->q, &err);

	if (rc)
		fail_msg("qmp_connect: %d %s: %s", rc, err.cls, err.desc);
	assert_non_null(f->q);
}

/* ---- scripts -------------------------------------------------------------- */

static void script_idle(struct srv *s)
{
	srv_wait_close(s);
}

static void script_interleaved(struct srv *s)
{
	struct json_object *o = srv_expect(s, "query-status");
	char first_id[64];

	SCHECK(s, o && !json_object_object_get_ex(o, "arguments", NULL));
	json_object_put(o);
	snprintf(first_id, sizeof(first_id), "%s", s->id);
	srv_sendf(s, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n");
	/* The reply in two pieces, the second glued to an event. */
	srv_sendf(s, "{\"return\": {\"status\": \"pau");
	ms_sleep(30);
	srv_sendf(s, "sed\", \"running\": false}, \"id\": \"%s\"}\r\n"
		     "{\"event\": \"RESUME\", \"data\": {\"x\": 1}, "
		     "\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 999999}}\r\n",
		  s->id);
	o = srv_expect(s, "echo");
	SCHECK(s, o && json_object_get_int(json_object_object_get(
			       json_object_object_get(o, "arguments"), "a")) == 1);
	SCHECK(s, strcmp(first_id, s->id) != 0);
	json_object_put(o);
	srv_reply(s, "[1, 2, 3]");
	srv_wait_close(s);
}

static void script_error_reply(struct srv *s)
{
	json_object_put(srv_expect(s, "nope"));
	srv_sendf(s, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
		     "\"The command nope has not been found\"}, \"id\": \"%s\"}\r\n",
		  s->id);
	json_object_put(srv_expect(s, "query-status"));
	srv_reply(s, "{\"status\": \"running\"}");
	srv_wait_close(s);
}

static void script_hangup_midline(struct srv *s)
{
	json_object_put(srv_expect(s, "query-status"));
	srv_sendf(s, "{\"return\": {\"sta");
	/* returning closes the connection */
}

static void script_hangup_after_event(struct srv *s)
{
	json_object_put(srv_expect(s, "quit"));
	srv_reply(s, "{}");
	srv_sendf(s, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false}, "
		     "\"timestamp\": {\"seconds\": 5, \"microseconds\": 6}}\r\n");
}

/* A line of exactly n bytes (plus '\n') holding a reply to the last id. */
static void send_line_of(struct srv *s, size_t n, int newline)
{
	char head[128];
	size_t hl, tl = 2; /* the closing "}" after the string */
	char *line = malloc(n + 1);

	SCHECK(s, line != NULL);
	if (!line)
		return;
	hl = (size_t)snprintf(head, sizeof(head), "{\"id\": \"%s\", \"return\": \"", s->id);
	memcpy(line, head, hl);
	memset(line + hl, 'a', n - hl - tl);
	memcpy(line + n - tl, "\"}", tl);
	line[n] = '\n';
	srv_send_raw(s, line, n + (newline ? 1 : 0));
	free(line);
}

static void script_big_lines(struct srv *s)
{
	json_object_put(srv_expect(s, "big"));
	send_line_of(s, QMP_MAX_LINE, 1); /* exactly at the limit: fine */
	json_object_put(srv_expect(s, "bigger"));
	send_line_of(s, QMP_MAX_LINE + 10, 0); /* over it, no newline */
	srv_wait_close(s);
}

static void script_bad_line(struct srv *s)
{
	json_object_put(srv_expect(s, "query-status"));
	srv_sendf(s, "%s\r\n", s->arg);
	srv_wait_close(s);
}

static void script_wrong_ids(struct srv *s)
{
	json_object_put(srv_expect(s, "query-status"));
	srv_sendf(s, "{\"return\": {\"wrong\": 1}, \"id\": \"ferry-999\"}\r\n"
		     "{\"return\": {\"wrong\": 2}}\r\n"
		     "{\"return\": {\"wrong\": 3}, \"id\": 42}\r\n"
		     "{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": \"other\"}\r\n"
		     "\r\n");
	srv_reply(s, "{\"right\": true}");
	srv_wait_close(s);
}

static void script_events(struct srv *s)
{
	srv_sendf(s, "{\"event\": \"A\", \"timestamp\": {\"seconds\": 0, \"microseconds\": 1}}\r\n"
		     "{\"event\": \"B\", \"timestamp\": {\"seconds\": 0, \"microseconds\": 2}}\r\n");
	ms_sleep(20);
	srv_sendf(s, "{\"event\": \"A\", \"timestamp\": {\"seconds\": 0, \"microseconds\": 3}}\r\n");
	srv_wait_close(s);
}

static void script_event_then_garbage(struct srv *s)
{
	srv_sendf(s, "{\"event\": \"A\", \"timestamp\": {\"seconds\": 0, \"microseconds\": 1}}\r\n"
		     "{\"event\": \r\n");
	srv_wait_close(s);
}

static void script_overflow(struct srv *s)
{
	char *buf = malloc(5001 * 96);
	size_t n = 0;
	int i;

	SCHECK(s, buf != NULL);
	if (!buf)
		return;
	for (i = 0; i < 5000; i++)
		n += (size_t)sprintf(buf + n, "{\"event\": \"E\", \"timestamp\": "
					      "{\"seconds\": %d, \"microseconds\": 0}}\r\n", i);
	n += (size_t)sprintf(buf + n, "{\"event\": \"LAST\", \"timestamp\": "
				      "{\"seconds\": 1, \"microseconds\": 0}}\r\n");
	srv_send_raw(s, buf, n);
	free(buf);
	srv_wait_close(s);
}

static void script_late_reply(struct srv *s)
{
	char first[64];

	json_object_put(srv_expect(s, "slow"));
	snprintf(first, sizeof(first), "%s", s->id);
	/* Answer only once the next command is in, the first one late. */
	json_object_put(srv_expect(s, "fast"));
	srv_sendf(s, "{\"return\": {\"n\": 1}, \"id\": \"%s\"}\r\n", first);
	srv_reply(s, "{\"n\": 2}");
	srv_wait_close(s);
}

static void script_getfd(struct srv *s)
{
	struct json_object *o = srv_expect(s, "getfd");
	char b[32] = "";
	ssize_t n = -1;

	SCHECK(s, o && !strcmp(json_object_get_string(json_object_object_get(
				       json_object_object_get(o, "arguments"), "fdname")),
			       "mig"));
	json_object_put(o);
	SCHECK(s, s->nfds == 1);
	if (s->nfds == 1)
		n = pread(s->fds[0], b, sizeof(b) - 1, 0);
	SCHECK(s, n == 13 && !memcmp(b, "ferry-fd-test", 13));
	srv_reply(s, "{}");
	/* A command without fd must not bring one. */
	json_object_put(srv_expect(s, "query-status"));
	SCHECK(s, s->nfds == 1);
	srv_reply(s, "{}");
	srv_wait_close(s);
}

static void script_pump(struct srv *s)
{
	ms_sleep(50);
	srv_sendf(s, "{\"event\": \"P\", \"timestamp\": {\"seconds\": 2, \"microseconds\": 0}}\r\n");
	json_object_put(srv_expect(s, "hangup"));
	srv_reply(s, "{}");
	/* returning hangs up */
}

/* ---- tests ------------------------------------------------------------------ */

static void test_connect_and_idle(void **state)
{
	struct fixture *f = *state;
	struct qmp_event ev;
	uint64_t t0;

	srv_start(f, script_idle, NULL);
	connect_ok(f);
	assert_true(qmp_fd(f->q) >= 0);
	assert_string_equal(qmp_last_error(f->q), "");
	assert_int_equal(qmp_take_event(f->q, NULL, &ev), -EAGAIN);
	assert_int_equal(qmp_pump(f->q, 20), 0);
	t0 = time_mono_ms();
	assert_int_equal(qmp_wait_event(f->q, "STOP", 150, &ev), -ETIMEDOUT);
	assert_true(time_mono_ms() - t0 >= 140);
	assert_true(time_mono_ms() - t0 < 3000);
	assert_non_null(strstr(qmp_last_error(f->q), "no STOP event within 150 ms"));
	assert_null(ev.data);
	/* A timeout leaves the handle usable. */
	assert_int_equal(qmp_wait_event(f->q, NULL, 0, &ev), -ETIMEDOUT);
	srv_finish(f);
}

static void test_connect_retry_and_failures(void **state)
{
	struct fixture *f = *state;
	struct qmp_error err;
	struct qmp *q = (struct qmp *)&err;
	char longpath[200];
	uint64_t t0;

	/* The socket appears only 300 ms after the connect starts. */
	srv_reset(f);
	f->srv.listen_delay_ms = 300;
	srv_start(f, script_idle, NULL);
	t0 = time_mono_ms();
	connect_ok(f);
	assert_true(time_mono_ms() - t0 >= 250);
	srv_finish(f);

	/* Nobody there at all. */
	t0 = time_mono_ms();
	errno = 4242;
	assert_int_equal(qmp_connect("/tmp/ferry-qmp-test-does-not-exist/qmp.sock", 200, &q, &err),
			 -ETIMEDOUT);
	assert_int_equal(errno, 4242);
	assert_null(q);
	assert_true(time_mono_ms() - t0 >= 190);
	assert_string_equal(err.cls, "LocalError");
	assert_non_null(strstr(err.desc, "cannot connect"));

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(qmp_connect(longpath, 100, &q, &err), -ENAMETOOLONG);
	assert_int_equal(qmp_connect(NULL, 100, &q, &err), -EINVAL);

	/* Connected, but no greeting ever comes (another client holds QEMU). */
	srv_reset(f);
	f->srv.greeting = "";
	srv_start(f, NULL, NULL);
	assert_int_equal(qmp_connect(f->srv.path, 200, &q, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.desc, "no QMP greeting"));
	srv_finish(f);

	/* Something that is not a QMP greeting. */
	srv_reset(f);
	f->srv.greeting = "{\"hello\": 1}\n";
	srv_start(f, NULL, NULL);
	assert_int_equal(qmp_connect(f->srv.path, 2000, &q, &err), -EPROTO);
	assert_non_null(strstr(err.desc, "not a greeting"));
	srv_finish(f);
}

static void test_reply_with_interleaved_event(void **state)
{
	struct fixture *f = *state;
	struct json_object *ret = NULL, *args;
	struct qmp_error err;
	struct qmp_event ev;

	srv_start(f, script_interleaved, NULL);
	connect_ok(f);
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, &ret, &err, 5000), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(ret, "status")), "paused");
	json_object_put(ret);

	/* Both events are queued: the one before the reply and the one glued
	 * behind it, without any further read. */
	assert_int_equal(qmp_take_event(f->q, "RESUME", &ev), 0);
	assert_string_equal(ev.name, "RESUME");
	assert_true(ev.ts_us == 1700000000999999ull);
	assert_int_equal(json_object_get_int(json_object_object_get(ev.data, "x")), 1);
	qmp_event_clear(&ev);
	assert_null(ev.data);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_take_event(f->q, NULL, &ev), 0);
	assert_string_equal(ev.name, "STOP");
	assert_true(ev.ts_us == 1000002ull);
	assert_null(ev.data);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_take_event(f->q, NULL, &ev), -EAGAIN);

	args = json_object_new_object();
	json_object_object_add(args, "a", json_object_new_int(1));
	assert_int_equal(qmp_execute(f->q, "echo", args, &ret, &err, 5000), 0);
	/* args is only borrowed */
	assert_int_equal(json_object_get_int(json_object_object_get(args, "a")), 1);
	json_object_put(args);
	assert_true(json_object_is_type(ret, json_type_array));
	assert_int_equal(json_object_array_length(ret), 3);
	json_object_put(ret);
	srv_finish(f);
}

static void test_error_reply(void **state)
{
	struct fixture *f = *state;
	struct json_object *ret = (struct json_object *)state;
	struct qmp_error err;

	srv_start(f, script_error_reply, NULL);
	connect_ok(f);
	errno = 777;
	assert_int_equal(qmp_execute(f->q, "nope", NULL, &ret, &err, 5000), -EREMOTEIO);
	assert_int_equal(errno, 777);
	assert_null(ret);
	assert_string_equal(err.cls, "CommandNotFound");
	assert_string_equal(err.desc, "The command nope has not been found");
	/* still usable */
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, NULL, &err, 5000), 0);
	srv_finish(f);
}

static void test_hangup_midline(void **state)
{
	struct fixture *f = *state;
	struct qmp_error err;
	struct qmp_event ev;
	char reason[512];

	srv_start(f, script_hangup_midline, NULL);
	connect_ok(f);
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, NULL, &err, 5000), -EPIPE);
	assert_string_equal(err.cls, "LocalError");
	assert_non_null(strstr(qmp_last_error(f->q), "QEMU closed the QMP socket mid-line"));
	assert_string_equal(err.desc, qmp_last_error(f->q));
	snprintf(reason, sizeof(reason), "%s", qmp_last_error(f->q));
	/* dead from now on, with the reason kept */
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, NULL, &err, 5000), -EPIPE);
	assert_int_equal(qmp_wait_event(f->q, NULL, 5000, &ev), -EPIPE);
	assert_int_equal(qmp_pump(f->q, 5000), -EPIPE);
	assert_string_equal(qmp_last_error(f->q), reason);
	assert_string_equal(err.desc, reason);
	srv_finish(f);
}

static void test_hangup_keeps_queued_events(void **state)
{
	struct fixture *f = *state;
	struct qmp_event ev;

	srv_start(f, script_hangup_after_event, NULL);
	connect_ok(f);
	assert_int_equal(qmp_execute(f->q, "quit", NULL, NULL, NULL, 5000), 0);
	assert_int_equal(qmp_wait_event(f->q, "SHUTDOWN", 5000, &ev), 0);
	assert_true(ev.ts_us == 5000006ull);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_wait_event(f->q, NULL, 5000, &ev), -EPIPE);
	assert_string_equal(qmp_last_error(f->q), "QEMU closed the QMP socket");
	srv_finish(f);
}

static void test_line_limit(void **state)
{
	struct fixture *f = *state;
	struct json_object *ret = NULL;
	struct qmp_error err;
	char reason[128];

	srv_start(f, script_big_lines, NULL);
	connect_ok(f);
	assert_int_equal(qmp_execute(f->q, "big", NULL, &ret, &err, 10000), 0);
	assert_true(json_object_get_string_len(ret) > QMP_MAX_LINE - 64);
	json_object_put(ret);
	assert_int_equal(qmp_execute(f->q, "bigger", NULL, &ret, &err, 10000), -EMSGSIZE);
	assert_null(ret);
	snprintf(reason, sizeof(reason), "QMP line longer than %d bytes", QMP_MAX_LINE);
	assert_string_equal(qmp_last_error(f->q), reason);
	assert_string_equal(qmp_last_error(f->q), "QMP line longer than 1048576 bytes");
	assert_int_equal(qmp_execute(f->q, "again", NULL, NULL, &err, 1000), -EPIPE);
	assert_string_equal(err.desc, reason);
	srv_finish(f);
}

static void test_invalid_json(void **state)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{ "{\"return\": }", "invalid JSON" },
		{ "{\"return\": {}", "invalid JSON" },
		{ "{\"return\": {}} trailing", "trailing data" },
		{ "[1, 2, 3]", "not a JSON object" },
		{ "\"just a string\"", "not a JSON object" },
		{ "42", "not a JSON object" },
		{ "nul", "invalid JSON" },
		{ "{\"foo\": 1}", "neither greeting, event nor reply" },
		{ "{\"event\": 5}", "malformed QMP event" },
		{ "{\"ret\x01urn\": \x7f\xff}", "invalid JSON" },
	};
	struct fixture *f = *state;
	struct qmp_error err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		srv_start(f, script_bad_line, bad[i].line);
		connect_ok(f);
		assert_int_equal(qmp_execute(f->q, "query-status", NULL, NULL, &err, 5000), -EPROTO);
		if (!strstr(qmp_last_error(f->q), bad[i].why))
			fail_msg("line %s: last error '%s' lacks '%s'", bad[i].line,
				 qmp_last_error(f->q), bad[i].why);
		assert_int_equal(qmp_execute(f->q, "query-status", NULL, NULL, &err, 100), -EPIPE);
		srv_finish(f);
	}
}

static void test_invalid_json_while_waiting_for_event(void **state)
{
	struct fixture *f = *state;
	struct qmp_event ev;

	srv_start(f, script_event_then_garbage, NULL);
	connect_ok(f);
	assert_int_equal(qmp_wait_event(f->q, "B", 5000, &ev), -EPROTO);
	assert_non_null(strstr(qmp_last_error(f->q), "invalid JSON from QEMU"));
	/* what was queued before the garbage is still there */
	assert_int_equal(qmp_take_event(f->q, "A", &ev), 0);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_wait_event(f->q, NULL, 5000, &ev), -EPIPE);
	srv_finish(f);
}

static void test_wrong_id_ignored(void **state)
{
	struct fixture *f = *state;
	struct json_object *ret = NULL;
	struct qmp_error err;

	srv_start(f, script_wrong_ids, NULL);
	connect_ok(f);
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, &ret, &err, 5000), 0);
	assert_true(json_object_get_boolean(json_object_object_get(ret, "right")));
	assert_null(json_object_object_get(ret, "wrong"));
	json_object_put(ret);
	srv_finish(f);
}

static void test_event_filter_and_timeout(void **state)
{
	struct fixture *f = *state;
	struct qmp_event ev;

	srv_start(f, script_events, NULL);
	connect_ok(f);
	assert_int_equal(qmp_wait_event(f->q, "B", 5000, &ev), 0);
	assert_true(ev.ts_us == 2);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_take_event(f->q, "A", &ev), 0);
	assert_true(ev.ts_us == 1);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_wait_event(f->q, NULL, 5000, &ev), 0);
	assert_string_equal(ev.name, "A");
	assert_true(ev.ts_us == 3);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_take_event(f->q, NULL, &ev), -EAGAIN);
	assert_int_equal(qmp_wait_event(f->q, "A", 100, &ev), -ETIMEDOUT);
	srv_finish(f);
}

static void test_event_queue_overflow(void **state)
{
	struct fixture *f = *state;
	struct qmp_event ev;
	int n = 0;

	srv_start(f, script_overflow, NULL);
	connect_ok(f);
	assert_int_equal(qmp_wait_event(f->q, "LAST", 10000, &ev), 0);
	qmp_event_clear(&ev);
	/* 5001 events into 4096 slots: E0..E904 were dropped. */
	assert_int_equal(qmp_take_event(f->q, NULL, &ev), 0);
	assert_string_equal(ev.name, "E");
	assert_true(ev.ts_us == 905ull * 1000000);
	qmp_event_clear(&ev);
	n = 1;
	while (qmp_take_event(f->q, "E", &ev) == 0) {
		qmp_event_clear(&ev);
		n++;
	}
	assert_int_equal(n, QMP_EVENT_QUEUE_MAX - 1);
	srv_finish(f);
}

static void test_timeout_then_late_reply(void **state)
{
	struct fixture *f = *state;
	struct json_object *ret = NULL;
	struct qmp_error err;

	srv_start(f, script_late_reply, NULL);
	connect_ok(f);
	assert_int_equal(qmp_execute(f->q, "slow", NULL, &ret, &err, 100), -ETIMEDOUT);
	assert_null(ret);
	assert_non_null(strstr(err.desc, "no reply to slow"));
	/* The late reply to "slow" must not be taken for the one to "fast". */
	assert_int_equal(qmp_execute(f->q, "fast", NULL, &ret, &err, 5000), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(ret, "n")), 2);
	json_object_put(ret);
	srv_finish(f);
}

static void test_execute_fd(void **state)
{
	struct fixture *f = *state;
	struct json_object *args;
	struct qmp_error err;
	char path[] = "/tmp/ferry-qmp-fd-XXXXXX";
	int fd = mkstemp(path), bad;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "ferry-fd-test", 13), 13);
	srv_start(f, script_getfd, NULL);
	connect_ok(f);
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("mig"));
	assert_int_equal(qmp_execute_fd(f->q, "getfd", args, -1, NULL, &err, 1000), -EBADF);
	assert_int_equal(qmp_execute_fd(f->q, "getfd", args, fd, NULL, &err, 5000), 0);
	/* A descriptor that is not open: refused locally, nothing sent. */
	bad = dup(fd);
	assert_true(bad >= 0);
	close(bad);
	assert_int_equal(qmp_execute_fd(f->q, "getfd", args, bad, NULL, &err, 5000), -EBADF);
	assert_non_null(strstr(err.desc, "cannot pass fd"));
	json_object_put(args);
	/* still ours */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, NULL, &err, 5000), 0);
	close(fd);
	srv_finish(f);
}

static void test_pump(void **state)
{
	struct fixture *f = *state;
	struct pollfd pfd;
	struct qmp_event ev;

	srv_start(f, script_pump, NULL);
	connect_ok(f);
	pfd.fd = qmp_fd(f->q);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(qmp_pump(f->q, 0), 0);
	assert_int_equal(qmp_take_event(f->q, "P", &ev), 0);
	assert_true(ev.ts_us == 2000000);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_pump(f->q, 0), 0);
	assert_int_equal(qmp_execute(f->q, "hangup", NULL, NULL, NULL, 5000), 0);
	/* the server hangs up after its reply */
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(qmp_pump(f->q, 1000), -EPIPE);
	assert_int_equal(qmp_pump(f->q, 1000), -EPIPE);
	srv_finish(f);
}

static void test_null_and_invalid(void **state)
{
	struct qmp_event ev = { 0 };
	struct qmp_error err;

	(void)state;
	qmp_close(NULL);
	qmp_event_clear(NULL);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_fd(NULL), -EBADF);
	assert_non_null(qmp_last_error(NULL));
	assert_int_equal(qmp_execute(NULL, "x", NULL, NULL, &err, 10), -EINVAL);
	assert_string_equal(err.cls, "LocalError");
	assert_int_equal(qmp_execute_fd(NULL, "x", NULL, 0, NULL, NULL, 10), -EINVAL);
	assert_int_equal(qmp_wait_event(NULL, NULL, 10, &ev), -EINVAL);
	assert_int_equal(qmp_take_event(NULL, NULL, &ev), -EINVAL);
	assert_int_equal(qmp_pump(NULL, 10), -EINVAL);
}

/* ---- real QEMU ------------------------------------------------------------ */

static int have_qemu(void)
{
	const char *p = getenv("PATH");
	char buf[4096];
	const char *e;
	size_t n;

	while (p && *p) {
		e = strchr(p, ':');
		n = e ? (size_t)(e - p) : strlen(p);
		snprintf(buf, sizeof(buf), "%.*s/qemu-system-x86_64", (int)n, p);
		if (n && access(buf, X_OK) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

static void test_real_qemu(void **state)
{
	struct fixture *f = *state;
	struct json_object *ret = NULL, *args;
	struct qmp_error err;
	struct qmp_event ev;
	char sock[128], chardev[160];
	const char *status;
	uint64_t deadline;
	int pfd[2], st = 0, rc;
	pid_t r;

	if (!have_qemu())
		skip();
	snprintf(f->qdir, sizeof(f->qdir), "/tmp/ferry-qmp-qemu-XXXXXX");
	assert_non_null(mkdtemp(f->qdir));
	snprintf(sock, sizeof(sock), "%s/qmp.sock", f->qdir);
	snprintf(chardev, sizeof(chardev), "unix:%s,server=on,wait=off", sock);
	f->qemu = fork();
	assert_true(f->qemu >= 0);
	if (f->qemu == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg", "-machine",
		       "pc", "-m", "64", "-display", "none", "-S", "-qmp", chardev,
		       "-nodefaults", (char *)NULL);
		_exit(127);
	}
	rc = qmp_connect(sock, 30000, &f->q, &err);
	if (rc)
		fail_msg("connect to QEMU: %d %s", rc, err.desc);

	assert_int_equal(qmp_execute(f->q, "query-status", NULL, &ret, &err, 10000), 0);
	status = json_object_get_string(json_object_object_get(ret, "status"));
	assert_true(!strcmp(status, "prelaunch") || !strcmp(status, "paused"));
	assert_false(json_object_get_boolean(json_object_object_get(ret, "running")));
	json_object_put(ret);

	assert_int_equal(qmp_execute(f->q, "no-such-command", NULL, NULL, &err, 10000), -EREMOTEIO);
	assert_string_equal(err.cls, "CommandNotFound");

	/* A big reply (the schema is a few hundred KiB on one line). */
	assert_int_equal(qmp_execute(f->q, "query-qmp-schema", NULL, &ret, &err, 10000), 0);
	assert_true(json_object_array_length(ret) > 100);
	json_object_put(ret);

	/* SCM_RIGHTS for real: getfd only succeeds if QEMU received an fd,
	 * and closefd only finds it if getfd registered it. */
	assert_int_equal(pipe(pfd), 0);
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("ferry-test"));
	assert_int_equal(qmp_execute(f->q, "getfd", args, NULL, &err, 10000), -EREMOTEIO);
	assert_int_equal(qmp_execute_fd(f->q, "getfd", args, pfd[0], NULL, &err, 10000), 0);
	assert_int_equal(qmp_execute(f->q, "closefd", args, NULL, &err, 10000), 0);
	assert_int_equal(qmp_execute(f->q, "closefd", args, NULL, &err, 10000), -EREMOTEIO);
	json_object_put(args);
	close(pfd[0]);
	close(pfd[1]);

	assert_int_equal(qmp_execute(f->q, "cont", NULL, NULL, &err, 10000), 0);
	assert_int_equal(qmp_wait_event(f->q, "RESUME", 10000, &ev), 0);
	assert_true(ev.ts_us + 60000000ull > time_real_us() && ev.ts_us < time_real_us() + 60000000ull);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_execute(f->q, "query-status", NULL, &ret, &err, 10000), 0);
	assert_true(json_object_get_boolean(json_object_object_get(ret, "running")));
	json_object_put(ret);

	assert_int_equal(qmp_execute(f->q, "quit", NULL, NULL, &err, 10000), 0);
	assert_int_equal(qmp_wait_event(f->q, "SHUTDOWN", 10000, &ev), 0);
	qmp_event_clear(&ev);
	assert_int_equal(qmp_wait_event(f->q, "NEVER", 10000, &ev), -EPIPE);

	deadline = time_mono_ms() + 10000;
	while ((r = waitpid(f->qemu, &st, WNOHANG)) == 0 && time_mono_ms() < deadline)
		ms_sleep(20);
	assert_int_equal(r, f->qemu);
	f->qemu = -1;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_null_and_invalid),
		T(test_connect_and_idle),
		T(test_connect_retry_and_failures),
		T(test_reply_with_interleaved_event),
		T(test_error_reply),
		T(test_hangup_midline),
		T(test_hangup_keeps_queued_events),
		T(test_line_limit),
		T(test_invalid_json),
		T(test_invalid_json_while_waiting_for_event),
		T(test_wrong_id_ignored),
		T(test_event_filter_and_timeout),
		T(test_event_queue_overflow),
		T(test_timeout_then_late_reply),
		T(test_execute_fd),
		T(test_pump),
		T(test_real_qemu),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
