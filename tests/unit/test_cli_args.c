/* ferryctl's argument checks (cli/args.h): a number is the whole argument,
 * in its range, refused with the option's name; help before "--". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/args.h"
#include "schema/mig_settings.h"

static void test_numbers(void **state)
{
	static const struct {
		const char *arg;
		int ok, v;
		const char *err;
	} cases[] = {
		{"5", 1, 5, NULL},
		{"86400", 1, 86400, NULL},
		{"1", 1, 1, NULL},
		{"007", 1, 7, NULL},
		{"five", 0, 0, "--progress-timeout: 'five' is not a number"},
		{"", 0, 0, "--progress-timeout: '' is not a number"},
		{"5s", 0, 0, "--progress-timeout: '5s' is not a number"},
		{" 5", 0, 0, "--progress-timeout: ' 5' is not a number"},
		{"+5", 0, 0, "--progress-timeout: '+5' is not a number"},
		{"0x10", 0, 0, "--progress-timeout: '0x10' is not a number"},
		{"1.5", 0, 0, "--progress-timeout: '1.5' is not a number"},
		{"-", 0, 0, "--progress-timeout: '-' is not a number"},
		{"0", 0, 0, "--progress-timeout: 0 is out of range (allowed: 1..86400)"},
		{"-5", 0, 0, "--progress-timeout: -5 is out of range (allowed: 1..86400)"},
		{"86401", 0, 0, "--progress-timeout: 86401 is out of range (allowed: 1..86400)"},
		{"99999999999999999999", 0, 0,
		 "--progress-timeout: 99999999999999999999 is out of range (allowed: 1..86400)"},
		{"-99999999999999999999", 0, 0,
		 "--progress-timeout: -99999999999999999999 is out of range (allowed: 1..86400)"},
	};
	const struct mset_info *i = mset_info(MSET_PROGRESS_TIMEOUT_S);
	char err[200];

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int v = -12345;

		err[0] = '\0';
		if (cases[k].ok) {
			assert_int_equal(arg_parse_int("--progress-timeout", cases[k].arg, i->min, i->max, &v,
						       err, sizeof(err)), 0);
			assert_int_equal(v, cases[k].v);
		} else {
			assert_int_equal(arg_parse_int("--progress-timeout", cases[k].arg, i->min, i->max, &v,
						       err, sizeof(err)), -EINVAL);
			assert_string_equal(err, cases[k].err);
			assert_int_equal(v, -12345); /* untouched */
		}
	}
	/* 0 is a value where the range says so (bandwidth: unlimited). */
	i = mset_info(MSET_MAX_BANDWIDTH_MIBPS);
	{
		int v = -1;

		assert_int_equal(arg_parse_int("--max-bandwidth", "0", i->min, i->max, &v, err, sizeof(err)), 0);
		assert_int_equal(v, 0);
	}
}

static void test_help(void **state)
{
	char *a[] = {"g1", "--node", "b", "--help"}, *b[] = {"g1", "-h"}, *c[] = {"g1", "--", "-h"},
	     *d[] = {"g1", "--helpme"}, *e[] = {"g1"};

	(void)state;
	assert_true(arg_wants_help(4, a));
	assert_true(arg_wants_help(2, b));
	assert_false(arg_wants_help(3, c));
	assert_false(arg_wants_help(2, d));
	assert_false(arg_wants_help(1, e));
	assert_false(arg_wants_help(0, NULL));
}

static void test_positional(void **state)
{
	char *one[] = {"g1"}, *opt[] = {"g1", "--bogus"}, *two[] = {"g1", "g2"}, *dash[] = {"-"};

	(void)state;
	assert_int_equal(arg_positional(1, one, 1, 1, "candidates VM"), 0);
	assert_int_equal(arg_positional(2, opt, 1, 2, "candidates VM"), 2);
	assert_int_equal(arg_positional(2, two, 1, 1, "candidates VM"), 2);
	assert_int_equal(arg_positional(0, NULL, 1, 1, "candidates VM"), 2);
	assert_int_equal(arg_positional(1, dash, 1, 1, "x"), 0);
	assert_int_equal(arg_name("VM", "g1"), 0);
	assert_int_equal(arg_name("VM", "Bad_Name"), -EINVAL);
}

/* -o anywhere after the command, in each spelling; the rest kept in order. */
static void test_output(void **state)
{
	char *a[] = {"vmim", "-o", "json", "x", "--output=yaml", "-otable", "--output", "json", "y"};
	char *b[] = {"g1", "--", "-o", "json"}, *c[] = {"g1", "-o"};
	const char *out = "table";
	char err[100];
	int n = 9;

	(void)state;
	assert_int_equal(arg_take_output(&n, a, &out, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(a[0], "vmim");
	assert_string_equal(a[1], "x");
	assert_string_equal(a[2], "y");
	assert_string_equal(out, "json");
	n = 4;
	out = "table";
	assert_int_equal(arg_take_output(&n, b, &out, err, sizeof(err)), 0);
	assert_int_equal(n, 4); /* after "--": arguments, not options */
	assert_string_equal(out, "table");
	n = 2;
	assert_int_equal(arg_take_output(&n, c, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "-o needs a value: table, json or yaml");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_positional),
		cmocka_unit_test(test_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
