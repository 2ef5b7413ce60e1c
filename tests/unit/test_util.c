/* util/: host:port parsing, unix connects with a deadline, deadlines,
 * RFC 3339 timestamps, atomic file writes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "schema/check.h"
#include "util/fsutil.h"
#include "util/net.h"
#include "util/ratelimit.h"
#include "util/timeutil.h"

/* ---- host:port -------------------------------------------------------- */

static void expect_ok(const char *s, const char *host, int port)
{
	char h[64];
	const char *why = NULL;
	int p = -1;

	assert_int_equal(net_parse_hostport(s, h, sizeof(h), &p, &why), 0);
	assert_string_equal(h, host);
	assert_int_equal(p, port);
	assert_null(why);
}

static void expect_bad(const char *s)
{
	char h[64] = "untouched";
	const char *why = NULL;
	int p = 7;

	assert_int_equal(net_parse_hostport(s, h, sizeof(h), &p, &why), -EINVAL);
	assert_non_null(why);
	assert_true(why[0] != '\0');
	assert_string_equal(h, "untouched");
	assert_int_equal(p, 7);
	/* why is optional */
	assert_int_equal(net_parse_hostport(s, h, sizeof(h), &p, NULL), -EINVAL);
}

static void test_hostport_accepts(void **state)
{
	(void)state;
	expect_ok("127.0.0.1:7700", "127.0.0.1", 7700);
	expect_ok("node-b.example:1", "node-b.example", 1);
	expect_ok("localhost:65535", "localhost", 65535);
	expect_ok("[::1]:8443", "::1", 8443);
	expect_ok("[fe80::1%eth0]:22", "fe80::1%eth0", 22);
	expect_ok("[::]:80", "::", 80);
}

static void test_hostport_refuses(void **state)
{
	(void)state;
	expect_bad("127.0.0.1:0");      /* port 0: "any port" is no address */
	expect_bad("host:");
	expect_bad(":80");
	expect_bad("[::1]");
	expect_bad("a:b:c");
	expect_bad("::1:80");           /* v6 without brackets */
	expect_bad("localhost");
	expect_bad("");
	expect_bad("h:65536");
	expect_bad("h:99999999999999999999");
	expect_bad("h:-1");
	expect_bad("h:+80");
	expect_bad("h: 80");
	expect_bad("h:80x");
	expect_bad("[]:80");
	expect_bad("[::1:80");
	expect_bad("[::1]80");
	expect_bad("a,b:80");
	expect_bad("a b:80");
}

static void test_hostport_host_length(void **state)
{
	char h[4];
	int p;

	(void)state;
	assert_int_equal(net_parse_hostport("abc:1", h, sizeof(h), &p, NULL), 0);
	assert_string_equal(h, "abc");
	assert_int_equal(net_parse_hostport("abcd:1", h, sizeof(h), &p, NULL), -EINVAL);
	assert_int_equal(net_parse_hostport("[abcd]:1", h, sizeof(h), &p, NULL), -EINVAL);
}

/* Regression: `api_listen: "[::1]:8443"` passed config validation and then
 * failed to open, because the API split it with a second parser. The spec
 * and config code now use the same one. */
static void test_api_listen_v6_bracketed(void **state)
{
	const char *cases[] = {"[::1]:8443", "127.0.0.1:0", "host:", ":80", "[::1]", "a:b:c",
			       "10.0.0.1:7700"};
	char h1[64], h2[64];
	int p1, p2;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int a = schema_parse_hostport(cases[i], h1, sizeof(h1), &p1);
		int b = net_parse_hostport(cases[i], h2, sizeof(h2), &p2, NULL);

		assert_int_equal(a, b);
		if (!a) {
			assert_string_equal(h1, h2);
			assert_int_equal(p1, p2);
		}
	}
}

/* ---- deadlines -------------------------------------------------------- */

static void test_remaining_ms(void **state)
{
	uint64_t now = time_mono_ms();
	int r;

	(void)state;
	assert_int_equal(time_remaining_ms(0), 0);
	assert_int_equal(time_remaining_ms(now), 0);
	assert_int_equal(time_remaining_ms(now - 1), 0);
	assert_int_equal(time_remaining_ms(UINT64_MAX), -1);
	assert_int_equal(time_remaining_ms(UINT64_MAX - 1), INT_MAX);
	r = time_remaining_ms(now + 100000);
	assert_true(r > 90000 && r <= 100000);
	assert_int_equal(time_deadline_ms(-1), UINT64_MAX);
	assert_true(time_deadline_ms(0) >= now && time_deadline_ms(0) <= time_mono_ms());
	r = time_remaining_ms(time_deadline_ms(5000));
	assert_true(r > 4000 && r <= 5000);
}

