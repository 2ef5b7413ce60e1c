/* The peer port's admission of unauthenticated handshakes (agent/admit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/admit.h"

/* One address gets ADMIT_PER_ADDR; another still gets in. */
static void test_per_address(void **state)
{
	struct admit ad;
	const char *why = NULL;

	(void)state;
	memset(&ad, 0, sizeof(ad));
	for (int i = 0; i < ADMIT_PER_ADDR; i++)
		assert_true(admit_take(&ad, "127.0.0.2", &why));
	assert_false(admit_take(&ad, "127.0.0.2", &why));
	assert_string_equal(why, "too many handshakes in flight from this address");
	assert_true(admit_take(&ad, "127.0.0.1", &why));
	admit_put(&ad, "127.0.0.2");
	assert_true(admit_take(&ad, "127.0.0.2", &why));
}

/* The total caps many addresses; a finished handshake frees its place,
 * and the count never underflows on an unknown address. */
static void test_total(void **state)
{
	struct admit ad;
	char a[32];
	const char *why = NULL;

	(void)state;
	memset(&ad, 0, sizeof(ad));
	for (int i = 0; i < ADMIT_MAX; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i / 250, i % 250);
		assert_true(admit_take(&ad, a, &why));
	}
	assert_false(admit_take(&ad, "192.0.2.1", &why));
	assert_string_equal(why, "too many handshakes in flight");
	admit_put(&ad, "10.0.0.5");
	assert_true(admit_take(&ad, "192.0.2.1", &why));
	admit_put(&ad, "198.51.100.7"); /* never admitted */
	assert_int_equal(ad.total, ADMIT_MAX);
	for (int i = 0; i < ADMIT_MAX; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i / 250, i % 250);
		admit_put(&ad, a);
	}
	admit_put(&ad, "192.0.2.1");
	assert_int_equal(ad.total, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_address),
		cmocka_unit_test(test_total),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
