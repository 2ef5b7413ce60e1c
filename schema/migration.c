#include "schema/migration.h"

#include <stddef.h>
#include <stdio.h>

int ferry_migration_check(struct schema_err *e, const char *path,
			  const struct ferry_migration_defaults *m, int allow_unset)
{
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
