/* mig_settings: the migration settings, the values each may take, and the
 * one place their precedence is decided.
 *
 * A setting (progress timeout, bandwidth, downtime limit, compression,
 * multifd, the escalations, ...) can come from four layers; the first layer
 * that sets it wins:
 *
 *   1. the migration request (REST body, ferryctl flags),
 *   2. the VM spec's `migration:` block,
 *   3. the first named policy whose selector matches the VM's labels,
 *   4. the agent's `migration:` defaults in ferryd.yaml, which set every one.
 *
 * A layer is a struct ferry_migration_defaults. "Unset" is FERRY_UNSET,
 * which lies outside every setting's range: a value, 0 included, is never
 * taken for "unset", and no value out of range is taken for one either
 * (a negative bandwidth is refused, not read as "unlimited"). The request's
 * decoder goes further and sets a field only when its key is present.
 *
 * Values are checked twice, both times with a sentence naming the setting:
 * each layer's values against the setting's range (mset_check_layer,
 * ferry_migration_check), and the resolved set for combinations that cannot
 * work together (mset_check). mset_resolve does both. Everything here is
 * pure: no I/O, no locks, no globals but the constant table.
 *
 * Conventions: 0 or -EINVAL with the reason in err. */
#ifndef FERRY_SCHEMA_MIG_SETTINGS_H
#define FERRY_SCHEMA_MIG_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "schema/migration.h"

enum mset_id {
	MSET_PROGRESS_TIMEOUT_S,
	MSET_COMPLETION_TIMEOUT_S_PER_GIB,
	MSET_MAX_BANDWIDTH_MIBPS,
	MSET_DOWNTIME_LIMIT_MS,
	MSET_COMPRESS,
	MSET_MULTIFD_CHANNELS,
	MSET_AUTO_CONVERGE,
	MSET_POST_COPY,
	MSET_DOWNTIME_STEP_MS,
	MSET_DOWNTIME_MAX_MS,
	MSET_ESCALATE_AFTER_S,
	MSET_PAGE_CACHE_MIB,
	MSET_COUNT
};

/* Where a resolved value came from (the layers above, in reverse). */
enum mset_origin {
	MSET_FROM_DEFAULT,
	MSET_FROM_POLICY,
	MSET_FROM_SPEC,
	MSET_FROM_REQUEST,
};

/* One setting: its key in ferryd.yaml and VM specs, its key in a REST
 * request (NULL: not settable per request), and its range. */
struct mset_info {
	const char *key;
	const char *api_key;
	int min, max;
	int is_bool; /* true/false, stored as 0/1 */
};

/* The request's layer. post_copy_now (switch to post-copy during the first
 * pass) exists only in a request and implies post_copy. */
struct mset_request {
	struct ferry_migration_defaults mig; /* FERRY_UNSET: the request does not say */
	int post_copy_now;
};

/* The resolved settings of one migration: every field of v is set, in
 * range, and passed mset_check. */
struct mset {
	struct ferry_migration_defaults v;
	enum mset_origin from[MSET_COUNT];
	int post_copy_now;
};

const struct mset_info *mset_info(enum mset_id id);
const char *mset_origin_name(enum mset_origin o);

/* A layer's value of one setting (FERRY_UNSET when unset), and setting it. */
int mset_get(const struct ferry_migration_defaults *l, enum mset_id id);
void mset_set(struct ferry_migration_defaults *l, enum mset_id id, int v);
/* (ferry_migration_unset, schema/migration.h, clears a layer.) */

/* Each value of layer l in its setting's range; with allow_unset,
 * FERRY_UNSET passes. Names the first bad one as "<prefix>.<key>" (just
 * "<key>" without a prefix): "migration.max_bandwidth_mibps must be between
 * 0 and 1048576 (got -5)". Returns the bad setting's id through bad when
 * not NULL. */
int mset_check_layer(const struct ferry_migration_defaults *l, int allow_unset,
		     const char *prefix, enum mset_id *bad, char *err, size_t errlen);

/* ferry_migration_check (declared in schema/migration.h, defined in
 * mig_settings.c) is the same as a schema check for ferryd.yaml and VM
 * specs (path prefixes the keys; the schema_err's path points at the bad
 * key). */

/* The settings keys of a REST migration request, offsets within struct
 * mset_request: each setting's api_key (camelCase) and postCopyNow. A
 * request's own table embeds them with SCHEMA_INLINE, so that the one
 * decoder refuses an unknown key or a wrong type, naming the key
 * ("progressTimeoutS must be an integer, not a string"); an absent or null
 * key leaves its setting unset. */
extern const struct schema_field mset_request_fields[];
/* A request that sets nothing (every setting FERRY_UNSET, no postCopyNow). */
void mset_request_init(struct mset_request *r);
/* Each setting the request sets in its range, named by the request's key:
 * "progressTimeoutS must be between 1 and 86400 (got 0)". */
int mset_request_check(const struct mset_request *r, char *err, size_t errlen);

/* Resolve: for each setting the request's value, else the spec's, else the
 * policy's, else the default's. req, spec and policy may be NULL (a layer
 * that names nothing); defaults must set every setting. Each layer is
 * range-checked first (the refusal says which layer), then the result
 * goes through mset_check. Resolving also applies the documented
 * consequences: post_copy_now turns post_copy on (a request that turns
 * post_copy off at the same time is refused), and post_copy forces
 * multifd_channels to 0 (QEMU up to 10.0 refuses post-copy with multifd). */
int mset_resolve(const struct mset_request *req, const struct ferry_migration_defaults *spec,
		 const struct ferry_migration_defaults *policy,
		 const struct ferry_migration_defaults *defaults, struct mset *out, char *err,
		 size_t errlen);

/* Every value in range and no bad combination:
 *   - downtime_step_ms on needs downtime_max_ms above downtime_limit_ms
 *     (else a step would lower the limit or do nothing);
 *   - a stepped escalation (downtime_step_ms, or post_copy without
 *     post_copy_now) needs escalate_after_s below progress_timeout_s (else
 *     the progress timeout aborts before the first step);
 *   - post_copy_now needs post_copy.
 * The refusal names both settings with their values and origins. */
int mset_check(const struct mset *s, char *err, size_t errlen);

/* Accessors for derived values. */
/* Bytes per second; 0 = unlimited. */
uint64_t mset_max_bandwidth_bps(const struct mset *s);
uint64_t mset_progress_timeout_ms(const struct mset *s);
/* completion_timeout_s_per_gib x (memory + copied disk) in GiB. */
uint64_t mset_completion_timeout_ms(const struct mset *s, uint64_t mib);

#endif
