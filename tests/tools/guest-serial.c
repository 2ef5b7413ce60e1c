/*
 * guest-serial - talk to the ferry test guest over its serial socket.
 *
 *   guest-serial --socket PATH [--timeout SEC] [--send LINE]...
 *                --expect PREFIX [--expect-any PREFIX]... [--fail PREFIX]...
 *                [--verbose]
 *
 * Connects to QEMU's serial chardev (a unix socket server), sends each
 * --send line, then reads lines until one starts with an expected prefix
 * (printed, exit 0), or with a --fail prefix (printed, exit 1), or the
 * deadline passes (exit 3). A connection error exits 2; bad usage 64.
 *
 * QEMU serves one client at a time on a chardev socket: a second
 * guest-serial waits (and may time out) while another one is connected.
 * The guest only hears what is sent after it connects, so a line printed
 * earlier (the READY banner) is found in the chardev's logfile instead.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_PREFIXES 16
#define LINE_MAX_LEN 4096

enum { EXIT_MATCH = 0, EXIT_FAIL = 1, EXIT_CONNECT = 2, EXIT_TIMEOUT = 3,
       EXIT_USAGE = 64 };

struct prefixes {
	const char *v[MAX_PREFIXES];
	int n;
};

static int add_prefix(struct prefixes *p, const char *s)
{
	if (p->n == MAX_PREFIXES) {
		fprintf(stderr, "guest-serial: too many prefixes (max %d)\n",
			MAX_PREFIXES);
		return -1;
	}
	p->v[p->n++] = s;
	return 0;
}

static int starts_with_any(const char *line, const struct prefixes *p)
{
	for (int i = 0; i < p->n; i++)
		if (strncmp(line, p->v[i], strlen(p->v[i])) == 0)
			return 1;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "guest-serial: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "guest-serial: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "guest-serial: cannot connect to %s: %s\n", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* One complete line (without "\r\n") against the prefixes; -1 if neither. */
static int judge(const char *line, const struct prefixes *expect,
		 const struct prefixes *fail)
{
	if (starts_with_any(line, expect)) {
		printf("%s\n", line);
		return EXIT_MATCH;
	}
	if (starts_with_any(line, fail)) {
		printf("%s\n", line);
		return EXIT_FAIL;
	}
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: guest-serial --socket PATH [--timeout SEC] [--send LINE]...\n"
		"                    --expect PREFIX [--expect-any PREFIX]...\n"
		"                    [--fail PREFIX]... [--verbose]\n"
		"exit: 0 expected line seen, 1 fail line seen, 2 cannot connect,\n"
		"      3 timeout, 64 usage\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "send", required_argument, NULL, 'S' },
		{ "expect", required_argument, NULL, 'e' },
		{ "expect-any", required_argument, NULL, 'e' },
		{ "fail", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct prefixes expect = { 0 }, fail = { 0 }, sends = { 0 };
	const char *path = NULL;
	double timeout = 30;
	int verbose = 0, fd = -1, rc = EXIT_TIMEOUT, c;
	char line[LINE_MAX_LEN];
	size_t len = 0;
	long long deadline;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 's':
			path = optarg;
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (*end || timeout <= 0) {
				fprintf(stderr, "guest-serial: bad --timeout %s\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'S':
			if (add_prefix(&sends, optarg))
				return EXIT_USAGE;
			break;
		case 'e':
			if (add_prefix(&expect, optarg))
				return EXIT_USAGE;
			break;
		case 'f':
			if (add_prefix(&fail, optarg))
				return EXIT_USAGE;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!path || !expect.n || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	deadline = now_ms() + (long long)(timeout * 1000);
	fd = connect_unix(path);
	if (fd < 0)
		return EXIT_CONNECT;
	for (int i = 0; i < sends.n; i++) {
		int err = send_all(fd, sends.v[i], strlen(sends.v[i]));

		if (!err)
			err = send_all(fd, "\n", 1);
		if (err) {
			fprintf(stderr, "guest-serial: send to %s: %s\n", path,
				strerror(-err));
			rc = EXIT_CONNECT;
			goto out;
		}
	}

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		char buf[1024];
		ssize_t r;
		int n;

		if (left <= 0) {
			fprintf(stderr, "guest-serial: timeout after %gs waiting "
				"for \"%s\"\n", timeout, expect.v[0]);
			rc = EXIT_TIMEOUT;
			goto out;
		}
		n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "guest-serial: poll: %s\n", strerror(errno));
			rc = EXIT_CONNECT;
			goto out;
		}
		if (n == 0)
			continue;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "guest-serial: %s closed the connection\n",
				path);
			rc = EXIT_CONNECT;
			goto out;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] == '\r')
				continue;
			if (buf[i] != '\n') {
				/* overlong lines are cut, never overflow */
				if (len < sizeof(line) - 1)
					line[len++] = buf[i];
				continue;
			}
			line[len] = '\0';
			len = 0;
			if (verbose)
				fprintf(stderr, "guest: %s\n", line);
			rc = judge(line, &expect, &fail);
			if (rc >= 0)
				goto out;
		}
	}
out:
	close(fd);
	return rc;
}
