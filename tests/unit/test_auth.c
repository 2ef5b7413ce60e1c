/* Peer identity and sealed frames: the TLS 1.3 handshake in lab (PSK) and
 * certificate mode between two threads over a socketpair, its refusals (wrong
 * key, name not in peers:, wrong node, other CA, expired or misnamed
 * certificate, insecure_transport on one side only), the cluster key file,
 * and the AEAD: a tampered, replayed, reordered or cross-stream frame never
 * opens. */
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
#include "transport/peer.h"
#include "transport/pki.h"
#include "transport/seal.h"
#include "transport/tls.h"

static uint8_t key_a[32], key_b[32];
static char pki_dir[64];

struct side {
	struct tls_ident *id;
	int fd, is_server, ret;
	const char *expect;
	struct tls_session s;
	char reason[300];
};

static void *run_side(void *arg)
{
	struct side *s = arg;

	s->ret = tls_handshake(s->id, s->fd, s->is_server, s->expect, 3000, &s->s, s->reason,
			       sizeof(s->reason));
	return NULL;
}

static struct tls_ident *ident(const char *node, const uint8_t *psk, const char *cert_dir,
			       int insecure)
{
	static const char *const peers[] = {"alpha", "beta"};
	struct tls_ident_cfg c = {.node = node, .psk = psk, .psk_len = 32, .peers = peers,
				  .npeers = 2, .insecure = insecure};
	char ca[128], crt[128], key[128], reason[300];
	struct tls_ident *id = NULL;

	if (cert_dir) {
		snprintf(ca, sizeof(ca), "%s/ca.crt", cert_dir);
		snprintf(crt, sizeof(crt), "%s/node.crt", cert_dir);
		snprintf(key, sizeof(key), "%s/node.key", cert_dir);
		c.ca = ca;
		c.cert = crt;
		c.key = key;
	}
	assert_int_equal(tls_ident_new(&c, &id, reason, sizeof(reason)), 0);
	return id;
}

