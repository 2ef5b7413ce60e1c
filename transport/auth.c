#include "transport/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/ratelimit.h"
#include "util/timeutil.h"

#define AUTH_LABEL "ferry-auth-v1"
/* A key file is a few dozen bytes; refuse to slurp something huge that was
 * named by mistake. */
#define AUTH_KEY_FILE_MAX (64 * 1024)

enum auth_state {
	AUTH_ST_NEW,      /* HELLO not yet received */
	AUTH_ST_HELLO_OK, /* peer HELLO accepted, proofs may be exchanged */
	AUTH_ST_DONE,     /* peer proved the key */
	AUTH_ST_FAILED,
};

struct auth {
	enum auth_state state;
	int err; /* -errno of the failure that put us in AUTH_ST_FAILED */
	uint16_t role;
	uint8_t key[AUTH_KEY_MAX];
	size_t key_len;
	uint8_t nonce[AUTH_NONCE_LEN];
	uint8_t name[AUTH_NAME_LEN]; /* NUL-padded, as on the wire */
	uint16_t peer_role;
	uint8_t peer_nonce[AUTH_NONCE_LEN];
	uint8_t peer_name_field[AUTH_NAME_LEN];
	char peer_name[AUTH_NAME_LEN + 1];
	char reason[256];
};

__attribute__((format(printf, 3, 4)))
static void put_reason(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Node names end up in key=value log lines and in reasons shown to
 * operators, and the peer's arrives before it is authenticated: a small
 * alphabet keeps a hostile peer from forging log fields or terminal escapes. */
static int name_char_ok(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
	       ch == ':' || ch == '@';
}

/* Checks a NUL-padded name field; 0 and the name's length in *len, or -1. */
static int name_field_ok(const uint8_t field[AUTH_NAME_LEN], size_t *len)
{
	size_t n = 0, i;

	while (n < AUTH_NAME_LEN && field[n])
		n++;
	if (n == 0 || n == AUTH_NAME_LEN)
		return -1;
	for (i = 0; i < n; i++)
		if (!name_char_ok(field[i]))
			return -1;
	/* Canonical padding: the field is authenticated byte for byte, so
	 * junk after the NUL would be accepted as part of "the same" name. */
	for (i = n; i < AUTH_NAME_LEN; i++)
		if (field[i])
			return -1;
	*len = n;
	return 0;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static const char *role_name(uint16_t role)
{
	return role == AUTH_ROLE_SERVER ? "server" : role == AUTH_ROLE_CLIENT ? "client" : "?";
}

int auth_load_key(const char *path, uint8_t *key, size_t *key_len, char *reason,
		  size_t reason_len)
{
	uint8_t *buf = NULL;
	size_t cap = *key_len, n = 0;
	struct stat st;
	int fd = -1, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		put_reason(reason, reason_len, "cannot open cluster key file %s: %s", path,
			   strerror(-ret));
		goto cleanup;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		put_reason(reason, reason_len, "cannot stat cluster key file %s: %s", path,
			   strerror(-ret));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		put_reason(reason, reason_len, "cluster key file %s is not a regular file", path);
		goto cleanup;
	}
	if (st.st_size > AUTH_KEY_FILE_MAX) {
		ret = -EFBIG;
		put_reason(reason, reason_len,
			   "cluster key file %s is %lld bytes, expected a short secret", path,
			   (long long)st.st_size);
		goto cleanup;
	}
	/* A warning, not a refusal: a key readable by others is a deployment
	 * mistake the operator should fix, but refusing would take the node
	 * out of the cluster over it. */
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		log_warn("auth", "event=key_file_permissive path=%s mode=%04o hint=\"chmod 600\"",
			 path, (unsigned)(st.st_mode & 07777));

	buf = malloc(AUTH_KEY_FILE_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		put_reason(reason, reason_len, "out of memory reading %s", path);
		goto cleanup;
	}
	/* Read to EOF rather than trusting st_size: the file may change. */
	for (;;) {
		ssize_t r = read(fd, buf + n, AUTH_KEY_FILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			put_reason(reason, reason_len, "cannot read cluster key file %s: %s",
				   path, strerror(-ret));
			goto cleanup;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > AUTH_KEY_FILE_MAX) {
			ret = -EFBIG;
			put_reason(reason, reason_len, "cluster key file %s is too large", path);
			goto cleanup;
		}
	}
	while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\n' ||
		     buf[n - 1] == '\r' || buf[n - 1] == '\v' || buf[n - 1] == '\f'))
		n--;
	if (n < AUTH_KEY_MIN) {
		ret = -EINVAL;
		put_reason(reason, reason_len,
			   "cluster key in %s too short (%zu bytes, need at least %d)", path, n,
			   AUTH_KEY_MIN);
		goto cleanup;
	}
	if (n > cap) {
		ret = -EFBIG;
		put_reason(reason, reason_len,
			   "cluster key in %s is %zu bytes, more than the %zu we accept", path, n,
			   cap);
		goto cleanup;
	}
	memcpy(key, buf, n);
	*key_len = n;
	ret = 0;
