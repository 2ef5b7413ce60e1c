/* policy: see policy.h. No I/O. */
#include "engine/policy.h"

int pol_pause_next(struct pol_pause *p, int cur_ms, int ceiling_ms, const struct monitor *mon,
		   uint64_t now_ms)
{
	int next;

	if (cur_ms >= ceiling_ms || mon->iterations < 2)
		return 0;
	if (!p->low_at_ms || mon->remaining < p->low - p->low / 10) {
		p->low = mon->remaining;
		p->low_at_ms = now_ms;
	}
	if (mon->converging && now_ms - p->low_at_ms < PAUSE_TUNE_STALL_MS)
		return 0;
	/* Not converging: a short pause is out of reach, and every extra pass
	 * only costs time. */
	next = !mon->converging ? ceiling_ms : cur_ms * 2 < ceiling_ms ? cur_ms * 2 : ceiling_ms;
	p->low_at_ms = now_ms; /* the new limit gets its own stall time */
	return next;
}

int pol_escalation_due(int after_s, enum mon_verdict v, uint64_t iterations, uint64_t now_ms,
		       uint64_t since_ms)
{
	return after_s > 0 && v == MON_OK && iterations >= 2 && now_ms >= since_ms &&
	       now_ms - since_ms >= (uint64_t)after_s * 1000ull;
}

enum pol_step pol_escalation_next(int cur_ms, int ceiling_ms, int step_ms, int max_ms, int postcopy_allowed,
				  int in_postcopy, int *next_ms)
{
	if (step_ms > 0 && cur_ms < max_ms) {
		/* Escalation goes past what pause tuning would reach anyway. */
		int base = cur_ms > ceiling_ms ? cur_ms : ceiling_ms;

		*next_ms = base + step_ms > max_ms ? max_ms : base + step_ms;
		return POL_STEP_DOWNTIME;
	}
	return postcopy_allowed && !in_postcopy ? POL_STEP_POSTCOPY : POL_STEP_NONE;
}

int pol_disk_switch(struct pol_disk *d, int write_blocking, double dirty_bps, double copy_bps,
		    int can_switch)
{
	/* In background mode a guest that writes as fast as the copy can keep
	 * the mirror from ever getting in sync. */
	if (!write_blocking && dirty_bps > 0 && dirty_bps * 2 >= copy_bps)
		d->outrun++;
	else
		d->outrun = 0;
	if (d->outrun < POL_DISK_OUTRUN_SAMPLES || !can_switch)
		return 0;
	d->outrun = 0;
	return 1;
}
