/* schema/check: checks shared by the VM spec and ferryd's config. Each
 * returns 0 or schema_fail(e, path, ...): -EINVAL with a message that names
 * path and the offending value.
 */
#ifndef FERRY_SCHEMA_CHECK_H
#define FERRY_SCHEMA_CHECK_H

#include <stddef.h>

#include "schema/schema.h"

/* [a-z0-9-]{1,max} (DNS-label-like names of VMs, nodes, networks, ...) */
int schema_check_name(struct schema_err *e, const char *path, const char *v, size_t max);
/* The name of a VM or of a VirtualMachineInstanceMigration, as KubeVirt
 * takes it: an RFC 1123 DNS label, 1..63 characters of a-z, 0-9 and '-',
 * starting and ending with a letter or digit. The one check of these names
 * (VM spec, VMIM manifest, REST requests, ferryctl); the message states
 * the rule: 'vm: "Bad_Name" is not a valid name: ...'. */
#define SCHEMA_DNS_LABEL_MAX 63
int schema_check_dns_label(struct schema_err *e, const char *path, const char *v);
/* label keys [A-Za-z0-9._/-]{1,253}, values [A-Za-z0-9._-]{0,63}, unique keys */
int schema_check_labels(struct schema_err *e, const char *path, const struct ferry_kv *kv,
			size_t n);
/* v is one of the NULL-terminated set; list spells the set for the
 * message ("disk, cdrom, containerdisk"). */
int schema_check_enum(struct schema_err *e, const char *path, const char *v,
		      const char *const *set, const char *list);
/* v starts with '/'. */
int schema_check_abs_path(struct schema_err *e, const char *path, const char *v);
/* Split "host:port" or "[v6addr]:port"; port 1..65535. 0 or -EINVAL (no
 * message: callers say which key it was). */
int schema_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
