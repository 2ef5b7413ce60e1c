/* policy: the source's decisions during a migration, as pure functions.
 *
 * The source thread gathers the facts (the monitor's view, QEMU's current
 * downtime limit, the settings) and acts on the answer; these functions only
 * decide, so they are unit-tested on their own (tests/unit/test_policy.c).
 * docs/monitor.md explains each rule with measured figures. */
#ifndef FERRY_ENGINE_POLICY_H
#define FERRY_ENGINE_POLICY_H

#include <stdint.h>

#include "engine/monitor.h"

/* Pause tuning starts QEMU's downtime limit here and raises it toward the
 * configured limit only while the remaining data sets no clear new low
 * (10 % below the last) for PAUSE_TUNE_STALL_MS. */
#define PAUSE_TUNE_START_MS 50
#define PAUSE_TUNE_STALL_MS 1500

struct pol_pause {
	uint64_t low;       /* the last clear low of the remaining data */
	uint64_t low_at_ms; /* when it was set, or the limit last raised */
};

/* The downtime limit to set now (ms), or 0 to leave cur_ms as it is.
 * ceiling_ms: the configured limit. Not converging: straight to the
 * ceiling; converging but stalled: double. */
int pol_pause_next(struct pol_pause *p, int cur_ms, int ceiling_ms, const struct monitor *mon,
		   uint64_t now_ms);

enum pol_step { POL_STEP_NONE, POL_STEP_DOWNTIME, POL_STEP_POSTCOPY };

/* Time for an escalation step? after_s: escalate_after_s (<= 0 never);
 * since_ms: the later of the last new low and the last step. */
int pol_escalation_due(int after_s, enum mon_verdict v, uint64_t iterations, uint64_t now_ms,
		       uint64_t since_ms);

/* Which escalation step comes next: raise the downtime limit by step_ms
 * from the higher of cur_ms and the pause ceiling, up to max_ms (the new
 * limit in *next_ms); then post-copy when allowed and not yet in it. */
enum pol_step pol_escalation_next(int cur_ms, int ceiling_ms, int step_ms, int max_ms, int postcopy_allowed,
				  int in_postcopy, int *next_ms);

/* A background mirror the guest outruns for this many samples switches
 * to write-blocking. */
#define POL_DISK_OUTRUN_SAMPLES 3

struct pol_disk {
	int outrun; /* consecutive samples the guest outran the copy */
};

/* One storage sample: 1 when the mirrors should switch to write-blocking
 * now (the guest writes at least half as fast as the copy, for
 * POL_DISK_OUTRUN_SAMPLES samples, and the switch is possible). */
int pol_disk_switch(struct pol_disk *d, int write_blocking, double dirty_bps, double copy_bps,
		    int can_switch);

#endif
