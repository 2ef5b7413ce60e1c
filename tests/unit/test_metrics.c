/* The Prometheus exposition's decisions (agent/metrics.c, metrics_render):
 * escaping, a TYPE for every sample, which migrations each family counts,
 * and the phase histogram's buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/metrics.h"

#define T0 1700000000000000ull /* a creation time, in µs */

static const char *states[METRICS_VM_STATES] = {"Running", "Migrating", "Departed", "Stopped",
						"Starting", "Incoming", "Paused"};

static struct metrics_mig mig(const char *vm, const char *vmim, int source, int live, enum mig_phase p)
{
	struct metrics_mig m;

	memset(&m, 0, sizeof(m));
	snprintf(m.vm, sizeof(m.vm), "%s", vm);
	snprintf(m.vmim, sizeof(m.vmim), "%s", vmim);
	m.source = source;
	m.live = live;
	m.phase = p;
	m.start_us = T0;
	m.pause_ms = -1;
	return m;
}

static char *render(const struct metrics_mig *migs, size_t n)
{
	struct metrics_view v = {.node = "node-a", .migs = migs, .n = n};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	memcpy(v.vm_state_names, states, sizeof(states));
	v.vms[0] = 2;
	metrics_render(f, &v);
	fclose(f);
	return out;
}

/* The line that starts with prefix (a whole sample up to its value), or NULL. */
static const char *line(const char *text, const char *prefix)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, prefix, strlen(prefix)))
			return p;
	return NULL;
}

static void assert_sample(const char *text, const char *series, const char *value)
{
	char want[512];
	const char *l;

	snprintf(want, sizeof(want), "%s %s\n", series, value);
	l = line(text, want);
	if (!l)
		fail_msg("no line \"%s %s\" in:\n%s", series, value, text);
}

static void test_label_escaping(void **state)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	metrics_label_value(f, "a\"b\\c\nd");
	fclose(f);
	assert_string_equal(out, "\"a\\\"b\\\\c\\nd\"");
	free(out);
}

/* Every sample belongs to a family announced by HELP and TYPE before it. */
static void test_every_sample_typed(void **state)
{
	struct metrics_mig m[2] = {mig("g1", "m1", 1, 1, MIG_SUCCEEDED), mig("g2", "m\"2", 1, 1, MIG_RUNNING)};
	char *out, *save = NULL, typed[8192] = " ", helped[8192] = " ";
	int samples = 0;

	(void)state;
	m[0].phase_us[MIG_RUNNING] = T0 + 1000000;
	m[0].phase_us[MIG_SUCCEEDED] = T0 + 2000000;
	m[0].end_us = T0 + 2000000;
	out = render(m, 2);
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[200], key[210];
		size_t n;

		if (!strncmp(l, "# TYPE ", 7) || !strncmp(l, "# HELP ", 7)) {
			assert_int_equal(sscanf(l + 7, "%199s", name), 1);
			snprintf(key, sizeof(key), "%s ", name);
			strcat(l[2] == 'T' ? typed : helped, key);
			continue;
		}
		n = strcspn(l, "{ ");
		assert_true(n < sizeof(name));
		memcpy(name, l, n);
		name[n] = '\0';
		/* A histogram's samples are name_bucket, name_sum, name_count. */
		for (size_t k = 0; k < 3 && strstr(name, "_phase_transition_time"); k++) {
			static const char *suffixes[] = {"_bucket", "_sum", "_count"};
			size_t sl = strlen(suffixes[k]);

			if (n > sl && !strcmp(name + n - sl, suffixes[k])) {
				name[n - sl] = '\0';
				break;
			}
		}
		snprintf(key, sizeof(key), " %s ", name);
		if (!strstr(typed, key) || !strstr(helped, key))
			fail_msg("sample of %s before its HELP and TYPE: %s", name, l);
		samples++;
	}
	assert_true(samples > 20);
	free(out);
}

/* Pending, scheduling and running now: this run's source migrations only,
 * with KubeVirt's grouping of the phases before the copy under running. */
