/* schema/migration: the migration settings, one struct for the three places
 * that set them: ferryd's config (the agent defaults), its migration
 * policies and a VM spec (per-VM overrides). Here rather than in the engine
 * so that the config can be read without it.
 */
#ifndef FERRY_SCHEMA_MIGRATION_H
#define FERRY_SCHEMA_MIGRATION_H

#include "schema/schema.h"

/* Migration tuning. In ferryd's config these are the agent defaults; in a
 * VM spec they are per-VM overrides where FERRY_UNSET means "use the agent
 * default". compress is a boolean (0/1) or FERRY_UNSET. */
struct ferry_migration_defaults {
	int progress_timeout_s;          /* abort when remaining data sets no new low for this long */
	int completion_timeout_s_per_gib; /* abort after this many s per GiB of RAM + copied disk */
	int max_bandwidth_mibps;         /* 0 = unlimited (QEMU max-bandwidth set very high) */
	int downtime_limit_ms;           /* QEMU downtime-limit */
	int compress;                    /* ferry's LZ4 on the wire */
	int multifd_channels;            /* 0 = single channel */
	/* Escalations, each off by default; they start after escalate_after_s
	 * without progress, before the progress timeout aborts. */
	int auto_converge;               /* QEMU throttles the guest's vCPUs */
	int post_copy;                   /* switch to post-copy (forces 1 channel) */
	int downtime_step_ms;            /* raise downtime-limit by this per step; 0 = off */
	int downtime_max_ms;             /* ... up to this */
	int escalate_after_s;            /* no progress for this long: next step */
	/* Page coding (transport/pagecode.h): the page cache each side of one
	 * migration may hold, in MiB; 0 = QEMU's stream goes as opaque chunks. */
	int page_cache_mib;
};

/* The keys of a `migration:` mapping, offsets within the struct. Use as
 *   {"migration", SCHEMA_OBJ, offsetof(T, mig), 0, 0, ferry_migration_fields, NULL, 0}
 * Fields holding FERRY_UNSET are left out when encoding. */
extern const struct schema_field ferry_migration_fields[];

/* Every field FERRY_UNSET: a VM or policy that overrides nothing. */
void ferry_migration_unset(struct ferry_migration_defaults *m);

/* Migration settings in range (see docs/config.md); with allow_unset,
 * FERRY_UNSET passes (a VM's "use the agent default"). path prefixes keys. */
int ferry_migration_check(struct schema_err *e, const char *path,
			  const struct ferry_migration_defaults *m, int allow_unset);

#endif
