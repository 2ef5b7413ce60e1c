#include "transport/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/ratelimit.h"
#include "util/timeutil.h"

#define HELLO_LEN (8 + 2 + 1 + 1 + AUTH_NAME_LEN) /* magic ver flags 0 name */
#define HELLO_F_INSECURE 0x1u
#define HELLO_F_NO_AES 0x2u
#define REFUSE_MAX 240
#define EXPORT_LABEL "EXPORTER-ferry-stream-v1"

struct tls_ident {
	pthread_mutex_t mu;
	SSL_CTX *ctx; /* swapped by reload; each SSL holds its own reference */
	char node[AUTH_NAME_LEN];
	char *ca, *cert, *key;
	uint8_t psk[AUTH_KEY_MAX];
	size_t psk_len;
	char (*peers)[AUTH_NAME_LEN];
	size_t npeers;
	int insecure, has_aes;
};

__attribute__((format(printf, 3, 4)))
static void put_reason(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* The most telling OpenSSL error text ("certificate has expired"), clears
 * the queue. */
static const char *ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, len, "%s", r ? r : "TLS handshake failed");
	ERR_clear_error();
	return buf;
}

/* ---- PSK (lab mode) ------------------------------------------------------ */

static SSL_SESSION *psk_session(SSL *ssl, const struct tls_ident *id)
{
	const unsigned char aes256[2] = {0x13, 0x02}; /* TLS_AES_256_GCM_SHA384 */
	const SSL_CIPHER *c = SSL_CIPHER_find(ssl, aes256);
	SSL_SESSION *s = SSL_SESSION_new();

	if (!s || !c || !SSL_SESSION_set1_master_key(s, id->psk, id->psk_len) ||
	    !SSL_SESSION_set_cipher(s, c) || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) ||
	    !SSL_SESSION_set1_id_context(s, (const unsigned char *)"ferry", 5)) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **idp, size_t *idlen,
		      SSL_SESSION **sess)
{
	const struct tls_ident *id = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	SSL_SESSION *s = psk_session(ssl, id);

	if (!s)
		return 0;
	if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
		SSL_SESSION_free(s);
		*sess = NULL;
		return 1;
	}
	*idp = (const unsigned char *)TLS_PSK_IDENTITY;
	*idlen = strlen(TLS_PSK_IDENTITY);
	*sess = s;
	return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *ident, size_t ilen, SSL_SESSION **sess)
{
	const struct tls_ident *id = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	*sess = NULL;
	if (ilen != strlen(TLS_PSK_IDENTITY) || memcmp(ident, TLS_PSK_IDENTITY, ilen))
		return 1; /* unknown identity: no PSK, the handshake fails */
	*sess = psk_session(ssl, id);
	return *sess ? 1 : 0;
}

/* ---- context ------------------------------------------------------------- */

