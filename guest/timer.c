/*
 * timer.c - see timer.h.
 */
#include "arch.h"
#include "timer.h"

#define PIT_HZ 1193182u
#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_B 0x61          /* bit 0: channel 2 gate, bit 5: channel 2 out */
#define CAL_COUNT 59659u     /* 50 ms of PIT clock: fits the 16-bit counter */
#define CAL_RUNS 5

uint64_t tsc_hz;

/* TSC ticks while PIT channel 2 counts CAL_COUNT down in mode 0. */
static uint64_t calibrate_once(void)
{
	uint64_t t0;

	outb(PORT_B, (inb(PORT_B) & ~0x02) | 0x01);  /* gate on, speaker off */
	outb(PIT_CMD, 0xB0);                         /* ch2, lo/hi, mode 0 */
	outb(PIT_CH2, CAL_COUNT & 0xFF);
	outb(PIT_CH2, CAL_COUNT >> 8);               /* counting starts */
	t0 = rdtsc();
	while (!(inb(PORT_B) & 0x20))                /* out rises at zero */
		;
	return rdtsc() - t0;
}

/*
 * The median of a few runs: the first one also pays for TCG translating
 * the loop, and the host may deschedule the vCPU during any one of them.
 */
void timer_calibrate(void)
{
	uint64_t r[CAL_RUNS], t;

	for (int i = 0; i < CAL_RUNS; i++) {
		r[i] = calibrate_once();
		for (int j = i; j > 0 && r[j - 1] > r[j]; j--) {
			t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	}
	tsc_hz = r[CAL_RUNS / 2] * PIT_HZ / CAL_COUNT;
}

void timer_start(uint32_t hz)
{
	uint32_t div = PIT_HZ / hz;

	outb(PIT_CMD, 0x34);                 /* ch0, lo/hi, mode 2 (rate) */
	outb(PIT_CH0, div & 0xFF);
	outb(PIT_CH0, div >> 8);
}

uint64_t tsc_to_ms(uint64_t ticks)
{
	/* Split so ticks * 1000 cannot overflow even after years of uptime. */
	return ticks / tsc_hz * 1000 + ticks % tsc_hz * 1000 / tsc_hz;
}

void pacer_set(struct pacer *p, uint64_t rate, uint32_t unit, uint64_t now)
{
	p->rate = rate;
	p->unit = unit;
	p->last = now;
	p->credit = 0;
}

uint32_t pacer_take(struct pacer *p, uint64_t now)
{
	uint64_t gap = now > p->last ? now - p->last : 0;
	uint64_t max_gap = tsc_hz * PACER_MAX_GAP_MS / 1000;
	uint64_t per_unit = (uint64_t)p->unit * tsc_hz;
	uint64_t n;

	p->last = now;
	if (!p->rate)
		return 0;
	if (gap > max_gap)
		gap = max_gap;
	/* gap < 10^9 ticks and rate < 10^10 B/s: the product fits 64 bits. */
	p->credit += gap * p->rate;
	n = p->credit / per_unit;
	p->credit -= n * per_unit;
	return (uint32_t)n;
}
