/* qemu_caps: what the local QEMU offers, probed once per QMP session.
 *
 * ferry supports QEMU 8.2 to 10.x and uses a feature only where the QEMU it
 * talks to has it; an older QEMU gets the older path. The probe asks QEMU
 * itself (query-version, query-commands, query-migrate-capabilities,
 * query-migrate-parameters) instead of trusting version numbers, since
 * distributions backport. The decision from the replies is a pure function
 * (qcaps_parse) so it is unit-tested against recorded replies.
 *
 * Feature                    QEMU   what ferry does with it
 * QCAP_BLOCK_JOB_CHANGE      8.2    switches a running mirror to
 *                                   write-blocking in place (else: restart
 *                                   the job, only before RAM starts)
 * QCAP_ACTIVELY_SYNCED       8.2    query-block-jobs says when a
 *                                   write-blocking mirror mirrors every write
 * QCAP_ZERO_PAGE_DETECTION   9.0    multifd channels detect zero pages
 *                                   themselves (set to "multifd")
 * QCAP_POSTCOPY_PREEMPT      8.0    a capability QEMU has; not used yet (its
 *                                   channel would need mapping in the relay)
 * QCAP_TCG_DIRTY_COHERENT    9.0    the dirty-bitmap sync keeps TCG's dirty
 *                                   state coherent; before 9.0 a TCG guest
 *                                   can lose writes over many passes
 */
#ifndef FERRY_QMP_QEMU_CAPS_H
#define FERRY_QMP_QEMU_CAPS_H

#include <stddef.h>

struct json_object;
struct qmp;

enum qcap {
	QCAP_BLOCK_JOB_CHANGE = 1u << 0,
	QCAP_ACTIVELY_SYNCED = 1u << 1,
	QCAP_ZERO_PAGE_DETECTION = 1u << 2,
	QCAP_POSTCOPY_PREEMPT = 1u << 3,
	QCAP_TCG_DIRTY_COHERENT = 1u << 4,
};

struct qemu_caps {
	int major, minor, micro;
	unsigned features; /* enum qcap bits */
};

/* The oldest QEMU ferry supports. */
#define QCAPS_MIN_MAJOR 8
#define QCAPS_MIN_MINOR 2

/* Derives caps from the replies of query-version, query-commands,
 * query-migrate-capabilities and query-migrate-parameters (any but the
 * first may be NULL: the features they show are then absent). 0, or
 * -EPROTO when the version reply is not one. */
int qcaps_parse(struct json_object *version, struct json_object *commands,
		struct json_object *mig_caps, struct json_object *mig_params,
		struct qemu_caps *out);

/* Asks QEMU and parses. 0 or -errno (err says which query failed). */
int qcaps_probe(struct qmp *q, struct qemu_caps *out, char *err, size_t errlen);

static inline int qcaps_has(const struct qemu_caps *c, enum qcap f)
{
	return (c->features & f) != 0;
}

/* 1 when the version is at least the supported minimum. */
int qcaps_supported(const struct qemu_caps *c);

/* "10.0.2 block-job-change,actively-synced,..." into buf (always
 * NUL-terminated); returns buf. */
const char *qcaps_describe(const struct qemu_caps *c, char *buf, size_t len);

#endif