/* Handshake between srv and cli; fds closed afterwards. */
static void pair(struct side *srv, struct side *cli)
{
	pthread_t ts, tc;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	srv->fd = sv[0];
	cli->fd = sv[1];
	srv->is_server = 1;
	cli->is_server = 0;
	assert_int_equal(pthread_create(&ts, NULL, run_side, srv), 0);
	assert_int_equal(pthread_create(&tc, NULL, run_side, cli), 0);
	pthread_join(ts, NULL);
	pthread_join(tc, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void done(struct side *a, struct side *b)
{
	tls_session_free(&a->s);
	tls_session_free(&b->s);
	tls_ident_free(a->id);
	tls_ident_free(b->id);
}

static void test_psk_ok(void **state)
{
	struct side srv = {.id = ident("beta", key_a, NULL, 0)};
	struct side cli = {.id = ident("alpha", key_a, NULL, 0), .expect = "beta"};
	struct seal_stream ks, kc;

	(void)state;
	pair(&srv, &cli);
	assert_int_equal(srv.ret, 0);
	assert_int_equal(cli.ret, 0);
	assert_string_equal(srv.s.peer, "alpha");
	assert_string_equal(cli.s.peer, "beta");
	assert_int_not_equal(srv.s.aead, SEAL_NONE);
	assert_int_equal(tls_stream_keys(&srv.s, 7, &ks), 0);
	assert_int_equal(tls_stream_keys(&cli.s, 7, &kc), 0);
	assert_memory_equal(ks.tx.key, kc.rx.key, SEAL_KEY_LEN);
	assert_memory_equal(ks.rx.iv, kc.tx.iv, SEAL_IV_LEN);
	assert_memory_not_equal(ks.tx.key, ks.rx.key, SEAL_KEY_LEN);
	done(&srv, &cli);
}

static void test_psk_wrong_key(void **state)
{
	struct side srv = {.id = ident("beta", key_a, NULL, 0)};
	struct side cli = {.id = ident("alpha", key_b, NULL, 0)};

	(void)state;
	pair(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_int_not_equal(cli.ret, 0);
	assert_non_null(strstr(srv.reason, "wrong cluster key"));
	done(&srv, &cli);
}

static void test_not_in_peers(void **state)
{
	struct side srv = {.id = ident("beta", key_a, NULL, 0)};
	struct side cli = {.id = ident("mallory", key_a, NULL, 0)};

	(void)state;
	pair(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_non_null(strstr(srv.reason, "not in our peers list"));
	assert_int_equal(cli.ret, -EACCES);
	assert_non_null(strstr(cli.reason, "refused us"));
	done(&srv, &cli);
}

static void test_wrong_node(void **state)
{
	struct side srv = {.id = ident("beta", key_a, NULL, 0)};
	struct side cli = {.id = ident("alpha", key_a, NULL, 0), .expect = "alpha"};

	(void)state;
	pair(&srv, &cli);
	assert_int_equal(cli.ret, -EACCES);
	assert_non_null(strstr(cli.reason, "expected alpha"));
	done(&srv, &cli);
}

static void test_insecure_mismatch(void **state)
{
	struct side srv = {.id = ident("beta", key_a, NULL, 1)};
	struct side cli = {.id = ident("alpha", key_a, NULL, 0)};

	(void)state;
	pair(&srv, &cli);
	assert_int_not_equal(srv.ret, 0);
	assert_non_null(strstr(srv.reason, "insecure_transport"));
	assert_int_not_equal(cli.ret, 0);
	done(&srv, &cli);
}

static void cert_dir(char *out, size_t len, const char *what)
{
	snprintf(out, len, "%s/%s", pki_dir, what);
}

static void test_cert_modes(void **state)
{
	char a[96], b[96], wrong[96], other[96], expired[96];
	struct side srv, cli;

	(void)state;
	cert_dir(a, sizeof(a), "alpha");
	cert_dir(b, sizeof(b), "beta");
	cert_dir(wrong, sizeof(wrong), "wrongname");
	cert_dir(other, sizeof(other), "otherca-alpha");
	cert_dir(expired, sizeof(expired), "expired-alpha");

	srv = (struct side){.id = ident("beta", NULL, b, 0)};
	cli = (struct side){.id = ident("alpha", NULL, a, 0), .expect = "beta"};
	pair(&srv, &cli);
	assert_int_equal(srv.ret, 0);
	assert_int_equal(cli.ret, 0);
	assert_string_equal(srv.s.peer, "alpha");
	done(&srv, &cli);

	/* A valid certificate of the cluster, for another name. */
	srv = (struct side){.id = ident("beta", NULL, b, 0)};
	cli = (struct side){.id = ident("alpha", NULL, wrong, 0)};
	pair(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_non_null(strstr(srv.reason, "does not name it"));
	done(&srv, &cli);

	srv = (struct side){.id = ident("beta", NULL, b, 0)};
	cli = (struct side){.id = ident("alpha", NULL, other, 0)};
	pair(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_non_null(strstr(srv.reason, "certificate"));
	assert_int_not_equal(cli.ret, 0);
	done(&srv, &cli);

	srv = (struct side){.id = ident("beta", NULL, b, 0)};
	cli = (struct side){.id = ident("alpha", NULL, expired, 0)};
	pair(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_non_null(strstr(srv.reason, "expired"));
	done(&srv, &cli);

	/* The same, the other way round: the client checks the server. */
	srv = (struct side){.id = ident("beta", NULL, expired, 0)};
	cli = (struct side){.id = ident("alpha", NULL, a, 0)};
	pair(&srv, &cli);
	assert_int_equal(cli.ret, -EACCES);
	assert_non_null(strstr(cli.reason, "expired"));
	done(&srv, &cli);
}

/* ---- sealing ------------------------------------------------------------ */

static void keys(struct seal_stream *s, uint32_t sid)
{
	memset(s, 0, sizeof(*s));
	s->tx.aead = s->rx.aead = seal_cpu_has_aes() ? SEAL_AES256GCM : SEAL_CHACHA20;
	s->tx.stream_id = s->rx.stream_id = sid;
	memset(s->tx.key, 0x11 + (int)sid, SEAL_KEY_LEN);
	memset(s->tx.iv, 0x22, SEAL_IV_LEN);
	s->rx = s->tx;
}

/* A sealed DATA frame of stream sid carrying text, sequence seq. */
static size_t make(const struct seal_key *k, uint32_t sid, uint64_t seq, const char *text,
		   uint8_t *out)
{
	size_t n = strlen(text);
	struct frame_hdr h = {FRAME_VERSION, FRAME_DATA, 0, sid, (uint32_t)n, (uint32_t)n, 0};
	ssize_t len;

	frame_hdr_encode(&h, out);
	memcpy(out + FRAME_HDR_LEN, text, n);
	h.crc = frame_crc(out, out + FRAME_HDR_LEN, n);
	frame_hdr_encode(&h, out);
	len = seal_frame(k, seq, out);
	assert_true(len == (ssize_t)(FRAME_HDR_LEN + n + FRAME_TAG_LEN));
	/* Guest bytes never appear in clear. */
	assert_null(memmem(out, (size_t)len, text, n));
	return (size_t)len;
}

static int open_copy(const struct seal_key *k, uint64_t seq, const uint8_t *fr, size_t len)
{
	uint8_t buf[256];
	struct frame_hdr h;

	memcpy(buf, fr, len);
	if (frame_hdr_decode(buf, FRAME_HDR_LEN, &h) < 0)
		return -EPROTO;
	return seal_open(k, seq, &h, buf, buf + FRAME_HDR_LEN);
}

static void test_seal(void **state)
{
	struct seal_stream s1, s2;
	uint8_t f0[128], f1[128], bad[128];
	size_t l0, l1;
	struct frame_hdr h;

	(void)state;
	keys(&s1, 1);
	keys(&s2, 2);
	l0 = make(&s1.tx, 1, 0, "guest page zero", f0);
	l1 = make(&s1.tx, 1, 1, "guest page one!", f1);

	/* In order: both open, to the right bytes. */
	memcpy(bad, f0, l0);
	assert_int_equal(frame_hdr_decode(bad, FRAME_HDR_LEN, &h), 0);
	assert_int_equal(seal_open(&s1.rx, 0, &h, bad, bad + FRAME_HDR_LEN), 0);
	assert_memory_equal(bad + FRAME_HDR_LEN, "guest page zero", 15);
	assert_int_equal(open_copy(&s1.rx, 1, f1, l1), 0);

	/* Tampered: each byte of header, payload and tag in turn. */
	for (size_t i = 0; i < l0; i++) {
		memcpy(bad, f0, l0);
		bad[i] ^= 0x01;
		assert_int_not_equal(open_copy(&s1.rx, 0, bad, l0), 0);
	}
	/* Replayed: frame 0 again where 1 is due. */
	assert_int_equal(open_copy(&s1.rx, 1, f0, l0), -EBADMSG);
	/* Reordered: frame 1 first. */
	assert_int_equal(open_copy(&s1.rx, 0, f1, l1), -EBADMSG);
	assert_non_null(strstr(frame_strerror_last(), "failed authentication"));
	/* Moved to another stream, with or without its header rewritten. */
	assert_int_equal(open_copy(&s2.rx, 0, f0, l0), -EBADMSG);
	memcpy(bad, f0, l0);
	bad[7] = 2;
	assert_int_equal(open_copy(&s2.rx, 0, bad, l0), -EBADMSG);
	/* Stripped of its seal: an unsealed frame on a sealed link. */
	memcpy(bad, f0, l0);
	bad[3] &= (uint8_t)~FRAME_F_SEALED;
	assert_int_equal(open_copy(&s1.rx, 0, bad, l0), -EBADMSG);
}

/* The set-up path over a socketpair: a replayed frame is refused. */
static void test_peer_msg_replay(void **state)
{
	struct peer_link a = {0}, b = {0};
	uint8_t copy[256];
	struct frame_hdr h;
	char buf[256];
	int sv[2];
	ssize_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a.fd = sv[0];
	b.fd = sv[1];
	keys(&a.ctl, PEER_CTL_STREAM);
	keys(&b.ctl, PEER_CTL_STREAM);
	assert_int_equal(peer_send_msg(&a, FRAME_CONTROL, "{\"op\":\"prepare\"}", 16, 1000), 0);
	n = recv(b.fd, copy, sizeof(copy), MSG_PEEK);
	assert_true(n == FRAME_HDR_LEN + 16 + FRAME_TAG_LEN);
	assert_int_equal(peer_recv_msg(&b, 1000, &h, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{\"op\":\"prepare\"}");
	/* An attacker on the wire sends the same frame again. */
	assert_int_equal(send(a.fd, copy, (size_t)n, 0), n);
	assert_int_equal(peer_recv_msg(&b, 1000, &h, buf, sizeof(buf)), -EBADMSG);
	close(sv[0]);
	close(sv[1]);
}

/* ---- key file ----------------------------------------------------------- */

static void write_file(const char *path, const char *data, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
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

	/* base64 of 48 bytes, as `openssl rand -base64 48` writes it */
	write_file(path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n", 0600);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), 0);
	assert_int_equal(len, 48);
	assert_int_equal(key[47], 47);

	/* hex of 32 bytes */
	write_file(path, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0600);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), 0);
	assert_int_equal(len, 32);
	assert_int_equal(key[31], 31);
	/* the same, readable by others: refused, naming the fix */
	assert_int_equal(chmod(path, 0644), 0);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -EPERM);
	assert_non_null(strstr(reason, "make it 0600"));

	/* 24 bytes of base64 and a pass phrase: refused, saying why */
	write_file(path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\n", 0600);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -EINVAL);
	assert_non_null(strstr(reason, "at least 32 random bytes"));
	write_file(path, "correct horse battery staple, a long pass phrase\n", 0600);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -EINVAL);

	write_file(path, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 0600);
	len = 31;
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -EFBIG);

	unlink(path);
	len = sizeof(key);
	assert_int_equal(auth_load_key(path, key, &len, reason, sizeof(reason)), -ENOENT);
	assert_non_null(strstr(reason, "cannot open"));

	len = sizeof(key);
	assert_int_equal(auth_load_key(dir, key, &len, reason, sizeof(reason)), -EINVAL);
	rmdir(dir);
}

static int setup_pki(void **state)
{
	char ca[96], ca2[96], out[96], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(key_a); i++) {
		key_a[i] = (uint8_t)(i * 7 + 1);
		key_b[i] = (uint8_t)(i * 7 + 2);
	}
	snprintf(pki_dir, sizeof(pki_dir), "/tmp/ferry-pki-test-XXXXXX");
	assert_non_null(mkdtemp(pki_dir));
	snprintf(ca, sizeof(ca), "%s/ca", pki_dir);
	snprintf(ca2, sizeof(ca2), "%s/ca2", pki_dir);
	assert_int_equal(pki_init_ca(ca, PKI_CA_DAYS, err, sizeof(err)), 0);
	assert_int_equal(pki_init_ca(ca, PKI_CA_DAYS, err, sizeof(err)), -EEXIST);
	assert_int_equal(pki_init_ca(ca2, PKI_CA_DAYS, err, sizeof(err)), 0);
	cert_dir(out, sizeof(out), "alpha");
	assert_int_equal(pki_issue(ca, "alpha", out, 1, err, sizeof(err)), 0);
	cert_dir(out, sizeof(out), "beta");
	assert_int_equal(pki_issue(ca, "beta", out, 1, err, sizeof(err)), 0);
	cert_dir(out, sizeof(out), "wrongname");
	assert_int_equal(pki_issue(ca, "mallory", out, 1, err, sizeof(err)), 0);
	cert_dir(out, sizeof(out), "otherca-alpha");
	assert_int_equal(pki_issue(ca2, "alpha", out, 1, err, sizeof(err)), 0);
	/* Trusts the real CA but holds a certificate of the other one. */
	{
		char src[128], dst[128], cmd[300];

		snprintf(src, sizeof(src), "%s/ca.crt", ca);
		snprintf(dst, sizeof(dst), "%s/otherca-alpha/ca.crt", pki_dir);
		snprintf(cmd, sizeof(cmd), "cp %s %s", src, dst);
		assert_int_equal(system(cmd), 0);
	}
	cert_dir(out, sizeof(out), "expired-alpha");
	assert_int_equal(pki_issue(ca, "alpha", out, 0, err, sizeof(err)), 0);
	return 0;
}

static int teardown_pki(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", pki_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_key),
		cmocka_unit_test(test_seal),
		cmocka_unit_test(test_peer_msg_replay),
		cmocka_unit_test(test_psk_ok),
		cmocka_unit_test(test_psk_wrong_key),
		cmocka_unit_test(test_not_in_peers),
		cmocka_unit_test(test_wrong_node),
		cmocka_unit_test(test_insecure_mismatch),
		cmocka_unit_test(test_cert_modes),
	};

	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