static int64_t ts_ms(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_cond_deadline(void **state)
{
	const int cases[] = {0, 1, 50, 300, 999, 1000, 1001, 86400000, -1};
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct timespec ts;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct timespec before, after;

		clock_gettime(CLOCK_REALTIME, &before);
		ts = time_cond_deadline(cases[i]);
		clock_gettime(CLOCK_REALTIME, &after);
		assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
		assert_true(ts_ms(ts) >= ts_ms(before) + cases[i]);
		assert_true(ts_ms(ts) <= ts_ms(after) + cases[i]);
	}
	/* It is what pthread_cond_timedwait takes: a short wait times out. */
	ts = time_cond_deadline(20);
	pthread_mutex_lock(&mu);
	assert_int_equal(pthread_cond_timedwait(&cv, &mu, &ts), ETIMEDOUT);
	pthread_mutex_unlock(&mu);
}

/* ---- RFC 3339 --------------------------------------------------------- */

static void test_rfc3339(void **state)
{
	const uint64_t t = 1700000000123456ull; /* 2023-11-14T22:13:20.123456Z */
	char buf[40], small[21];

	(void)state;
	assert_int_equal(time_format_rfc3339(0, buf, sizeof(buf)), 20);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(time_format_rfc3339(t, buf, sizeof(buf)), 20);
	assert_string_equal(buf, "2023-11-14T22:13:20Z");
	assert_int_equal(time_format_rfc3339_ms(t, buf, sizeof(buf)), 24);
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
	assert_int_equal(time_format_rfc3339_ms(999, buf, sizeof(buf)), 24);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	assert_int_equal(time_format_rfc3339_ms(951782400999999ull, buf, sizeof(buf)), 24);
	assert_string_equal(buf, "2000-02-29T00:00:00.999Z");
	/* exactly enough room, one byte short, none */
	assert_int_equal(time_format_rfc3339(t, small, sizeof(small)), 20);
	assert_string_equal(small, "2023-11-14T22:13:20Z");
	assert_int_equal(time_format_rfc3339(t, small, sizeof(small) - 1), 0);
	assert_string_equal(small, "");
	assert_int_equal(time_format_rfc3339_ms(t, small, sizeof(small)), 0);
	assert_string_equal(small, "");
	assert_int_equal(time_format_rfc3339(t, small, 0), 0);
}

/* ---- files ------------------------------------------------------------ */

