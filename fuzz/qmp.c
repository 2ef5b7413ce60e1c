/* Fuzzes the QMP client (qmp/qmp.h) with the input as everything "QEMU"
 * says on the socket: greeting, replies, events, garbage. A thread of the
 * harness plays QEMU on a unix socket: it sends the input, then end of file,
 * and reads (and drops) the commands. The client connects, probes the
 * features (qcaps_probe, so qcaps_parse sees the replies), runs one more
 * command and takes the queued events.
 *
 * Command ids run ferry-1 (qmp_capabilities), ferry-2..5 (the probe's
 * query-version, query-commands, query-migrate-capabilities,
 * query-migrate-parameters), ferry-6 (query-status); the seeds use them.
 * Properties: every call returns (end of input means -EPIPE, never a hang);
 * an event taken has a NUL-terminated name. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <sys/un.h>

#include "fuzz/fuzz.h"
#include "qmp/qemu_caps.h"
#include "qmp/qmp.h"

static char dir[64], path[96];
static int lfd = -1;

struct qemu_side {
	const uint8_t *data;
	size_t size;
};

static void cleanup(void)
{
	if (lfd >= 0)
		close(lfd);
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	fuzz_quiet();
	snprintf(dir, sizeof(dir), "%s/ferry-fuzz-qmp.XXXXXX",
		 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* QEMU: accept one client, send the input, end of file, then drain what
 * the client sends until it closes, so its writes never fail early. */
static void *qemu_thread(void *arg)
{
	struct qemu_side *qs = arg;
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	size_t off = 0;
	char sink[4096];
	int fd;

	if (poll(&pfd, 1, 5000) != 1)
		return NULL;
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	while (off < qs->size) {
		ssize_t n = send(fd, qs->data + off, qs->size - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), 0) > 0)
		;
	close(fd);
	return NULL;
}

static void client(void)
{
	struct json_object *ret = NULL;
	struct qemu_caps caps;
	struct qmp_event ev;
	struct qmp *q = NULL;
	char err[512], desc[256];

	if (qmp_connect(path, 2000, &q, NULL) < 0) {
		fuzz_assert(q == NULL);
		return;
	}
	if (qcaps_probe(q, &caps, err, sizeof(err)) == 0) {
		qcaps_describe(&caps, desc, sizeof(desc));
		fuzz_assert(strlen(desc) < sizeof(desc));
	}
	if (qmp_call(q, "query-status", NULL, &ret, 1000, err, sizeof(err)) == 0)
		json_object_put(ret);
	(void)qmp_pump(q, 0);
	while (qmp_take_event(q, NULL, &ev) == 0) {
		fuzz_assert(strlen(ev.name) < sizeof(ev.name));
		qmp_event_clear(&ev);
	}
	if (qmp_wait_event(q, "STOP", 0, &ev) == 0)
		qmp_event_clear(&ev);
	(void)qmp_last_error(q);
	qmp_close(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qemu_side qs = {data, size};
	pthread_t t;

	if (pthread_create(&t, NULL, qemu_thread, &qs) != 0)
		return 0;
	client();
	pthread_join(t, NULL);
	return 0;
}
