/* The agent's Prometheus text exposition (GET /metrics), in two steps: a
 * snapshot of the migrations taken under agent.mu (metrics.c's
 * agent_metrics_text), then metrics_render, a pure function of that
 * snapshot, which the unit tests drive directly.
 *
 * The migration families carry KubeVirt's names with ferry_ for kubevirt_
 * (docs/metrics.md lists them). Only the source side of a migration is
 * counted, so that summing over every agent counts each migration once. */
#ifndef FERRY_AGENT_METRICS_H
#define FERRY_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/migration.h"

/* One migration as the metrics see it. */
struct metrics_mig {
	char vm[64];
	char vmim[64]; /* its VMIM name, or its id when it has none */
	int source;    /* this agent was its source */
	int live;      /* this run's: every figure; else an earlier run's record:
			* only vm, vmim, source and phase */
	enum mig_phase phase;
	uint64_t start_us, end_us;
	uint64_t phase_us[MIG_PHASE_COUNT]; /* see struct mig_status */
	uint64_t processed, remaining, total; /* RAM and local disks together */
	uint64_t dirty_bps, copy_bps;
	int64_t pause_ms; /* -1: unknown */
	uint64_t raw_bytes, wire_bytes;
};

#define METRICS_VM_STATES 7 /* enum vm_state's values */

struct metrics_view {
	const char *node;
	const struct metrics_mig *migs; /* this run's newest first, then records */
	size_t n;
	unsigned long long vms[METRICS_VM_STATES]; /* VMs by state */
	const char *vm_state_names[METRICS_VM_STATES];
};

/* Writes the whole exposition of v to f: every family with its HELP and
 * TYPE lines, label values escaped. */
void metrics_render(FILE *f, const struct metrics_view *v);

/* s as a label value between double quotes: \ " and newline escaped. */
void metrics_label_value(FILE *f, const char *s);

/* The upper bounds (seconds) of the phase transition histogram's buckets,
 * +Inf not included. */
extern const double metrics_phase_buckets[];
extern const size_t metrics_phase_bucket_count;

#endif
