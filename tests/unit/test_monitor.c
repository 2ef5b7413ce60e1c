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
		struct mon_sample s = {t, rem, 20000000, copied += 100 * MiB, copied / 2, 2 + t / 1000};

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
		struct mon_sample s = {t, t == 1000 ? 100 * MiB : 120 * MiB, 50000000,
				       copied += 10 * MiB, copied, 5};

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converging),
		cmocka_unit_test(test_no_progress),
		cmocka_unit_test(test_too_slow),
		cmocka_unit_test(test_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
