/* A small cluster PKI for certificate mode (`ferryctl pki`): one CA, and a
 * key and certificate per node whose SAN dNSName is the node's name.
 * Keys are ECDSA P-256, written mode 0600; certificates are PEM.
 *
 *   pki_init_ca(DIR):                 DIR/ca.key, DIR/ca.crt
 *   pki_issue(CA_DIR, NAME, OUT):     OUT/node.key, OUT/node.crt, OUT/ca.crt
 *
 * Validity starts one hour in the past (clock skew between nodes) and lasts
 * `days` days from there, so days 0 yields a certificate that has already
 * expired (for tests of the refusal). */
#ifndef FERRY_TRANSPORT_PKI_H
#define FERRY_TRANSPORT_PKI_H

#include <stddef.h>

#define PKI_CA_DAYS 3650
#define PKI_NODE_DAYS 365

/* 0, or -errno with err: -EEXIST (DIR/ca.key exists: never overwritten),
 * -EIO (crypto), or the errno of creating a file. */
int pki_init_ca(const char *dir, int days, char *err, size_t errlen);
/* 0, or -errno with err: -EINVAL (bad node name), -ENOENT (no CA in ca_dir). */
int pki_issue(const char *ca_dir, const char *node, const char *out_dir, int days, char *err,
	      size_t errlen);

#endif
