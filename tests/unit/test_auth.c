/* Peer handshake: both ends over a socketpair in two threads, plus
 * hand-crafted peers that speak the wrong version, send garbage, reflect
 * our HELLO, hang up or stay silent. */
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "transport/auth.h"
#include "util/timeutil.h"

static const uint8_t key_a[] = "0123456789abcdef-cluster-key-A";
static const uint8_t key_b[] = "0123456789abcdef-cluster-key-B";
#define KEY_LEN (sizeof(key_a) - 1)

struct side {
	int fd;
	int is_server;
	const uint8_t *key;
	size_t key_len;
	const char *name;
	int timeout_ms;
	int ret;
	char peer[AUTH_NAME_LEN];
	char reason[256];
};

static void *run_side(void *arg)
{
	struct side *s = arg;

	s->ret = auth_handshake_fd(s->fd, s->key, s->key_len, s->is_server, s->name,
				   s->timeout_ms, s->peer, sizeof(s->peer), s->reason,
				   sizeof(s->reason));
	return NULL;
}

/* Runs a full handshake between two real ends; the fds stay open until both
 * returned, like two agents that close only after giving up. */
static void pair(struct side *srv, struct side *cli)
{
	pthread_t ts, tc;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	srv->fd = sv[0];
	cli->fd = sv[1];
	assert_int_equal(pthread_create(&ts, NULL, run_side, srv), 0);
	assert_int_equal(pthread_create(&tc, NULL, run_side, cli), 0);
	pthread_join(ts, NULL);
	pthread_join(tc, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void test_same_key(void **state)
{
	struct side srv = { .is_server = 1, .key = key_a, .key_len = KEY_LEN,
			    .name = "node-b.example", .timeout_ms = 5000 };
	struct side cli = { .is_server = 0, .key = key_a, .key_len = KEY_LEN,
			    .name = "node-a", .timeout_ms = 5000 };
	int sv[2];
	uint8_t after[5];

	(void)state;
	pair(&srv, &cli);
	assert_int_equal(srv.ret, 0);
	assert_int_equal(cli.ret, 0);
	assert_string_equal(srv.peer, "node-a");
	assert_string_equal(cli.peer, "node-b.example");

	/* The handshake consumes exactly its own bytes: data the peer sends
	 * right behind its PROOF stays on the socket for the frame reader. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	{
		struct side s2 = srv, c2 = cli;
		pthread_t t;

		s2.fd = sv[0];
		c2.fd = sv[1];
		assert_int_equal(pthread_create(&t, NULL, run_side, &s2), 0);
		run_side(&c2);
		assert_int_equal(write(sv[1], "FRAME", 5), 5);
		pthread_join(t, NULL);
		assert_int_equal(s2.ret, 0);
		assert_int_equal(c2.ret, 0);
		assert_int_equal(read(sv[0], after, sizeof(after)), 5);
		assert_memory_equal(after, "FRAME", 5);
	}
	close(sv[0]);
	close(sv[1]);
}

static void test_wrong_key(void **state)
{
	struct side srv = { .is_server = 1, .key = key_a, .key_len = KEY_LEN,
			    .name = "node-b", .timeout_ms = 5000 };
	struct side cli = { .is_server = 0, .key = key_b, .key_len = KEY_LEN,
			    .name = "node-a", .timeout_ms = 5000 };

	(void)state;
	pair(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_int_equal(cli.ret, -EACCES);
	assert_string_equal(srv.reason, "peer node-a failed authentication (wrong cluster key?)");
	assert_string_equal(cli.reason, "peer node-b failed authentication (wrong cluster key?)");
	assert_string_equal(srv.peer, "");
}

static void test_both_servers(void **state)
{
	struct side a = { .is_server = 1, .key = key_a, .key_len = KEY_LEN, .name = "node-a",
			  .timeout_ms = 5000 };
	struct side b = { .is_server = 1, .key = key_a, .key_len = KEY_LEN, .name = "node-b",
			  .timeout_ms = 5000 };

	(void)state;
	pair(&a, &b);
	assert_int_equal(a.ret, -EPROTO);
	assert_int_equal(b.ret, -EPROTO);
	assert_non_null(strstr(a.reason, "role server"));
}

/* ---- one real end against a scripted peer -------------------------------- */

struct scripted {
	int sv[2];
	pthread_t t;
	struct side real;
};

static void start_real(struct scripted *s, int is_server, int timeout_ms)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s->sv), 0);
	memset(&s->real, 0, sizeof(s->real));
	s->real.fd = s->sv[0];
	s->real.is_server = is_server;
	s->real.key = key_a;
	s->real.key_len = KEY_LEN;
	s->real.name = "real-node";
	s->real.timeout_ms = timeout_ms;
	assert_int_equal(pthread_create(&s->t, NULL, run_side, &s->real), 0);
}

static void finish_real(struct scripted *s)
{
	pthread_join(s->t, NULL);
	close(s->sv[0]);
	if (s->sv[1] >= 0)
		close(s->sv[1]);
}

