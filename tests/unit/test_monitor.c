/* The monitor's arithmetic and verdicts on synthetic samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/monitor.h"

#define MiB (1024ull * 1024ull)

/* A guest whose remaining data shrinks: progress, converging, ETA. */
static void test_converging(void **state)
{
	struct monitor mon;
	uint64_t copied = 0;

	(void)state;
	mon_init(&mon, 0, 10000, 0);
	for (uint64_t t = 500, rem = 1000 * MiB; t <= 5000; t += 500, rem -= 80 * MiB) {
		uint64_t c = copied += 100 * MiB; /* an initializer list is unsequenced */
		struct mon_sample s = {t, rem, 20000000, c, c / 2, 2 + t / 1000};

		assert_int_equal(mon_sample(&mon, &s), MON_OK);
	}
	assert_true(mon.converging);
	assert_true(mon.copy_bps > 150e6 && mon.copy_bps < 250e6); /* 100 MiB per 0.5 s */
	assert_true(mon.wire_bps > 0.4 * mon.copy_bps && mon.wire_bps < 0.6 * mon.copy_bps);
	assert_true(mon.eta_ms > 0);
}

/* Dirtying outruns copying: remaining stays put, "not converging", and
 * the progress timeout fires after exactly its length without a new low. */
static void test_no_progress(void **state)
{
	struct monitor mon;
	enum mon_verdict v = MON_OK;
	uint64_t t, copied = 0;
	char why[300];

	(void)state;
	mon_init(&mon, 0, 3000, 0);
	for (t = 500; t <= 20000 && v == MON_OK; t += 500) {
		/* A new low only at 1 s, then stuck above it. */
		uint64_t c = copied += 10 * MiB;
		struct mon_sample s = {t, t == 1000 ? 100 * MiB : 120 * MiB, 50000000, c, c, 5};

		v = mon_sample(&mon, &s);
	}
	assert_int_equal(v, MON_NO_PROGRESS);
	assert_int_equal(t - 500, 4000); /* best at 1000 ms + 3000 ms */
	assert_false(mon.converging);
	assert_int_equal(mon.eta_ms, -1);
	mon_explain(&mon, v, why, sizeof(why));
	assert_non_null(strstr(why, "no progress for 3 s"));
	assert_non_null(strstr(why, "100.0 MiB"));
}

/* Progress but too slow overall: the completion timeout fires. */
static void test_too_slow(void **state)
{
	struct monitor mon;
	enum mon_verdict v = MON_OK;
	uint64_t t, rem = 10000 * MiB;
	char why[300];

	(void)state;
	mon_init(&mon, 0, 3000, 6000);
	for (t = 500; t <= 20000 && v == MON_OK; t += 500) {
		struct mon_sample s = {t, rem -= MiB, 0, t * MiB, t * MiB, 2};

		v = mon_sample(&mon, &s);
	}
	assert_int_equal(v, MON_TOO_SLOW);
	assert_int_equal(t - 500, 6000);
	mon_explain(&mon, v, why, sizeof(why));
	assert_non_null(strstr(why, "completion timeout"));
}

/* Timeouts of 0 are off. */
static void test_off(void **state)
{
	struct monitor mon;

	(void)state;
	mon_init(&mon, 0, 0, 0);
	for (uint64_t t = 500; t <= 100000; t += 500) {
		struct mon_sample s = {t, 5 * MiB, 1, t, t, 3};

		assert_int_equal(mon_sample(&mon, &s), MON_OK);
	}
}

/* Feeds samples every 500 ms from t0 to t1 (inclusive) with the copy at
 * 100 MB/s and the guest dirtying at dirty_bps, remaining shrinking by
 * shrink per sample; returns the last t. */
static uint64_t feed(struct monitor *mon, uint64_t t0, uint64_t t1, uint64_t dirty_bps,
		     uint64_t *copied, uint64_t *rem, uint64_t shrink)
{
	uint64_t t;

	for (t = t0; t <= t1; t += 500) {
		uint64_t c = *copied += 50000000;
		struct mon_sample s = {t, *rem, dirty_bps, c, c, 3};

		*rem -= shrink;
		assert_int_equal(mon_sample(mon, &s), MON_OK);
	}
	return t - 500;
}

/* The bug: dirty just below copy (99 vs 100 MB/s) said "converging" with
 * an ETA that only grew (thousands of seconds). Held at or above the copy
 * rate (within the margin) for the window, it is not converging, with no
 * ETA; before the window it is in doubt: still converging, but no ETA. */
static void test_dirty_at_copy(void **state)
{
	struct monitor mon;
	uint64_t copied = 0, rem = 4000 * MiB;

	(void)state;
	mon_init(&mon, 0, 0, 0);
	feed(&mon, 500, 500, 99000000, &copied, &rem, MiB); /* the side starts at 500 ms */
	assert_true(mon.converging);
	assert_int_equal(mon.eta_ms, -1);
	feed(&mon, 1000, 3000, 99000000, &copied, &rem, MiB);
	assert_true(mon.converging); /* 2.5 s: not yet sustained */
	assert_int_equal(mon.eta_ms, -1);
	feed(&mon, 3500, 3500, 99000000, &copied, &rem, MiB);
	assert_false(mon.converging); /* held for 3 s */
	assert_int_equal(mon.eta_ms, -1);
	feed(&mon, 4000, 60000, 99000000, &copied, &rem, MiB);
	assert_false(mon.converging);
	assert_int_equal(mon.eta_ms, -1);
}

static void test_dirty_above_copy(void **state)
{
	struct monitor mon;
	uint64_t copied = 0, rem = 400 * MiB;

	(void)state;
	mon_init(&mon, 0, 0, 0);
	feed(&mon, 500, 4000, 250000000, &copied, &rem, 0);
	assert_false(mon.converging);
	assert_int_equal(mon.eta_ms, -1);
}

/* One noisy sample does not flip the verdict; a sustained change does,
 * both ways. */
static void test_convergence_hysteresis(void **state)
{
	struct monitor mon;
	uint64_t copied = 0, rem = 4000 * MiB, t;

	(void)state;
	mon_init(&mon, 0, 0, 0);
	t = feed(&mon, 500, 5000, 20000000, &copied, &rem, 10 * MiB);
	assert_true(mon.converging);
	assert_true(mon.eta_ms > 0);
	t = feed(&mon, t + 500, t + 500, 150000000, &copied, &rem, 0); /* one spike */
	assert_true(mon.converging);
	assert_int_equal(mon.eta_ms, -1); /* in doubt: no ETA for that sample */
	t = feed(&mon, t + 500, t + 500, 20000000, &copied, &rem, 10 * MiB);
	assert_true(mon.converging);
	assert_true(mon.eta_ms > 0);
	/* Dirtying takes over for good. */
	t = feed(&mon, t + 500, t + 3500, 150000000, &copied, &rem, 0);
	assert_false(mon.converging);
	/* A short lull is not recovery. */
	t = feed(&mon, t + 500, t + 1000, 20000000, &copied, &rem, 10 * MiB);
	assert_false(mon.converging);
	assert_int_equal(mon.eta_ms, -1);
	/* A sustained one is, and the ETA comes back. */
	t = feed(&mon, t + 500, t + 3000, 20000000, &copied, &rem, 10 * MiB);
	assert_true(mon.converging);
	assert_true(mon.eta_ms > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converging),
		cmocka_unit_test(test_no_progress),
		cmocka_unit_test(test_too_slow),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_dirty_at_copy),
		cmocka_unit_test(test_dirty_above_copy),
		cmocka_unit_test(test_convergence_hysteresis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