static SSL_CTX *build_ctx(struct tls_ident *id, char *reason, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	char e[160];

	if (!ctx) {
		put_reason(reason, len, "cannot create a TLS context: %s", ssl_err_text(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* Nothing but our frames may follow the handshake on the socket. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_read_ahead(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_app_data(ctx, id);
	/* Verification with a PSK "session" needs one, though nothing is cached. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"ferry", 5);
	if (!id->cert) {
		SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384");
		SSL_CTX_set_psk_use_session_callback(ctx, psk_use_cb);
		SSL_CTX_set_psk_find_session_callback(ctx, psk_find_cb);
		/* No CA is loaded: a server that skips the PSK and shows a
		 * certificate instead fails verification. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		return ctx;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, id->cert) != 1) {
		put_reason(reason, len, "cannot load certificate %s: %s", id->cert,
			   ssl_err_text(e, sizeof(e)));
		goto out_free_ctx;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, id->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		put_reason(reason, len, "cannot load key %s for certificate %s: %s", id->key, id->cert,
			   ssl_err_text(e, sizeof(e)));
		goto out_free_ctx;
	}
	if (SSL_CTX_load_verify_locations(ctx, id->ca, NULL) != 1) {
		put_reason(reason, len, "cannot load CA certificate %s: %s", id->ca,
			   ssl_err_text(e, sizeof(e)));
		goto out_free_ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
out_free_ctx:
	SSL_CTX_free(ctx);
	return NULL;
}

static char *dup_opt(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int tls_ident_new(const struct tls_ident_cfg *cfg, struct tls_ident **out, char *reason,
		  size_t len)
{
	struct tls_ident *id = calloc(1, sizeof(*id));

	if (!id)
		return -ENOMEM;
	pthread_mutex_init(&id->mu, NULL);
	snprintf(id->node, sizeof(id->node), "%s", cfg->node);
	id->insecure = cfg->insecure;
	id->has_aes = seal_cpu_has_aes();
	if (cfg->cert && *cfg->cert) {
		id->cert = dup_opt(cfg->cert);
		id->key = dup_opt(cfg->key);
		id->ca = dup_opt(cfg->ca);
		if (!id->cert || !id->key || !id->ca) {
			put_reason(reason, len, "tls needs ca, cert and key");
			tls_ident_free(id);
			return -EINVAL;
		}
	} else {
		if (cfg->psk_len < AUTH_KEY_MIN || cfg->psk_len > AUTH_KEY_MAX) {
			put_reason(reason, len, "cluster key must be %d..%d random bytes, got %zu",
				   AUTH_KEY_MIN, AUTH_KEY_MAX, cfg->psk_len);
			tls_ident_free(id);
			return -EINVAL;
		}
		memcpy(id->psk, cfg->psk, cfg->psk_len);
		id->psk_len = cfg->psk_len;
	}
	id->peers = calloc(cfg->npeers ? cfg->npeers : 1, sizeof(*id->peers));
	if (!id->peers) {
		tls_ident_free(id);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->npeers; i++)
		snprintf(id->peers[i], AUTH_NAME_LEN, "%s", cfg->peers[i]);
	id->npeers = cfg->npeers;
	id->ctx = build_ctx(id, reason, len);
	if (!id->ctx) {
		tls_ident_free(id);
		return -EINVAL;
	}
	log_info("tls", "event=transport_ready mode=%s sealed=%d aead=%s aes_instructions=%d",
		 id->cert ? "certificate" : "psk", !id->insecure,
		 id->insecure ? "none" : seal_aead_name(id->has_aes ? SEAL_AES256GCM : SEAL_CHACHA20),
		 id->has_aes);
	*out = id;
	return 0;
}

int tls_ident_reload(struct tls_ident *id, char *reason, size_t len)
{
	SSL_CTX *ctx, *old;

	if (!id->cert)
		return 0;
	ctx = build_ctx(id, reason, len);
	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&id->mu);
	old = id->ctx;
	id->ctx = ctx;
	pthread_mutex_unlock(&id->mu);
	SSL_CTX_free(old);
	return 0;
}

void tls_ident_free(struct tls_ident *id)
{
	if (!id)
		return;
	SSL_CTX_free(id->ctx);
	free(id->ca);
	free(id->cert);
	free(id->key);
	free(id->peers);
	OPENSSL_cleanse(id->psk, sizeof(id->psk));
	pthread_mutex_destroy(&id->mu);
	free(id);
}

const char *tls_ident_node(const struct tls_ident *id) { return id->node; }
int tls_ident_insecure(const struct tls_ident *id) { return id->insecure; }
int tls_ident_cert_mode(const struct tls_ident *id) { return id->cert != NULL; }

static int is_peer(const struct tls_ident *id, const char *name)
{
	for (size_t i = 0; i < id->npeers; i++)
		if (!strcmp(id->peers[i], name))
			return 1;
	return 0;
}

/* 1 if name is one of the certificate's SAN dNSNames, byte for byte. */
static int cert_names(X509 *cert, const char *name)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int dl;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		dl = ASN1_STRING_length(g->d.dNSName);
		found = dl == (int)strlen(name) && !memcmp(d, name, (size_t)dl);
	}
	GENERAL_NAMES_free(gens);
	return found;
}

/* ---- driving SSL on a non-blocking socket --------------------------------- */

enum step { STEP_HANDSHAKE, STEP_READ, STEP_WRITE };

/* Runs one SSL step to completion against the deadline. >= 0 (bytes for
 * read/write), or -errno with reason. */
static int drive(SSL *ssl, int fd, enum step st, void *buf, int n, uint64_t deadline,
		 char *reason, size_t len)
{
	char e[160];

	for (;;) {
		int r = st == STEP_HANDSHAKE ? SSL_do_handshake(ssl) :
			st == STEP_READ ? SSL_read(ssl, buf, n) : SSL_write(ssl, buf, n);
		int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
		struct pollfd pfd = {.fd = fd};
		int64_t left = (int64_t)(deadline - time_mono_ms());

		if (err == SSL_ERROR_NONE)
			return r;
		if (err == SSL_ERROR_WANT_READ)
			pfd.events = POLLIN;
		else if (err == SSL_ERROR_WANT_WRITE)
			pfd.events = POLLOUT;
		else if (err == SSL_ERROR_ZERO_RETURN ||
			 (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)) {
			put_reason(reason, len, "peer closed the link during the handshake");
			return -ECONNRESET;
		} else {
			long v = SSL_get_verify_result(ssl);

			/* UNSPECIFIED: no certificate was verified at all (PSK). */
			if (v != X509_V_OK && v != X509_V_ERR_UNSPECIFIED)
				put_reason(reason, len, "peer certificate refused: %s",
					   X509_verify_cert_error_string(v));
			else
				put_reason(reason, len, "%s", ssl_err_text(e, sizeof(e)));
			ERR_clear_error();
			return -EACCES;
		}
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			put_reason(reason, len, "handshake timed out");
			return -ETIMEDOUT;
		}
	}
}

static void hello_encode(const struct tls_ident *id, uint8_t out[HELLO_LEN])
{
	memset(out, 0, HELLO_LEN);
	memcpy(out, TLS_HELLO_MAGIC, 8);
	out[8] = TLS_PROTO_VERSION >> 8;
	out[9] = TLS_PROTO_VERSION & 0xff;
	out[10] = (uint8_t)((id->insecure ? HELLO_F_INSECURE : 0) | (id->has_aes ? 0 : HELLO_F_NO_AES));
	memcpy(out + 12, id->node, strnlen(id->node, AUTH_NAME_LEN - 1));
}

/* Checks the peer's HELLO against our rules; fills s->peer and s->aead.
 * 0 or -errno with reason. */
static int hello_check(const struct tls_ident *id, SSL *ssl, const uint8_t *in, int n,
		       const char *expect, struct tls_session *s, char *reason, size_t len)
{
	char name[AUTH_NAME_LEN];
	unsigned ver;

	if (n != HELLO_LEN || memcmp(in, TLS_HELLO_MAGIC, 8)) {
		put_reason(reason, len, "not a ferry peer (bad HELLO)");
		return -EPROTO;
	}
	ver = (unsigned)in[8] << 8 | in[9];
	if (ver != TLS_PROTO_VERSION) {
		put_reason(reason, len, "peer speaks protocol %u, we speak %u", ver, TLS_PROTO_VERSION);
		return -EPROTO;
	}
	memcpy(name, in + 12, AUTH_NAME_LEN);
	name[AUTH_NAME_LEN - 1] = '\0';
	if (!auth_name_ok(name) || strnlen((const char *)in + 12, AUTH_NAME_LEN) >= AUTH_NAME_LEN) {
		put_reason(reason, len, "peer sent a malformed node name");
		return -EPROTO;
	}
	snprintf(s->peer, sizeof(s->peer), "%s", name);
	if (!is_peer(id, name)) {
		put_reason(reason, len, "node %s is not in our peers list", name);
		return -EACCES;
	}
	if (expect && strcmp(expect, name)) {
		put_reason(reason, len, "reached node %s, expected %s", name, expect);
		return -EACCES;
	}
	if (id->cert) {
		X509 *pc = SSL_get0_peer_certificate(ssl);

		if (!pc || !cert_names(pc, name)) {
			put_reason(reason, len, "certificate of node %s does not name it (no SAN DNS:%s)",
				   name, name);
			return -EACCES;
		}
	} else if (!SSL_session_reused(ssl)) {
		put_reason(reason, len, "peer did not use the cluster key");
		return -EACCES;
	}
	if (!!(in[10] & HELLO_F_INSECURE) != !!id->insecure) {
		put_reason(reason, len, "node %s %s insecure_transport, we %s", name,
			   id->insecure ? "does not use" : "uses", id->insecure ? "do" : "do not");
		return -EPROTO;
	}
	s->aead = id->insecure ? SEAL_NONE :
		  (id->has_aes && !(in[10] & HELLO_F_NO_AES)) ? SEAL_AES256GCM : SEAL_CHACHA20;
	return 0;
}

static int exchange_hellos(struct tls_ident *id, SSL *ssl, int fd, int is_server,
			   const char *expect, uint64_t dl, struct tls_session *s, char *reason,
			   size_t len)
{
	uint8_t mine[HELLO_LEN], buf[8 + REFUSE_MAX + 1];
	int r, n;

	hello_encode(id, mine);
	if (!is_server) {
		r = drive(ssl, fd, STEP_WRITE, mine, HELLO_LEN, dl, reason, len);
		if (r < 0)
			return r;
	}
	n = drive(ssl, fd, STEP_READ, buf, (int)sizeof(buf) - 1, dl, reason, len);
	if (n < 0)
		return n;
	if (!is_server && n >= 8 && !memcmp(buf, TLS_REFUSE_MAGIC, 8)) {
		buf[n] = '\0';
		for (int i = 8; i < n; i++)
			if (buf[i] < 0x20 || buf[i] > 0x7e)
				buf[i] = '?';
		put_reason(reason, len, "peer refused us: %s", (char *)buf + 8);
		return -EACCES;
	}
	r = hello_check(id, ssl, buf, n, is_server ? NULL : expect, s, reason, len);
	if (is_server) {
		uint8_t ref[8 + REFUSE_MAX];
		size_t rl = 8;

		if (r < 0) {
			memcpy(ref, TLS_REFUSE_MAGIC, 8);
			char ignored[160];

			memcpy(ref, TLS_REFUSE_MAGIC, 8);
			snprintf((char *)ref + 8, REFUSE_MAX, "%s", reason);
			rl += strlen((char *)ref + 8);
			(void)drive(ssl, fd, STEP_WRITE, ref, (int)rl, dl, ignored, sizeof(ignored));
			return r;
		}
		return drive(ssl, fd, STEP_WRITE, mine, HELLO_LEN, dl, reason, len) < 0 ? -ECONNRESET : 0;
	}
	return r;
}

int tls_handshake(struct tls_ident *id, int fd, int is_server, const char *expect,
		  int timeout_ms, struct tls_session *out, char *reason, size_t len)
{
	uint64_t dl = time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int fl = fcntl(fd, F_GETFL), r;
	SSL *ssl;

	memset(out, 0, sizeof(*out));
	reason[0] = '\0';
	pthread_mutex_lock(&id->mu);
	ssl = SSL_new(id->ctx);
	pthread_mutex_unlock(&id->mu);
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		put_reason(reason, len, "out of memory for a TLS session");
		return -ENOMEM;
	}
	/* Lab mode: only the client insists on the PSK (no CA loaded). */
	if (is_server && !id->cert)
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if (is_server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	r = drive(ssl, fd, STEP_HANDSHAKE, NULL, 0, dl, reason, len);
	if (r == -EACCES) {
		char what[300];

		snprintf(what, sizeof(what), "authentication failed: %s%s", reason,
			 id->cert ? "" : " (wrong cluster key?)");
		put_reason(reason, len, "%s", what);
	}
	if (r >= 0)
		r = exchange_hellos(id, ssl, fd, is_server, expect, dl, out, reason, len);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (r < 0) {
		/* Anyone who can connect provokes a refusal: as the server, at
		 * most 5 lines a second, the next one counting the rest. */
		static struct ratelimit refused_rl = RATELIMIT_INIT(5, 1000);
		unsigned suppressed = 0;

		if (!is_server || ratelimit_allow(&refused_rl, time_mono_ms(), &suppressed))
			log_warn("tls", "event=auth_refused role=%s peer=%s suppressed=%u reason=\"%s\"",
				 is_server ? "server" : "client", out->peer[0] ? out->peer : "-", suppressed,
				 log_q(reason));
		SSL_free(ssl);
		memset(out, 0, sizeof(*out));
		return r;
	}
	out->ssl = ssl;
	out->is_server = is_server;
	log_debug("tls", "event=auth_ok role=%s peer=%s aead=%s", is_server ? "server" : "client",
		  out->peer, seal_aead_name(out->aead));
	return 0;
}

int tls_stream_keys(const struct tls_session *s, uint32_t stream_id, struct seal_stream *out)
{
	/* client->server key | iv, then server->client key | iv */
	uint8_t km[2 * (SEAL_KEY_LEN + SEAL_IV_LEN)];
	uint8_t ctx[4] = {(uint8_t)(stream_id >> 24), (uint8_t)(stream_id >> 16),
			  (uint8_t)(stream_id >> 8), (uint8_t)stream_id};
	struct seal_key *c2s = s->is_server ? &out->rx : &out->tx;
	struct seal_key *s2c = s->is_server ? &out->tx : &out->rx;

	memset(out, 0, sizeof(*out));
	out->tx.stream_id = out->rx.stream_id = stream_id;
	out->tx.aead = out->rx.aead = s->aead;
	if (s->aead == SEAL_NONE)
		return 0;
	if (!s->ssl || SSL_export_keying_material(s->ssl, km, sizeof(km), EXPORT_LABEL,
						  strlen(EXPORT_LABEL), ctx, sizeof(ctx), 1) != 1)
		return -EIO;
	memcpy(c2s->key, km, SEAL_KEY_LEN);
	memcpy(c2s->iv, km + SEAL_KEY_LEN, SEAL_IV_LEN);
	memcpy(s2c->key, km + SEAL_KEY_LEN + SEAL_IV_LEN, SEAL_KEY_LEN);
	memcpy(s2c->iv, km + 2 * SEAL_KEY_LEN + SEAL_IV_LEN, SEAL_IV_LEN);
	OPENSSL_cleanse(km, sizeof(km));
	return 0;
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	SSL_free(s->ssl);
	s->ssl = NULL;
}

void tls_probe_ktls(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = -1, e = 0;

	/* The ULP attaches only to a connected socket; ENOTCONN means the
	 * module is there, ENOENT that it is not. */
	if (fd >= 0) {
		r = setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls"));
		e = errno;
		close(fd);
	}
	log_info("tls", "event=ktls_probe available=%d detail=\"%s\" used=0", r == 0 || e == ENOTCONN,
		 r == 0 ? "ok" : strerror(e));
}
