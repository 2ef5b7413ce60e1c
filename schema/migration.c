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
	{"page_cache_mib", SCHEMA_INT, MOFF(page_cache_mib), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
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
	m->page_cache_mib = FERRY_UNSET;
}
