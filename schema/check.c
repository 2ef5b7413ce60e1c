#include "schema/check.h"
#include "util/net.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int schema_check_name(struct schema_err *e, const char *path, const char *v, size_t max)
{
	size_t n = strlen(v);

	if (!n)
		return schema_fail(e, path, "%s is required", path);
	if (n > max || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return schema_fail(e, path,
				   "%s must be 1..%zu characters of a-z, 0-9 and '-' (got \"%s\")",
				   path, max, v);
	return 0;
}

int schema_check_dns_label(struct schema_err *e, const char *path, const char *v)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(v);

	if (!n)
		return schema_fail(e, path, "%s is required", path);
	if (n > SCHEMA_DNS_LABEL_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != n ||
	    !strchr(alnum, v[0]) || !strchr(alnum, v[n - 1]))
		return schema_fail(e, path,
				   "%s: \"%.*s%s\" is not a valid name: a DNS-1123 label is at most %d "
				   "characters of lowercase a-z, 0-9 and '-', starting and ending "
				   "with a letter or digit",
				   path, 80, v, n > 80 ? "..." : "", SCHEMA_DNS_LABEL_MAX);
	return 0;
}

int schema_check_labels(struct schema_err *e, const char *path, const struct ferry_kv *kv,
			size_t n)
{
	static const char alnum[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char p[192];

	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(kv[i].key), vl = strlen(kv[i].value);

		snprintf(p, sizeof(p), "%s.%s", path, kv[i].key);
		/* Kubernetes label syntax: the node selectors people copy from
		 * there keep working, and values stay safe in key=value logs. */
		if (!kl || kl > 253 || strspn(kv[i].key, alnum) == 0 ||
		    strspn(kv[i].key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789._/-") != kl)
			return schema_fail(e, p,
					   "%s: label key \"%s\" must be 1..253 characters of "
					   "A-Z, a-z, 0-9, '.', '_', '/', '-' starting with a letter or digit",
					   path, kv[i].key);
		if (vl > 63 ||
		    strspn(kv[i].value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789._-") != vl)
			return schema_fail(e, p,
					   "%s.%s: label value \"%s\" must be 0..63 characters of "
					   "A-Z, a-z, 0-9, '.', '_', '-'",
					   path, kv[i].key, kv[i].value);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(kv[j].key, kv[i].key))
				return schema_fail(e, p, "%s: duplicate key \"%s\"", path,
						   kv[i].key);
	}
	return 0;
}

int schema_check_enum(struct schema_err *e, const char *path, const char *v,
		      const char *const *set, const char *list)
{
	for (; *set; set++)
		if (!strcmp(v, *set))
			return 0;
	return schema_fail(e, path, "%s must be one of %s (got \"%s\")", path, list, v);
}

int schema_check_abs_path(struct schema_err *e, const char *path, const char *v)
{
	if (v[0] != '/')
		return schema_fail(e, path, "%s must be an absolute path (got \"%s\")", path, v);
	return 0;
}

int schema_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	return net_parse_hostport(s, host, hostlen, port, NULL);
}
