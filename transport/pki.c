#include "transport/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/auth.h"

#define SKEW_S 3600L

/* mkdir -p, mode 0700 for what it creates. 0 or -errno. */
static int make_dir(const char *dir, char *err, size_t errlen)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			goto fail;
		*c = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
	return -errno;
}

/* Opens path for writing with mode, always as a new file: an old one is
 * removed first (unless excl, when it is an error), and the file is created
 * with O_EXCL|O_NOFOLLOW, so a file or symlink planted at the path by
 * someone else can neither be written through nor keep a key readable. */
static FILE *open_out(const char *path, mode_t mode, int excl, char *err, size_t errlen, int *r)
{
	int fd;
	FILE *f;

	if (!excl && unlink(path) < 0 && errno != ENOENT) {
		*r = -errno;
		snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0) {
		*r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return NULL;
	}
	(void)fchmod(fd, mode); /* umask may have narrowed it; keys stay 0600 */
	f = fdopen(fd, "w");
	if (!f) {
		*r = -errno;
		close(fd);
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(*r));
	}
	return f;
}

static int write_key(const char *path, EVP_PKEY *k, int excl, char *err, size_t errlen)
{
	int r = 0;
	FILE *f = open_out(path, 0600, excl, err, errlen, &r);

	if (!f)
		return r;
	if (!PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) {
		snprintf(err, errlen, "cannot write key %s", path);
		r = -EIO;
	}
	if (fclose(f) != 0 && !r) {
		snprintf(err, errlen, "cannot write key %s: %s", path, strerror(errno));
		r = -EIO;
	}
	return r;
}

static int write_cert(const char *path, X509 *c, char *err, size_t errlen)
{
	int r = 0;
	FILE *f = open_out(path, 0644, 0, err, errlen, &r);

	if (!f)
		return r;
	if (!PEM_write_X509(f, c)) {
		snprintf(err, errlen, "cannot write certificate %s", path);
		r = -EIO;
	}
	if (fclose(f) != 0 && !r)
		r = -EIO;
	return r;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return 0;
	ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok;
}

/* A certificate for key named cn, signed by (issuer, ikey), or self-signed
 * when issuer is NULL. NULL on failure. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, int days,
		       int is_ca)
{
	X509 *c = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	time_t now = time(NULL);
	char san[AUTH_NAME_LEN + 8];
	int ok = 0;

	if (!c || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)))
		goto out;
	if (!X509_set_version(c, 2) ||
	    !X509_time_adj_ex(X509_getm_notBefore(c), 0, -SKEW_S, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(c), days, -SKEW_S, &now) ||
	    !X509_set_pubkey(c, key) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(c, X509_get_subject_name(issuer ? issuer : c)))
		goto out;
	if (is_ca) {
		ok = add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") &&
		     add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		     add_ext(c, c, NID_subject_key_identifier, "hash");
	} else {
		snprintf(san, sizeof(san), "DNS:%s", cn);
		ok = add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(c, issuer, NID_key_usage, "critical,digitalSignature") &&
		     add_ext(c, issuer, NID_ext_key_usage, "serverAuth,clientAuth") &&
		     add_ext(c, issuer, NID_subject_alt_name, san) &&
		     add_ext(c, issuer, NID_authority_key_identifier, "keyid");
	}
	ok = ok && X509_sign(c, ikey ? ikey : key, EVP_sha256()) > 0;
out:
	BN_free(bn);
	if (!ok) {
		X509_free(c);
		return NULL;
	}
	return c;
}

int pki_init_ca(const char *dir, int days, char *err, size_t errlen)
{
	char kp[4096], cp[4096];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *c = NULL;
	int r = -EIO;

	snprintf(kp, sizeof(kp), "%s/ca.key", dir);
	snprintf(cp, sizeof(cp), "%s/ca.crt", dir);
	r = make_dir(dir, err, errlen);
	if (r < 0)
		goto out;
	r = -EIO;
	if (!k || !(c = make_cert(k, "ferry cluster CA", NULL, NULL, days, 1))) {
		snprintf(err, errlen, "cannot make the CA key and certificate");
		goto out;
	}
	r = write_key(kp, k, 1, err, errlen);
	if (r == -EEXIST)
		snprintf(err, errlen, "%s exists; not overwriting a CA key", kp);
	if (r == 0)
		r = write_cert(cp, c, err, errlen);
out:
	X509_free(c);
	EVP_PKEY_free(k);
	return r;
}

static int load_ca(const char *ca_dir, X509 **c, EVP_PKEY **k, char *err, size_t errlen)
{
	char kp[4096], cp[4096];
	FILE *f;

	snprintf(kp, sizeof(kp), "%s/ca.key", ca_dir);
	snprintf(cp, sizeof(cp), "%s/ca.crt", ca_dir);
	f = fopen(cp, "re");
	*c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	f = fopen(kp, "re");
	*k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!*c || !*k) {
		snprintf(err, errlen, "no CA in %s (ca.crt and ca.key; run ferryctl pki init)", ca_dir);
		return -ENOENT;
	}
	return 0;
}

int pki_issue(const char *ca_dir, const char *node, const char *out_dir, int days, char *err,
	      size_t errlen)
{
	char kp[4096], cp[4096], ap[4096];
	X509 *ca = NULL, *c = NULL;
	EVP_PKEY *cak = NULL, *k = NULL;
	int r;

	if (!auth_name_ok(node)) {
		snprintf(err, errlen, "node name %s: 1..63 of [A-Za-z0-9._:@-]", node);
		return -EINVAL;
	}
	r = load_ca(ca_dir, &ca, &cak, err, errlen);
	if (r < 0)
		goto out;
	r = make_dir(out_dir, err, errlen);
	if (r < 0)
		goto out;
	r = -EIO;
	k = EVP_EC_gen("P-256");
	if (!k || !(c = make_cert(k, node, ca, cak, days, 0))) {
		snprintf(err, errlen, "cannot make the key and certificate of %s", node);
		goto out;
	}
	snprintf(kp, sizeof(kp), "%s/node.key", out_dir);
	snprintf(cp, sizeof(cp), "%s/node.crt", out_dir);
	snprintf(ap, sizeof(ap), "%s/ca.crt", out_dir);
	r = write_key(kp, k, 0, err, errlen);
	if (r == 0)
		r = write_cert(cp, c, err, errlen);
	if (r == 0 && strcmp(out_dir, ca_dir))
		r = write_cert(ap, ca, err, errlen);
out:
	X509_free(c);
	X509_free(ca);
	EVP_PKEY_free(k);
	EVP_PKEY_free(cak);
	return r;
}
