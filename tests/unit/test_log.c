/* Log lines cannot be forged by the values in them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/log.h"

static void test_controls_escaped(void **state)
{
	char out[64];

	(void)state;
	log_escape_controls("a\nlevel=error comp=x\r\t\x01\x7f", out, sizeof(out));
	assert_string_equal(out, "a\\nlevel=error comp=x\\r\\t\\x01\\x7f");
	/* cut at the buffer's end, never mid-escape, always terminated */
	log_escape_controls("ab\ncd", out, 4);
	assert_string_equal(out, "ab");
	log_escape_controls("abc", out, 1);
	assert_string_equal(out, "");
}

static void test_quotes_escaped(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(log_quote("x\" role=admin \\", buf, sizeof(buf)), "x\\\" role=admin \\\\");
	assert_string_equal(log_quote(NULL, buf, sizeof(buf)), "");
	assert_string_equal(log_quote("\"\"", buf, 4), "\\\"");
	/* four slots: the arguments of one call do not overwrite each other */
	{
		const char *a = log_q("1\""), *b = log_q("2"), *c = log_q("3"), *d = log_q("4");

		assert_string_equal(a, "1\\\"");
		assert_string_equal(b, "2");
		assert_string_equal(c, "3");
		assert_string_equal(d, "4");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls_escaped),
		cmocka_unit_test(test_quotes_escaped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