cleanup:
	if (buf) {
		OPENSSL_cleanse(buf, AUTH_KEY_FILE_MAX + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

int auth_new(struct auth **out, const uint8_t *key, size_t key_len, int is_server,
	     const char *my_name)
{
	struct auth *a = NULL;
	size_t name_len;
	int ret;

	*out = NULL;
	if (!key || key_len < AUTH_KEY_MIN || key_len > AUTH_KEY_MAX || !my_name)
		return -EINVAL;
	name_len = strlen(my_name);
	if (name_len >= AUTH_NAME_LEN)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	memcpy(a->name, my_name, name_len);
	if (name_field_ok(a->name, &name_len)) {
		ret = -EINVAL;
		goto cleanup;
	}
	memcpy(a->key, key, key_len);
	a->key_len = key_len;
	a->role = is_server ? AUTH_ROLE_SERVER : AUTH_ROLE_CLIENT;
	/* The nonces make every transcript unique, so a recorded PROOF is
	 * worthless on another connection. */
	if (RAND_bytes(a->nonce, sizeof(a->nonce)) != 1) {
		ret = -EIO;
		goto cleanup;
	}
	a->state = AUTH_ST_NEW;
	*out = a;
	a = NULL;
	ret = 0;
cleanup:
	auth_free(a);
	return ret;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

void auth_hello(struct auth *a, uint8_t out[AUTH_HELLO_LEN])
{
	uint8_t *p = out;

	memcpy(p, AUTH_MAGIC, AUTH_MAGIC_LEN); /* includes the trailing NUL */
	p += AUTH_MAGIC_LEN;
	put_be16(p, AUTH_VERSION);
	p += 2;
	put_be16(p, a->role);
	p += 2;
	memcpy(p, a->nonce, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	memcpy(p, a->name, AUTH_NAME_LEN);
}

static int fail(struct auth *a, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct auth *a, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
	va_end(ap);
	a->state = AUTH_ST_FAILED;
	a->err = err;
	return err;
}

int auth_on_peer_hello(struct auth *a, const uint8_t in[AUTH_HELLO_LEN])
{
	const uint8_t *p = in;
	uint16_t version, role;
	size_t name_len;

	if (a->state != AUTH_ST_NEW)
		return fail(a, -EINVAL, "peer HELLO handled twice");
	/* Magic first: anything else (an HTTP probe, a port scanner, QEMU
	 * pointed at the wrong port) gets a clear "not one of us". */
	if (memcmp(p, AUTH_MAGIC, AUTH_MAGIC_LEN))
		return fail(a, -EPROTO, "not a ferry peer (bad magic)");
	p += AUTH_MAGIC_LEN;
	version = (uint16_t)((p[0] << 8) | p[1]);
	p += 2;
	/* Version before anything else in the HELLO: a future version may lay
	 * the rest out differently, and "upgrade the other node" is the one
	 * useful thing to tell the operator. */
	if (version != AUTH_VERSION)
		return fail(a, -EPROTONOSUPPORT, "peer speaks handshake version %u, we speak %u",
			    version, AUTH_VERSION);
	role = (uint16_t)((p[0] << 8) | p[1]);
	p += 2;
	if (role != AUTH_ROLE_CLIENT && role != AUTH_ROLE_SERVER)
		return fail(a, -EPROTO, "peer sent invalid role %u", role);
	/* Both ends claiming the same role means either a misconfigured pair
	 * or our own HELLO reflected back at us; the proof binds the role, so
	 * refusing here closes the reflection path early and loudly. */
	if (role == a->role)
		return fail(a, -EPROTO,
			    "peer also claims role %s (reflected HELLO or both sides %s)",
			    role_name(role), a->role == AUTH_ROLE_SERVER ? "accepted" : "connected");
	if (CRYPTO_memcmp(p, a->nonce, AUTH_NONCE_LEN) == 0)
		return fail(a, -EPROTO, "peer echoed our nonce (reflected HELLO)");
	memcpy(a->peer_nonce, p, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	if (name_field_ok(p, &name_len))
		return fail(a, -EPROTO,
			    "peer sent an invalid node name (need 1-63 bytes of [A-Za-z0-9._:@-], "
			    "NUL-padded)");
	memcpy(a->peer_name_field, p, AUTH_NAME_LEN);
	memcpy(a->peer_name, p, name_len);
	a->peer_name[name_len] = '\0';
	a->peer_role = role;
	a->state = AUTH_ST_HELLO_OK;
	return 0;
}

/* HMAC over a fixed-layout transcript: every field has a fixed width, so no
 * two different transcripts serialize to the same bytes. */
static int compute_proof(const struct auth *a, uint16_t role, const uint8_t *nonce1,
			 const uint8_t *nonce2, const uint8_t *name1, const uint8_t *name2,
			 uint8_t out[AUTH_PROOF_LEN])
{
	uint8_t msg[sizeof(AUTH_LABEL) - 1 + 2 + 2 * AUTH_NONCE_LEN + 2 * AUTH_NAME_LEN];
	unsigned int out_len = 0;
	uint8_t *p = msg;
	int ret;

	memcpy(p, AUTH_LABEL, sizeof(AUTH_LABEL) - 1);
	p += sizeof(AUTH_LABEL) - 1;
	put_be16(p, role);
	p += 2;
	memcpy(p, nonce1, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	memcpy(p, nonce2, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	memcpy(p, name1, AUTH_NAME_LEN);
	p += AUTH_NAME_LEN;
	memcpy(p, name2, AUTH_NAME_LEN);

	if (!HMAC(EVP_sha256(), a->key, (int)a->key_len, msg, sizeof(msg), out, &out_len) ||
	    out_len != AUTH_PROOF_LEN)
		ret = -EIO;
	else
		ret = 0;
	OPENSSL_cleanse(msg, sizeof(msg));
	return ret;
}

void auth_proof(struct auth *a, uint8_t out[AUTH_PROOF_LEN])
{
	memset(out, 0, AUTH_PROOF_LEN);
	if (a->state != AUTH_ST_HELLO_OK) {
		if (a->state != AUTH_ST_FAILED)
			fail(a, -EINVAL, "proof requested before the peer's HELLO was accepted");
		return;
	}
	if (compute_proof(a, a->role, a->nonce, a->peer_nonce, a->name, a->peer_name_field,
			  out)) {
		memset(out, 0, AUTH_PROOF_LEN);
		fail(a, -EIO, "HMAC-SHA256 failed in the crypto library");
	}
}

int auth_check_proof(struct auth *a, const uint8_t in[AUTH_PROOF_LEN])
{
	uint8_t want[AUTH_PROOF_LEN];
	int ret;

	/* A failed handshake stays failed: its reason is the useful one. */
	if (a->state == AUTH_ST_FAILED)
		return a->err;
	if (a->state != AUTH_ST_HELLO_OK)
		return fail(a, -EINVAL, "proof checked before the peer's HELLO was accepted");
	/* The peer's transcript mirrors ours: its role, its nonce first. */
	if (compute_proof(a, a->peer_role, a->peer_nonce, a->nonce, a->peer_name_field, a->name,
			  want)) {
		ret = fail(a, -EIO, "HMAC-SHA256 failed in the crypto library");
		goto cleanup;
	}
	/* Constant time, so the comparison leaks nothing about how much of a
	 * forged proof was right. */
	if (CRYPTO_memcmp(want, in, AUTH_PROOF_LEN)) {
		ret = fail(a, -EACCES, "peer %s failed authentication (wrong cluster key?)",
			   a->peer_name);
		goto cleanup;
	}
	a->state = AUTH_ST_DONE;
	a->reason[0] = '\0';
	ret = 0;
cleanup:
	OPENSSL_cleanse(want, sizeof(want));
	return ret;
}

const char *auth_peer_name(const struct auth *a)
{
	return a->peer_name;
}

const char *auth_reason(const struct auth *a)
{
	return a->reason;
}

/* ---- blocking helper ---------------------------------------------------- */

static void peer_addr_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(buf, len, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
			snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
			snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
		size_t plen = sl > offsetof(struct sockaddr_un, sun_path)
				      ? sl - offsetof(struct sockaddr_un, sun_path)
				      : 0;

		/* Unnamed (socketpair) and abstract sockets have no printable
		 * path. */
		if (plen && un->sun_path[0])
			snprintf(buf, len, "unix:%.*s", (int)strnlen(un->sun_path, plen),
				 un->sun_path);
		else
			snprintf(buf, len, "unix");
	}
}

/*
 * Sends out[0..out_len) and receives exactly in_len bytes, both at once:
 * each side writes its message before reading the other's, and doing both
 * in one poll loop means neither side can block the other even if the
 * socket buffers were tiny. Reading exactly in_len bytes matters: the
 * frames that follow the handshake share the socket.
 */
static int exchange(int fd, const uint8_t *out, size_t out_len, uint8_t *in, size_t in_len,
		    uint64_t deadline, int timeout_ms, const char *what, int check_magic,
		    char *why, size_t why_len)
{
	size_t out_off = 0, in_off = 0;
	int out_dead = 0; /* peer hung up on our writes; keep reading what it sent */

	while ((out_off < out_len && !out_dead) || in_off < in_len) {
		struct pollfd pfd = { .fd = fd };
		int left = time_remaining_ms(deadline);
		int r;

		if (left == 0) {
			if (in_off < in_len)
				put_reason(why, why_len,
					   "peer silent: handshake not done within %d ms (%s: "
					   "received %zu of %zu bytes)",
					   timeout_ms, what, in_off, in_len);
			else
				put_reason(why, why_len,
					   "handshake not done within %d ms (%s: peer not reading, "
					   "sent %zu of %zu bytes)",
					   timeout_ms, what, out_off, out_len);
			return -ETIMEDOUT;
		}
		if (out_off < out_len && !out_dead)
			pfd.events |= POLLOUT;
		if (in_off < in_len)
			pfd.events |= POLLIN;
		r = poll(&pfd, 1, left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			put_reason(why, why_len, "poll failed: %s", strerror(-r));
			return r;
		}
		if (r == 0)
			continue; /* the deadline check above reports it */
		if (pfd.revents & POLLNVAL) {
			put_reason(why, why_len, "socket is not open");
			return -EBADF;
		}
		if (out_off < out_len && !out_dead &&
		    (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = send(fd, out + out_off, out_len - out_off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
				/* What the peer sent before hanging up (garbage,
				 * a partial HELLO) explains more than EPIPE does:
				 * read on, the recv side reports the close. */
				out_dead = 1;
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
				   errno != EINTR) {
				int e = errno;

				put_reason(why, why_len, "send failed: %s", strerror(e));
				return -e;
			} else if (n > 0) {
				out_off += (size_t)n;
			}
		}
		if (in_off < in_len && (pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
			ssize_t n = recv(fd, in + in_off, in_len - in_off, MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno == ECONNRESET)) {
				put_reason(why, why_len,
					   "peer closed the connection during the handshake (%s: "
					   "received %zu of %zu bytes; it may have refused us: check "
					   "its log)",
					   what, in_off, in_len);
				return -ECONNRESET;
			}
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				int e = errno;

				put_reason(why, why_len, "recv failed: %s", strerror(e));
				return -e;
			}
			if (n > 0) {
				size_t m = in_off + (size_t)n;

				/* Judge the magic as soon as it arrives: a peer that
				 * is not ferry may never send a whole HELLO, and
				 * should not hold us until the timeout. */
				if (check_magic && in_off < AUTH_MAGIC_LEN &&
				    memcmp(in + in_off, &AUTH_MAGIC[in_off],
					   (m < AUTH_MAGIC_LEN ? m : AUTH_MAGIC_LEN) - in_off)) {
					put_reason(why, why_len, "not a ferry peer (bad magic)");
					return -EPROTO;
				}
				in_off = m;
			}
		}
	}
	if (out_dead) {
		put_reason(why, why_len,
			   "peer closed the connection while we sent our %s (it may have refused "
			   "us: check its log)",
			   what);
		return -ECONNRESET;
	}
	return 0;
}

int auth_handshake_fd(int fd, const uint8_t *key, size_t key_len, int is_server,
		      const char *my_name, int timeout_ms, char *peer_name,
		      size_t peer_name_len, char *reason, size_t reason_len)
{
	uint8_t out[AUTH_HELLO_LEN], in[AUTH_HELLO_LEN];
	char addr[128], why[256];
	struct auth *a = NULL;
	uint64_t deadline;
	int ret;

	why[0] = '\0';
	if (peer_name && peer_name_len)
		peer_name[0] = '\0';
	peer_addr_str(fd, addr, sizeof(addr));
	if (timeout_ms <= 0) {
		ret = -EINVAL;
		snprintf(why, sizeof(why), "handshake timeout must be positive (got %d ms)",
			 timeout_ms);
		goto cleanup;
	}
	ret = auth_new(&a, key, key_len, is_server, my_name);
	if (ret == -EINVAL) {
		snprintf(why, sizeof(why),
			 "bad local settings: cluster key must be %d-%d bytes, node name 1-63 "
			 "bytes of [A-Za-z0-9._:@-]",
			 AUTH_KEY_MIN, AUTH_KEY_MAX);
		goto cleanup;
	}
	if (ret) {
		snprintf(why, sizeof(why), "cannot set up handshake: %s", strerror(-ret));
		goto cleanup;
	}
	deadline = time_mono_ms() + (uint64_t)timeout_ms;

	auth_hello(a, out);
	ret = exchange(fd, out, AUTH_HELLO_LEN, in, AUTH_HELLO_LEN, deadline, timeout_ms,
		       "HELLO", 1, why, sizeof(why));
	if (ret)
		goto cleanup;
	ret = auth_on_peer_hello(a, in);
	if (ret) {
		snprintf(why, sizeof(why), "%s", auth_reason(a));
		goto cleanup;
	}

	/* Both sides prove before either checks, so with a wrong key both
	 * learn it (each gets the other's proof) instead of one side seeing
	 * only a closed connection. */
	auth_proof(a, out);
	ret = exchange(fd, out, AUTH_PROOF_LEN, in, AUTH_PROOF_LEN, deadline, timeout_ms,
		       "PROOF", 0, why, sizeof(why));
	if (ret)
		goto cleanup;
	ret = auth_check_proof(a, in);
	if (ret) {
		snprintf(why, sizeof(why), "%s", auth_reason(a));
		goto cleanup;
	}
	if (peer_name && peer_name_len)
		snprintf(peer_name, peer_name_len, "%s", auth_peer_name(a));
	log_info("auth", "event=auth_ok peer=%s peer_addr=%s role=%s", auth_peer_name(a), addr,
		 is_server ? "server" : "client");
cleanup:
	if (ret) {
		/* Anyone who can reach the port can provoke these. */
		static struct ratelimit refused_rl = RATELIMIT_INIT(5, 1000);
		unsigned suppressed = 0;

		put_reason(reason, reason_len, "%s", why);
		if (!is_server || ratelimit_allow(&refused_rl, time_mono_ms(), &suppressed))
			log_warn("auth", "event=auth_refused peer_addr=%s peer=%s role=%s err=%d reason=\"%s\" suppressed=%u",
				 addr, a && auth_peer_name(a)[0] ? auth_peer_name(a) : "-",
				 is_server ? "server" : "client", ret, log_q(why), suppressed);
	}
	auth_free(a);
	OPENSSL_cleanse(in, sizeof(in));
	return ret;
}