static void test_in_phase_now(void **state)
{
	struct metrics_mig m[] = {
		mig("g1", "a", 1, 1, MIG_RUNNING),     mig("g2", "b", 1, 1, MIG_PREPARING_TARGET),
		mig("g3", "c", 0, 1, MIG_RUNNING),     /* target side: the source counts it */
		mig("g4", "d", 1, 1, MIG_PENDING),     mig("g5", "e", 1, 1, MIG_SUCCEEDED),
		mig("g6", "f", 1, 0, MIG_RUNNING),     /* an earlier run's record */
		mig("g7", "g", 1, 1, MIG_SCHEDULING),
	};
	char *out;

	(void)state;
	out = render(m, sizeof(m) / sizeof(m[0]));
	assert_sample(out, "ferry_vmi_migrations_in_running_phase{node=\"node-a\"}", "2");
	assert_sample(out, "ferry_vmi_migrations_in_pending_phase{node=\"node-a\"}", "1");
	assert_sample(out, "ferry_vmi_migrations_in_scheduling_phase{node=\"node-a\"}", "1");
	free(out);
}

/* Outcomes per VM and VMIM, an earlier run's records included; the
 * target side never counts; a VMIM name used twice is one series. */
static void test_outcomes(void **state)
{
	struct metrics_mig m[] = {
		mig("g1", "m1", 1, 1, MIG_SUCCEEDED), mig("g1", "m1", 1, 0, MIG_SUCCEEDED),
		mig("g1", "m2", 1, 0, MIG_FAILED),    mig("g2", "m3", 0, 1, MIG_SUCCEEDED),
		mig("g2", "m\"q", 1, 1, MIG_FAILED),
	};
	char *out;

	(void)state;
	out = render(m, sizeof(m) / sizeof(m[0]));
	assert_sample(out, "ferry_vmi_migration_succeeded{vmi=\"g1\",vmim=\"m1\",node=\"node-a\"}", "2");
	assert_sample(out, "ferry_vmi_migration_failed{vmi=\"g1\",vmim=\"m2\",node=\"node-a\"}", "1");
	assert_sample(out, "ferry_vmi_migration_failed{vmi=\"g2\",vmim=\"m\\\"q\",node=\"node-a\"}", "1");
	assert_null(line(out, "ferry_vmi_migration_succeeded{vmi=\"g2\""));
	assert_null(strstr(strstr(out, "vmim=\"m1\"") + 1, "ferry_vmi_migration_succeeded{vmi=\"g1\",vmim=\"m1\""));
	free(out);
}

/* The per-VM figures are the newest source migration's, one series per VM. */
static void test_per_vm_newest(void **state)
{
	struct metrics_mig m[] = {mig("g1", "new", 1, 1, MIG_SUCCEEDED), mig("g1", "old", 1, 1, MIG_FAILED),
				  mig("g2", "in", 0, 1, MIG_SUCCEEDED)};
	char *out;

	(void)state;
	m[0].processed = 300;
	m[0].remaining = 5;
	m[0].total = 200;
	m[0].dirty_bps = 7;
	m[0].copy_bps = 9;
	m[0].pause_ms = 42;
	m[0].end_us = T0 + 1500000;
	m[1].processed = 100;
	out = render(m, 3);
	assert_sample(out, "ferry_vmi_migration_data_processed_bytes{vmi=\"g1\",node=\"node-a\"}", "300");
	assert_sample(out, "ferry_vmi_migration_data_remaining_bytes{vmi=\"g1\",node=\"node-a\"}", "5");
	assert_sample(out, "ferry_vmi_migration_data_bytes_total{vmi=\"g1\",node=\"node-a\"}", "200");
	assert_sample(out, "ferry_vmi_migration_data_total_bytes{vmi=\"g1\",node=\"node-a\"}", "200");
	assert_sample(out, "ferry_vmi_migration_dirty_memory_rate_bytes{vmi=\"g1\",node=\"node-a\"}", "7");
	assert_sample(out, "ferry_vmi_migration_memory_transfer_rate_bytes{vmi=\"g1\",node=\"node-a\"}", "9");
	assert_sample(out, "ferry_vmi_migration_last_downtime_seconds{vmi=\"g1\",node=\"node-a\"}", "0.042");
	assert_sample(out, "ferry_vmi_migration_start_time_seconds{vmi=\"g1\",node=\"node-a\",migration_name=\"new\"}",
		      "1700000000.000");
	assert_sample(out,
		      "ferry_vmi_migration_end_time_seconds{vmi=\"g1\",node=\"node-a\",migration_name=\"new\","
		      "status=\"Succeeded\"}",
		      "1700000001.500");
	assert_null(line(out, "ferry_vmi_migration_data_processed_bytes{vmi=\"g1\",node=\"node-a\"} 100"));
	assert_null(strstr(out, "vmi=\"g2\""));
	free(out);
}

