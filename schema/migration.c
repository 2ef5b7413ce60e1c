#include "schema/migration.h"

#include <stddef.h>
#include <stdio.h>

#define MOFF(f) offsetof(struct ferry_migration_defaults, f)

const struct schema_field ferry_migration_fields[] = {
	{"progress_timeout_s", SCHEMA_INT, MOFF(progress_timeout_s), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"completion_timeout_s_per_gib", SCHEMA_INT, MOFF(completion_timeout_s_per_gib), 0, 0,
	 NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"max_bandwidth_mibps", SCHEMA_INT, MOFF(max_bandwidth_mibps), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"downtime_limit_ms", SCHEMA_INT, MOFF(downtime_limit_ms), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"compress", SCHEMA_BOOL, MOFF(compress), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"multifd_channels", SCHEMA_INT, MOFF(multifd_channels), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"auto_converge", SCHEMA_BOOL, MOFF(auto_converge), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"post_copy", SCHEMA_BOOL, MOFF(post_copy), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"downtime_step_ms", SCHEMA_INT, MOFF(downtime_step_ms), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"downtime_max_ms", SCHEMA_INT, MOFF(downtime_max_ms), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"escalate_after_s", SCHEMA_INT, MOFF(escalate_after_s), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{0},
};

void ferry_migration_unset(struct ferry_migration_defaults *m)
{
	m->progress_timeout_s = FERRY_UNSET;
	m->completion_timeout_s_per_gib = FERRY_UNSET;
	m->max_bandwidth_mibps = FERRY_UNSET;
	m->downtime_limit_ms = FERRY_UNSET;
	m->compress = FERRY_UNSET;
	m->multifd_channels = FERRY_UNSET;
	m->auto_converge = FERRY_UNSET;
	m->post_copy = FERRY_UNSET;
	m->downtime_step_ms = FERRY_UNSET;
	m->downtime_max_ms = FERRY_UNSET;
	m->escalate_after_s = FERRY_UNSET;
}

int ferry_migration_check(struct schema_err *e, const char *path,
			  const struct ferry_migration_defaults *m, int allow_unset)
{
	/* The keys of ferry_migration_fields, in its order, with their ranges. */
	static const struct {
		const char *key;
		size_t off;
		int min, max;
	} r[] = {
		{"progress_timeout_s",
		 offsetof(struct ferry_migration_defaults, progress_timeout_s), 1, 86400},
		{"completion_timeout_s_per_gib",
		 offsetof(struct ferry_migration_defaults, completion_timeout_s_per_gib), 1, 86400},
		{"max_bandwidth_mibps",
		 offsetof(struct ferry_migration_defaults, max_bandwidth_mibps), 0, 1048576},
		/* QEMU refuses a downtime-limit above 2000 s. */
		{"downtime_limit_ms",
		 offsetof(struct ferry_migration_defaults, downtime_limit_ms), 1, 2000000},
		{"compress", offsetof(struct ferry_migration_defaults, compress), 0, 1},
		/* QEMU's multifd-channels is a uint8; more than 64 links between two
		 * agents buys nothing. */
		{"multifd_channels",
		 offsetof(struct ferry_migration_defaults, multifd_channels), 0, 64},
		{"auto_converge", offsetof(struct ferry_migration_defaults, auto_converge), 0, 1},
		{"post_copy", offsetof(struct ferry_migration_defaults, post_copy), 0, 1},
		{"downtime_step_ms",
		 offsetof(struct ferry_migration_defaults, downtime_step_ms), 0, 2000000},
		{"downtime_max_ms",
		 offsetof(struct ferry_migration_defaults, downtime_max_ms), 1, 2000000},
		{"escalate_after_s",
		 offsetof(struct ferry_migration_defaults, escalate_after_s), 1, 86400},
	};
	char p[192];

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		int v = *(const int *)((const char *)m + r[i].off);

		if (allow_unset && v == FERRY_UNSET)
			continue;
		if (v < r[i].min || v > r[i].max) {
			snprintf(p, sizeof(p), "%s.%s", path, r[i].key);
			return schema_fail(e, p, "%s must be between %d and %d (got %d)", p,
					   r[i].min, r[i].max, v);
		}
	}
	return 0;
}
