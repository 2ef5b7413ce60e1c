/* The source's pure decisions (engine/policy.c): pause tuning, escalation
 * steps, the switch of a mirror to write-blocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/policy.h"

#define MiB (1024ull * 1024ull)

static struct monitor mon_at(uint64_t remaining, int converging, uint64_t iterations)
{
	struct monitor m;

	memset(&m, 0, sizeof(m));
	m.remaining = remaining;
	m.converging = converging;
	m.iterations = iterations;
	return m;
}

/* Converging with clear new lows: the limit stays; stalled for 1.5 s: it
 * doubles, and only up to the ceiling. */
static void test_pause_doubles_when_stalled(void **state)
{
	struct pol_pause p = {0};
	struct monitor m = mon_at(400 * MiB, 1, 2);

	(void)state;
	assert_int_equal(pol_pause_next(&p, 50, 300, &m, 1000), 0);
	m.remaining = 300 * MiB; /* a clear new low */
	assert_int_equal(pol_pause_next(&p, 50, 300, &m, 2000), 0);
	m.remaining = 290 * MiB; /* 3 %: not clear */
	assert_int_equal(pol_pause_next(&p, 50, 300, &m, 3400), 0);
	assert_int_equal(pol_pause_next(&p, 50, 300, &m, 3500), 100);
	/* the new limit gets its own 1.5 s */
	assert_int_equal(pol_pause_next(&p, 100, 300, &m, 4000), 0);
	assert_int_equal(pol_pause_next(&p, 100, 300, &m, 5000), 200);
	assert_int_equal(pol_pause_next(&p, 200, 300, &m, 6500), 300);
	assert_int_equal(pol_pause_next(&p, 300, 300, &m, 9000), 0);
}

/* Not converging: straight to the ceiling. Before the second pass, or at
 * the ceiling: nothing. */
static void test_pause_not_converging(void **state)
{
	struct pol_pause p = {0};
	struct monitor m = mon_at(400 * MiB, 0, 1);

	(void)state;
	assert_int_equal(pol_pause_next(&p, 50, 300, &m, 1000), 0);
	m.iterations = 2;
	assert_int_equal(pol_pause_next(&p, 50, 300, &m, 1000), 300);
	assert_int_equal(pol_pause_next(&p, 300, 300, &m, 2000), 0);
}

static void test_escalation_due(void **state)
{
	(void)state;
	assert_false(pol_escalation_due(0, MON_OK, 5, 100000, 0));          /* off */
	assert_false(pol_escalation_due(3, MON_NO_PROGRESS, 5, 100000, 0)); /* failing anyway */
	assert_false(pol_escalation_due(3, MON_OK, 1, 100000, 0));          /* first pass */
	assert_false(pol_escalation_due(3, MON_OK, 2, 2999, 0));
	assert_true(pol_escalation_due(3, MON_OK, 2, 3000, 0));
	assert_false(pol_escalation_due(3, MON_OK, 2, 1000, 2000)); /* clock behind: never */
}

/* Downtime steps first, from the higher of the current limit and the
 * pause ceiling, capped at the maximum; then post-copy once. */
static void test_escalation_order(void **state)
{
	int next = 0;

	(void)state;
	assert_int_equal(pol_escalation_next(50, 300, 500, 2000, 1, 0, &next), POL_STEP_DOWNTIME);
	assert_int_equal(next, 800);
	assert_int_equal(pol_escalation_next(1800, 300, 500, 2000, 1, 0, &next), POL_STEP_DOWNTIME);
	assert_int_equal(next, 2000);
	assert_int_equal(pol_escalation_next(2000, 300, 500, 2000, 1, 0, &next), POL_STEP_POSTCOPY);
	assert_int_equal(pol_escalation_next(2000, 300, 500, 2000, 1, 1, &next), POL_STEP_NONE);
	assert_int_equal(pol_escalation_next(50, 300, 0, 2000, 0, 0, &next), POL_STEP_NONE);
	assert_int_equal(pol_escalation_next(50, 300, 0, 2000, 1, 0, &next), POL_STEP_POSTCOPY);
}

/* Three samples in a row of the guest writing at least half the copy
 * rate switch the mirror; a calm sample starts the count again; no switch
 * while it is impossible, and none once write-blocking. */
static void test_disk_switch(void **state)
{
	struct pol_disk d = {0};

	(void)state;
	assert_false(pol_disk_switch(&d, 0, 3e6, 4e6, 1));
	assert_false(pol_disk_switch(&d, 0, 3e6, 4e6, 1));
	assert_false(pol_disk_switch(&d, 0, 1e6, 4e6, 1)); /* calm: count restarts */
	assert_false(pol_disk_switch(&d, 0, 2e6, 4e6, 1));
	assert_false(pol_disk_switch(&d, 0, 2e6, 4e6, 1));
	assert_true(pol_disk_switch(&d, 0, 2e6, 4e6, 1));
	assert_int_equal(d.outrun, 0);
	for (int i = 0; i < 5; i++)
		assert_false(pol_disk_switch(&d, 0, 5e6, 4e6, 0)); /* cannot switch */
	assert_true(pol_disk_switch(&d, 0, 5e6, 4e6, 1));
	for (int i = 0; i < 5; i++)
		assert_false(pol_disk_switch(&d, 1, 5e6, 4e6, 1)); /* already */
	assert_false(pol_disk_switch(&d, 0, 0, 0, 1)); /* nothing written */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_doubles_when_stalled),
		cmocka_unit_test(test_pause_not_converging),
		cmocka_unit_test(test_escalation_due),
		cmocka_unit_test(test_escalation_order),
		cmocka_unit_test(test_disk_switch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