/* Cumulative buckets, +Inf equal to the count, the sum in seconds; a
 * phase nobody entered by a transition has no series. */
static void test_phase_histogram(void **state)
{
	static const char *h = "ferry_vmi_migration_phase_transition_time_from_creation_seconds";
	struct metrics_mig m[] = {mig("g1", "a", 1, 1, MIG_SUCCEEDED), mig("g2", "b", 1, 1, MIG_RUNNING),
				  mig("g3", "c", 0, 1, MIG_RUNNING)};
	char *out, s[256];

	(void)state;
	m[0].phase_us[MIG_RUNNING] = T0 + 3000000;
	m[0].phase_us[MIG_SUCCEEDED] = T0 + 40000000;
	m[1].phase_us[MIG_RUNNING] = T0 + 700000;
	m[2].phase_us[MIG_RUNNING] = T0 + 1000; /* the target side: not observed */
	out = render(m, 3);
	snprintf(s, sizeof(s), "%s_bucket{node=\"node-a\",phase=\"Running\",le=\"0.5\"}", h);
	assert_sample(out, s, "0");
	snprintf(s, sizeof(s), "%s_bucket{node=\"node-a\",phase=\"Running\",le=\"1\"}", h);
	assert_sample(out, s, "1");
	snprintf(s, sizeof(s), "%s_bucket{node=\"node-a\",phase=\"Running\",le=\"5\"}", h);
	assert_sample(out, s, "2");
	snprintf(s, sizeof(s), "%s_bucket{node=\"node-a\",phase=\"Running\",le=\"+Inf\"}", h);
	assert_sample(out, s, "2");
	snprintf(s, sizeof(s), "%s_sum{node=\"node-a\",phase=\"Running\"}", h);
	assert_sample(out, s, "3.700000");
	snprintf(s, sizeof(s), "%s_count{node=\"node-a\",phase=\"Succeeded\"}", h);
	assert_sample(out, s, "1");
	snprintf(s, sizeof(s), "%s_bucket{node=\"node-a\",phase=\"Succeeded\",le=\"30\"}", h);
	assert_sample(out, s, "0");
	snprintf(s, sizeof(s), "%s_bucket{node=\"node-a\",phase=\"Succeeded\",le=\"60\"}", h);
	assert_sample(out, s, "1");
	snprintf(s, sizeof(s), "%s_count{node=\"node-a\",phase=\"Pending\"}", h);
	assert_null(line(out, s));
	free(out);
}

/* ferry's own families keep their shape (dashboards and tests use them). */
static void test_agent_families(void **state)
{
	struct metrics_mig m[] = {mig("g1", "a", 1, 1, MIG_SUCCEEDED), mig("g2", "b", 0, 1, MIG_FAILED)};
	char *out;

	(void)state;
	m[0].raw_bytes = 1000;
	m[0].wire_bytes = 400;
	out = render(m, 2);
	assert_sample(out, "ferry_migrations{node=\"node-a\",role=\"source\",phase=\"Succeeded\"}", "1");
	assert_sample(out, "ferry_migrations{node=\"node-a\",role=\"target\",phase=\"Failed\"}", "1");
	assert_sample(out, "ferry_migration_bytes_total{node=\"node-a\",kind=\"raw\"}", "1000");
	assert_sample(out, "ferry_migration_bytes_total{node=\"node-a\",kind=\"wire\"}", "400");
	assert_sample(out, "ferry_vms{node=\"node-a\",state=\"Running\"}", "2");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),  cmocka_unit_test(test_every_sample_typed),
		cmocka_unit_test(test_in_phase_now),    cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_per_vm_newest),   cmocka_unit_test(test_phase_histogram),
		cmocka_unit_test(test_agent_families),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