static char *read_all(const char *path, size_t *len)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	*len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int count_entries(const char *dir)
{
	char cmd[600];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

static void test_write_atomic(void **state)
{
	char dir[] = "/tmp/ferry-util-XXXXXX", path[256], cwd[PATH_MAX];
	static char big[40000];
	struct stat st;
	mode_t old_mask = umask(022);
	size_t len;
	char *got;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rec.json", dir);

	assert_int_equal(fs_write_atomic(path, "hello\n", 6, 0600), 0);
	got = read_all(path, &len);
	assert_non_null(got);
	assert_int_equal(len, 6);
	assert_string_equal(got, "hello\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(count_entries(dir), 1); /* no temp file left */

	/* replace with more, then with less: no stale tail */
	memset(big, 'x', sizeof(big));
	assert_int_equal(fs_write_atomic(path, big, sizeof(big), 0600), 0);
	got = read_all(path, &len);
	assert_int_equal(len, sizeof(big));
	assert_int_equal(fs_write_atomic(path, "{}", 2, 0600), 0);
	got = read_all(path, &len);
	assert_int_equal(len, 2);
	assert_string_equal(got, "{}");
	assert_int_equal(fs_write_atomic(path, "", 0, 0600), 0);
	got = read_all(path, &len);
	assert_int_equal(len, 0);

	/* the umask applies to the mode */
	snprintf(path, sizeof(path), "%s/spec.json", dir);
	assert_int_equal(fs_write_atomic(path, "x", 1, 0666), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	/* a missing directory fails and leaves nothing behind */
	snprintf(path, sizeof(path), "%s/no/such.json", dir);
	assert_int_equal(fs_write_atomic(path, "x", 1, 0600), -ENOENT);
	assert_int_equal(count_entries(dir), 2);

	/* a name without a directory is relative to the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(fs_write_atomic("rel.json", "r", 1, 0600), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(path, sizeof(path), "%s/rel.json", dir);
	got = read_all(path, &len);
	assert_non_null(got);
	assert_string_equal(got, "r");
	assert_int_equal(count_entries(dir), 3);

	umask(old_mask);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

static void test_write_all(void **state)
{
	static char out[200000], in[sizeof(out)];
	int pfd[2], st;
	size_t got = 0;
	pid_t pid;

	(void)state;
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	assert_int_equal(pipe(pfd), 0);
	/* more than a pipe holds, so writes are short: a child writes while
	 * this process reads */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		_exit(fs_write_all(pfd[1], out, sizeof(out)) == 0 ? 0 : 1);
	}
	close(pfd[1]);
	while (got < sizeof(in)) {
		ssize_t n = read(pfd[0], in + got, sizeof(in) - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_memory_equal(in, out, sizeof(out));
	assert_int_equal(fs_write_all(-1, "x", 1), -EBADF);
}

/* ---- unix connects ---------------------------------------------------- */

struct late_listener {
	char path[108];
	int delay_ms;
	int fd;
};

/* Binds and listens only after delay_ms, like a QEMU that is still starting. */
static void *listen_late(void *arg)
{
	struct late_listener *l = arg;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec d = {l->delay_ms / 1000, (long)(l->delay_ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd >= 0 && (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
			   listen(l->fd, 4))) {
		close(l->fd);
		l->fd = -1;
	}
	return NULL;
}

static void test_connect_unix(void **state)
{
	char dir[] = "/tmp/ferry-util-XXXXXX", longp[200], cmd[64];
	struct late_listener l = {.delay_ms = 60, .fd = -1};
	pthread_t th;
	uint64_t t0;
	int fd = -1, fl;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(l.path, sizeof(l.path), "%s/s.sock", dir);

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(net_connect_unix(longp, 0, &fd), -ENAMETOOLONG);

	/* nothing there: one attempt with 0, then the last error at the deadline */
	assert_int_equal(net_connect_unix(l.path, 0, &fd), -ENOENT);
	t0 = time_mono_ms();
	assert_int_equal(net_connect_unix(l.path, 50, &fd), -ENOENT);
	assert_true(time_mono_ms() - t0 >= 50);
	assert_int_equal(fd, -1);

	/* the socket appears while we wait */
	assert_int_equal(pthread_create(&th, NULL, listen_late, &l), 0);
	assert_int_equal(net_connect_unix(l.path, 5000, &fd), 0);
	pthread_join(th, NULL);
	assert_true(fd >= 0);
	fl = fcntl(fd, F_GETFL);
	assert_int_equal(fl & O_NONBLOCK, 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);

	/* a socket file nobody listens on refuses until the deadline */
	close(l.fd);
	assert_int_equal(net_connect_unix(l.path, 20, &fd), -ECONNREFUSED);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Refused-handshake lines: a burst per window, then a count of the rest. */
static void test_ratelimit(void **state)
{
	struct ratelimit rl = RATELIMIT_INIT(3, 1000);
	unsigned sup = 99;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_true(ratelimit_allow(&rl, 5000, &sup));
		assert_int_equal(sup, 0);
	}
	for (int i = 0; i < 10; i++)
		assert_false(ratelimit_allow(&rl, 5500, &sup));
	assert_true(ratelimit_allow(&rl, 6000, &sup));
	assert_int_equal(sup, 10);
	assert_true(ratelimit_allow(&rl, 6001, &sup));
	assert_int_equal(sup, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport_accepts),
		cmocka_unit_test(test_hostport_refuses),
		cmocka_unit_test(test_hostport_host_length),
		cmocka_unit_test(test_api_listen_v6_bracketed),
		cmocka_unit_test(test_remaining_ms),
		cmocka_unit_test(test_cond_deadline),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_write_all),
		cmocka_unit_test(test_connect_unix),
		cmocka_unit_test(test_ratelimit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
