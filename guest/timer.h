/*
 * timer.h - time for a guest that cannot trust interrupt counts.
 *
 * Under TCG, QEMU may deliver fewer timer interrupts than programmed (a
 * busy or descheduled vCPU thread coalesces them), so the guest never counts
 * ticks. The PIT only wakes the main loop from hlt; every rate and period is
 * computed from the TSC, whose frequency is measured once at boot against
 * PIT channel 2 (which QEMU derives from its virtual clock).
 */
#ifndef FERRY_GUEST_TIMER_H
#define FERRY_GUEST_TIMER_H

#include <stdint.h>

/* TSC ticks per second, set by timer_calibrate(). */
extern uint64_t tsc_hz;

/* Measure tsc_hz with PIT channel 2; call once, with interrupts off. */
void timer_calibrate(void);

/* Program PIT channel 0 to raise IRQ0 at about hz times a second. */
void timer_start(uint32_t hz);

/* Milliseconds between two TSC readings. */
uint64_t tsc_to_ms(uint64_t ticks);

/*
 * A pacer turns "rate bytes per second" into "units of work due now",
 * units being pages (4096) or, later, disk sectors. It keeps the remainder
 * exactly (in bytes x TSC ticks), so slow rates do not drift. Any gap
 * longer than PACER_MAX_GAP_MS (a verify run, the pause of a live
 * migration, a descheduled vCPU) counts as only that long: the guest
 * resumes at its rate instead of bursting to catch up.
 */
#define PACER_MAX_GAP_MS 100

struct pacer {
	uint64_t rate;    /* bytes per second; 0 = off */
	uint32_t unit;    /* bytes per unit of work */
	uint64_t last;    /* TSC at the previous pacer_take() */
	uint64_t credit;  /* owed work in bytes x TSC ticks */
};

void pacer_set(struct pacer *p, uint64_t rate, uint32_t unit, uint64_t now);
/* Units of work due at TSC now; the caller does them before the next call. */
uint32_t pacer_take(struct pacer *p, uint64_t now);

#endif
