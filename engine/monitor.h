/* The migration monitor: turns periodic samples of QEMU's and the
 * transport's counters into rates, progress and a verdict.
 *
 * Pure logic, no I/O: the source thread feeds it a sample every half
 * second; tests feed it synthetic ones.
 *
 * Progress means the remaining data reached a new low. A
 * migration whose remaining data sets no new low for progress_timeout_ms is
 * stuck; one that runs past completion_timeout_ms is too slow. Both are
 * aborted by the policy, before they harm anyone. */
#ifndef FERRY_ENGINE_MONITOR_H
#define FERRY_ENGINE_MONITOR_H

#include <stdint.h>

struct mon_sample {
	uint64_t t_ms;           /* monotonic */
	uint64_t remaining;      /* bytes still to copy (RAM; disk later) */
	uint64_t dirty_bps;      /* guest dirty rate, bytes/s (QEMU's estimate) */
	uint64_t copied;         /* bytes QEMU handed to ferry so far (raw) */
	uint64_t wire;           /* bytes ferry put on the wire so far */
	uint64_t iterations;     /* QEMU's dirty-sync-count */
};

enum mon_verdict { MON_OK, MON_NO_PROGRESS, MON_TOO_SLOW };

/* Convergence. The copy converges when it outruns the guest's dirtying;
 * a dirty rate at (within MON_CONVERGE_MARGIN of) or above the copy rate
 * does not, even when it is a little below: remaining/(copy - dirty) is
 * then thousands of seconds that only grow. The verdict changes only once
 * the new side has held for MON_CONVERGE_WINDOW_MS (six samples), so one
 * noisy sample of QEMU's dirty-rate estimate neither raises nor clears it.
 * While not converging, or while the side is in doubt, there is no ETA. */
#define MON_CONVERGE_MARGIN 0.95 /* dirty >= 95 % of copy: "at or above" */
#define MON_CONVERGE_WINDOW_MS 3000

struct monitor {
	uint64_t start_ms;
	uint64_t progress_timeout_ms, completion_timeout_ms;
	/* derived */
	uint64_t last_t_ms, last_copied, last_wire;
	double copy_bps, wire_bps; /* EWMA */
	uint64_t dirty_bps;
	uint64_t remaining, best_remaining, best_at_ms;
	uint64_t iterations;
	int have_best;
	int converging; /* 1: copy outruns dirtying; 0: dirty held at or above copy */
	int64_t eta_ms;  /* -1 unknown or not converging */
	/* the side of the latest samples: behind = dirty at or above copy */
	int judged, behind;
	uint64_t side_since_ms; /* since when the samples are on that side */
};

void mon_init(struct monitor *mon, uint64_t now_ms, uint64_t progress_timeout_ms,
	      uint64_t completion_timeout_ms);
/* Feeds a sample; returns the verdict (MON_OK while all is well). */
enum mon_verdict mon_sample(struct monitor *mon, const struct mon_sample *s);
/* A sentence for a person: why the verdict. */
void mon_explain(const struct monitor *mon, enum mon_verdict v, char *buf, unsigned len);

#endif
