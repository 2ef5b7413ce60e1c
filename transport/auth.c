/* The lab-mode cluster key file: reading, decoding, and the node name
 * alphabet the handshake enforces. */
#include "transport/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* A key file is a few dozen bytes; refuse to slurp something huge that was
 * named by mistake. */
#define AUTH_KEY_FILE_MAX (64 * 1024)

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
 * operators, and the peer's arrives before it is checked: a small alphabet
 * keeps a hostile peer from forging log fields or terminal escapes. */
static int name_char_ok(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
	       ch == ':' || ch == '@';
}

int auth_name_ok(const char *name)
{
	size_t n = name ? strnlen(name, AUTH_NAME_LEN) : 0;

	if (n == 0 || n >= AUTH_NAME_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok((unsigned char)name[i]))
			return 0;
	return 1;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int decode_hex(const uint8_t *in, size_t n, uint8_t *out, size_t *out_len, size_t cap)
{
	if (n % 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (hexval(in[i]) < 0)
			return -EINVAL;
	if (n / 2 > cap)
		return -EFBIG;
	for (size_t i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(hexval(in[2 * i]) << 4 | hexval(in[2 * i + 1]));
	*out_len = n / 2;
	return 0;
}

static int decode_b64(const uint8_t *in, size_t n, uint8_t *out, size_t *out_len, size_t cap)
{
	uint8_t *tmp;
	size_t pad = 0;
	int got;

	if (n % 4 || n > AUTH_KEY_FILE_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];

		if (c == '=' && i >= n - 2)
			pad++;
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '+' || c == '/') || pad)
			return -EINVAL;
	}
	tmp = malloc(n / 4 * 3 + 1);
	if (!tmp)
		return -ENOMEM;
	got = EVP_DecodeBlock(tmp, in, (int)n);
	if (got < 0 || (size_t)got < pad) {
		free(tmp);
		return -EINVAL;
	}
	got -= (int)pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	if ((size_t)got > cap) {
		OPENSSL_cleanse(tmp, n / 4 * 3 + 1);
		free(tmp);
		return -EFBIG;
	}
	memcpy(out, tmp, (size_t)got);
	*out_len = (size_t)got;
	OPENSSL_cleanse(tmp, n / 4 * 3 + 1);
	free(tmp);
	return 0;
}

int auth_decode_key(const uint8_t *text, size_t n, uint8_t *key, size_t *key_len, size_t cap)
{
	int r = decode_hex(text, n, key, key_len, cap);

	if (r == -EINVAL)
		r = decode_b64(text, n, key, key_len, cap);
	if (r == 0 && *key_len < AUTH_KEY_MIN) {
		OPENSSL_cleanse(key, *key_len);
		r = -EINVAL;
	}
	return r;
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
	/* Whoever can read the cluster key can join the cluster as any node
	 * (lab mode): a key others may read is refused, naming the fix. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		ret = -EPERM;
		put_reason(reason, reason_len,
			   "cluster key file %s is mode %04o: it is a secret, make it 0600 (chmod 600 %s)", path,
			   (unsigned)(st.st_mode & 07777), path);
		goto cleanup;
	}

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
	ret = auth_decode_key(buf, n, key, key_len, cap);
	if (ret == -EFBIG)
		put_reason(reason, reason_len,
			   "cluster key in %s decodes to more than the %zu bytes we accept", path, cap);
	else if (ret == -EINVAL)
		put_reason(reason, reason_len,
			   "cluster key in %s must be hex or base64 of at least %d random bytes "
			   "(make one with: openssl rand -base64 48)", path, AUTH_KEY_MIN);
cleanup:
	if (buf) {
		OPENSSL_cleanse(buf, AUTH_KEY_FILE_MAX + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}
