#include "engine/monitor.h"

#include <stdio.h>

#define MON_EWMA_NEW 0.4 /* weight of the newest rate sample */

void mon_init(struct monitor *mon, uint64_t now_ms, uint64_t progress_timeout_ms,
	      uint64_t completion_timeout_ms)
{
	*mon = (struct monitor){0};
	mon->start_ms = mon->last_t_ms = now_ms;
	mon->progress_timeout_ms = progress_timeout_ms;
	mon->completion_timeout_ms = completion_timeout_ms;
	mon->eta_ms = -1;
	mon->converging = 1;
}

static double ewma(double old, double now, int first)
{
	return first ? now : (1.0 - MON_EWMA_NEW) * old + MON_EWMA_NEW * now;
}

/* The side of this sample (see MON_CONVERGE_MARGIN); the verdict follows
 * a side once it has held for MON_CONVERGE_WINDOW_MS. An ETA only while
 * converging and this sample agrees. */
static void judge_convergence(struct monitor *mon, const struct mon_sample *s)
{
	int behind = (double)mon->dirty_bps >= MON_CONVERGE_MARGIN * mon->copy_bps;

	if (!mon->judged || behind != mon->behind) {
		mon->judged = 1;
		mon->behind = behind;
		mon->side_since_ms = s->t_ms;
	}
	if (s->t_ms >= mon->side_since_ms && s->t_ms - mon->side_since_ms >= MON_CONVERGE_WINDOW_MS)
		mon->converging = !behind;
	mon->eta_ms = mon->converging && !behind
		? (int64_t)((double)s->remaining * 1000.0 / (mon->copy_bps - (double)mon->dirty_bps))
		: -1;
}

enum mon_verdict mon_sample(struct monitor *mon, const struct mon_sample *s)
{
	uint64_t dt = s->t_ms > mon->last_t_ms ? s->t_ms - mon->last_t_ms : 0;

	if (dt > 0 && s->copied >= mon->last_copied && s->wire >= mon->last_wire) {
		int first = mon->last_copied == 0 && mon->last_wire == 0;

		mon->copy_bps = ewma(mon->copy_bps, (double)(s->copied - mon->last_copied) * 1000.0 / (double)dt, first);
		mon->wire_bps = ewma(mon->wire_bps, (double)(s->wire - mon->last_wire) * 1000.0 / (double)dt, first);
	}
	mon->last_t_ms = s->t_ms;
	mon->last_copied = s->copied;
	mon->last_wire = s->wire;
	mon->dirty_bps = s->dirty_bps;
	mon->remaining = s->remaining;
	mon->iterations = s->iterations;

	/* Progress: a new low of what is left. */
	if (!mon->have_best || s->remaining < mon->best_remaining) {
		mon->best_remaining = s->remaining;
		mon->best_at_ms = s->t_ms;
		mon->have_best = 1;
	}
	/* Convergence needs the copy to outrun the dirtying; QEMU reports a
	 * dirty rate only from its second pass on, so judge from then. */
	if (s->iterations >= 2 && mon->copy_bps > 0)
		judge_convergence(mon, s);
	else if (mon->copy_bps > 0)
		mon->eta_ms = (int64_t)((double)s->remaining * 1000.0 / mon->copy_bps);
	if (mon->progress_timeout_ms && s->t_ms - mon->best_at_ms >= mon->progress_timeout_ms)
		return MON_NO_PROGRESS;
	if (mon->completion_timeout_ms && s->t_ms - mon->start_ms >= mon->completion_timeout_ms)
		return MON_TOO_SLOW;
	return MON_OK;
}

void mon_explain(const struct monitor *mon, enum mon_verdict v, char *buf, unsigned len)
{
	switch (v) {
	case MON_NO_PROGRESS:
		snprintf(buf, len,
			 "no progress for %llu s: remaining data has not gone below %.1f MiB (dirty rate %.1f MB/s, copy rate %.1f MB/s)",
			 (unsigned long long)(mon->progress_timeout_ms / 1000),
			 mon->best_remaining / 1048576.0, mon->dirty_bps / 1e6, mon->copy_bps / 1e6);
		break;
	case MON_TOO_SLOW:
		snprintf(buf, len,
			 "completion timeout: still running after %llu s (%.1f MiB remaining, dirty rate %.1f MB/s, copy rate %.1f MB/s)",
			 (unsigned long long)(mon->completion_timeout_ms / 1000),
			 mon->remaining / 1048576.0, mon->dirty_bps / 1e6, mon->copy_bps / 1e6);
		break;
	default:
		snprintf(buf, len, "making progress");
	}
}