static void read_full(int fd, uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = read(fd, buf + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
}

/* A valid HELLO from a scripted client, to be edited by the test. */
static void craft_hello(uint8_t h[AUTH_HELLO_LEN], uint16_t version, uint16_t role,
			const char *name)
{
	size_t i;

	memset(h, 0, AUTH_HELLO_LEN);
	memcpy(h, "FERRYHS", 8);
	h[8] = (uint8_t)(version >> 8);
	h[9] = (uint8_t)version;
	h[10] = (uint8_t)(role >> 8);
	h[11] = (uint8_t)role;
	for (i = 0; i < AUTH_NONCE_LEN; i++)
		h[12 + i] = (uint8_t)(i * 7 + 1);
	memcpy(h + 12 + AUTH_NONCE_LEN, name, strlen(name));
}

static void test_version_mismatch(void **state)
{
	struct scripted s;
	uint8_t h[AUTH_HELLO_LEN], theirs[AUTH_HELLO_LEN];

	(void)state;
	start_real(&s, 1, 5000);
	craft_hello(h, AUTH_VERSION + 1, AUTH_ROLE_CLIENT, "future-node");
	assert_int_equal(write(s.sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
	read_full(s.sv[1], theirs, sizeof(theirs)); /* its HELLO says our version */
	assert_int_equal(theirs[8] << 8 | theirs[9], AUTH_VERSION);
	finish_real(&s);
	assert_int_equal(s.real.ret, -EPROTONOSUPPORT);
	{
		char want[80];

		snprintf(want, sizeof(want), "peer speaks handshake version %d, we speak %d",
			 AUTH_VERSION + 1, AUTH_VERSION);
		assert_string_equal(s.real.reason, want);
	}
}

static void test_garbage(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct scripted s;
	uint64_t t0 = time_mono_ms();

	(void)state;
	/* Shorter than a HELLO: refused on the magic, not after the timeout. */
	start_real(&s, 1, 5000);
	assert_int_equal(write(s.sv[1], http, sizeof(http) - 1), (ssize_t)sizeof(http) - 1);
	finish_real(&s);
	assert_int_equal(s.real.ret, -EPROTO);
	assert_string_equal(s.real.reason, "not a ferry peer (bad magic)");
	assert_true(time_mono_ms() - t0 < 2000);

	/* Right magic, rubbish after it: bad role. */
	{
		uint8_t h[AUTH_HELLO_LEN];
		size_t i;

		for (i = 0; i < sizeof(h); i++)
			h[i] = (uint8_t)(i * 131 + 7);
		memcpy(h, "FERRYHS", 8);
		h[8] = 0;
		h[9] = AUTH_VERSION;
		start_real(&s, 1, 5000);
		assert_int_equal(write(s.sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
		finish_real(&s);
		assert_int_equal(s.real.ret, -EPROTO);
	}
	/* Valid HELLO but a name that could forge log fields. */
	{
		uint8_t h[AUTH_HELLO_LEN];

		craft_hello(h, AUTH_VERSION, AUTH_ROLE_CLIENT, "evil reason=\"ok\"");
		start_real(&s, 1, 5000);
		assert_int_equal(write(s.sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
		finish_real(&s);
		assert_int_equal(s.real.ret, -EPROTO);
		assert_non_null(strstr(s.real.reason, "invalid node name"));
	}
}

static void test_reflected_hello(void **state)
{
	struct scripted s;
	uint8_t h[AUTH_HELLO_LEN];

	(void)state;
	/* Send the real end's own HELLO straight back. */
	start_real(&s, 1, 5000);
	read_full(s.sv[1], h, sizeof(h));
	assert_int_equal(write(s.sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
	finish_real(&s);
	assert_int_equal(s.real.ret, -EPROTO);
	assert_non_null(strstr(s.real.reason, "reflected"));

	/* Reflected with the role flipped: the echoed nonce gives it away. */
	start_real(&s, 0, 5000);
	read_full(s.sv[1], h, sizeof(h));
	h[11] = AUTH_ROLE_SERVER;
	assert_int_equal(write(s.sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
	finish_real(&s);
	assert_int_equal(s.real.ret, -EPROTO);
	assert_string_equal(s.real.reason, "peer echoed our nonce (reflected HELLO)");
}

static void test_silent_peer(void **state)
{
	struct scripted s;
	uint64_t t0 = time_mono_ms(), dt;

	(void)state;
	start_real(&s, 1, 300);
	finish_real(&s);
	dt = time_mono_ms() - t0;
	assert_int_equal(s.real.ret, -ETIMEDOUT);
	assert_non_null(strstr(s.real.reason, "within 300 ms"));
	assert_true(dt >= 290 && dt < 1500);

	/* A peer that sends its HELLO and then nothing times out in PROOF,
	 * on the same overall deadline. */
	{
		uint8_t h[AUTH_HELLO_LEN];

		t0 = time_mono_ms();
		start_real(&s, 1, 300);
		craft_hello(h, AUTH_VERSION, AUTH_ROLE_CLIENT, "slow-node");
		assert_int_equal(write(s.sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
		finish_real(&s);
		dt = time_mono_ms() - t0;
		assert_int_equal(s.real.ret, -ETIMEDOUT);
		assert_non_null(strstr(s.real.reason, "PROOF"));
		assert_true(dt < 1500);
	}
}

static void test_peer_closes(void **state)
{
	struct scripted s;
	uint8_t h[AUTH_HELLO_LEN];

	(void)state;
	start_real(&s, 1, 5000);
	craft_hello(h, AUTH_VERSION, AUTH_ROLE_CLIENT, "quitter");
	assert_int_equal(write(s.sv[1], h, 50), 50);
	close(s.sv[1]);
	s.sv[1] = -1;
	finish_real(&s);
	assert_int_equal(s.real.ret, -ECONNRESET);
	assert_non_null(strstr(s.real.reason, "received 50 of 108"));
}

/* ---- the sans-IO core ---------------------------------------------------- */

static void test_core(void **state)
{
	struct auth *c = NULL, *s = NULL;
	uint8_t hc[AUTH_HELLO_LEN], hs[AUTH_HELLO_LEN], pc[AUTH_PROOF_LEN], ps[AUTH_PROOF_LEN];
	char longname[80];

	(void)state;
	assert_int_equal(auth_new(&c, key_a, KEY_LEN, 0, "alpha"), 0);
	assert_int_equal(auth_new(&s, key_a, KEY_LEN, 1, "beta"), 0);
	auth_hello(c, hc);
	auth_hello(s, hs);
	assert_int_equal(AUTH_HELLO_LEN, 108);
	assert_memory_equal(hc, "FERRYHS\0", 8);
	assert_int_equal(auth_check_proof(c, ps), -EINVAL); /* out of order */
	auth_free(c);
	assert_int_equal(auth_new(&c, key_a, KEY_LEN, 0, "alpha"), 0);
	auth_hello(c, hc);
	assert_int_equal(auth_on_peer_hello(c, hs), 0);
	assert_int_equal(auth_on_peer_hello(s, hc), 0);
	assert_string_equal(auth_peer_name(c), "beta");
	assert_string_equal(auth_peer_name(s), "alpha");
	auth_proof(c, pc);
	auth_proof(s, ps);
	/* Proofs are role-bound: the server's proof is not the client's. */
	assert_memory_not_equal(pc, ps, AUTH_PROOF_LEN);
	/* Replaying the client's own proof back to it fails. */
	assert_int_equal(auth_check_proof(c, pc), -EACCES);
	auth_free(c);
	assert_int_equal(auth_check_proof(s, pc), 0);
	assert_string_equal(auth_reason(s), "");
	auth_free(s);

	/* Bad local settings. */
	assert_int_equal(auth_new(&c, key_a, 15, 0, "alpha"), -EINVAL);
	assert_int_equal(auth_new(&c, key_a, KEY_LEN, 0, ""), -EINVAL);
	assert_int_equal(auth_new(&c, key_a, KEY_LEN, 0, "has space"), -EINVAL);
	memset(longname, 'x', sizeof(longname));
	longname[63] = '\0';
	assert_int_equal(auth_new(&c, key_a, KEY_LEN, 0, longname), 0);
	auth_free(c);
	longname[63] = 'x';
	longname[64] = '\0';
	assert_int_equal(auth_new(&c, key_a, KEY_LEN, 0, longname), -EINVAL);
	assert_null(c);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load_key(void **state)
{
	char dir[] = "/tmp/ferry-auth-test-XXXXXX", path[128], reason[256];
	uint8_t key[AUTH_KEY_MAX];
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);

	write_file(path, "0123456789abcdefXYZ \n\n", 22, 0600);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), 0);
	assert_int_equal(len, 19);
	assert_memory_equal(key, "0123456789abcdefXYZ", 19);

	/* World-readable: accepted, warned about in the log. */
	write_file(path, "0123456789abcdef", 16, 0644);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), 0);
	assert_int_equal(len, 16);

	write_file(path, "short-key\n", 10, 0600);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -EINVAL);
	assert_non_null(strstr(reason, "cluster key"));
	assert_non_null(strstr(reason, "too short"));

	write_file(path, "0123456789abcdef0123", 20, 0600);
	len = 18;
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -EFBIG);

	unlink(path);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -ENOENT);
	assert_non_null(strstr(reason, "cannot open"));

	len = sizeof(key);
	assert_int_equal(auth_load_key(dir, key, &len, reason, sizeof(reason)), -EINVAL);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core),
		cmocka_unit_test(test_load_key),
		cmocka_unit_test(test_same_key),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_both_servers),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_reflected_hello),
		cmocka_unit_test(test_silent_peer),
		cmocka_unit_test(test_peer_closes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
