/* The migrate --wait progress line (cli/progress.h): it fits every width
 * (80 columns included) without wrapping, keeps the verdict ("not
 * converging" or the ETA) in every form that fits, and the width comes
 * from the terminal, else $COLUMNS, else 80. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/progress.h"

static const struct progress_view busy = {
	.phase = "Running",
	.mode = "pre-copy",
	.pct = 42.4,
	.remaining = 512ull << 20,
	.dirty_bps = 118.3e6,
	.copy_bps = 120.1e6,
	.converging = 0,
	.eta_ms = -1,
	.pass = 137,
};

static void test_fits_every_width(void **state)
{
	struct progress_view long_names = busy;
	char line[512];

	(void)state;
	long_names.phase = "PreparingTarget";
	long_names.mode = "post-copy-recovering";
	long_names.remaining = 1023ull << 30;
	long_names.dirty_bps = 12345.6e6;
	long_names.copy_bps = 23456.7e6;
	long_names.pass = 1234567;
	for (unsigned cols = 1; cols <= 300; cols++) {
		const struct progress_view *v[] = {&busy, &long_names};

		for (size_t k = 0; k < 2; k++) {
			size_t n = progress_line(v[k], cols, line, sizeof(line));

			assert_int_equal(n, strlen(line));
			assert_true(n < cols || (cols <= 1 && n <= 1));
			assert_null(strchr(line, '\n'));
			/* Wide enough for the shortest form: the verdict is there. */
			if (cols > 20)
				assert_non_null(strstr(line, "not converging"));
		}
	}
}

static void test_forms(void **state)
{
	struct progress_view v = busy;
	char line[512];

	(void)state;
	/* Wide: the full line, as before. */
	progress_line(&v, 200, line, sizeof(line));
	assert_string_equal(line, "Running         pre-copy  42%  remaining 512.0 MiB  dirty 118.3 MB/s vs copy "
				  "120.1 MB/s  not converging  pass 137");
	/* 80 columns: every figure still there, shorter. */
	progress_line(&v, 80, line, sizeof(line));
	assert_true(strlen(line) <= 79);
	assert_non_null(strstr(line, "Running"));
	assert_non_null(strstr(line, "42%"));
	assert_non_null(strstr(line, "512.0 MiB"));
	assert_non_null(strstr(line, "118"));
	assert_non_null(strstr(line, "120"));
	assert_non_null(strstr(line, "not converging"));
	/* Converging: an ETA, long ones in minutes and hours. */
	v.converging = 1;
	v.eta_ms = 12300;
	progress_line(&v, 80, line, sizeof(line));
	assert_non_null(strstr(line, "ETA 12.3 s"));
	v.eta_ms = 2345000;
	progress_line(&v, 80, line, sizeof(line));
	assert_non_null(strstr(line, "ETA 39 min 05 s"));
	v.eta_ms = 7500000;
	progress_line(&v, 80, line, sizeof(line));
	assert_non_null(strstr(line, "ETA 2 h 05 min"));
	v.eta_ms = -1;
	progress_line(&v, 80, line, sizeof(line));
	assert_non_null(strstr(line, "ETA ?"));
	/* A buffer smaller than the terminal bounds it too. */
	assert_int_equal(progress_line(&v, 200, line, 10), 9);
	assert_int_equal(progress_line(&v, 200, line, 0), 0);
}

static void test_width(void **state)
{
	(void)state;
	assert_int_equal(progress_width(132, "80"), 132);
	assert_int_equal(progress_width(0, "100"), 100);
	assert_int_equal(progress_width(0, NULL), 80);
	assert_int_equal(progress_width(0, ""), 80);
	assert_int_equal(progress_width(0, "wide"), 80);
	assert_int_equal(progress_width(0, "0"), 80);
	assert_int_equal(progress_width(0, "-5"), 80);
	assert_int_equal(progress_width(0, "99999"), 80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fits_every_width),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_width),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
