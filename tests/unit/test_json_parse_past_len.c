/* Regression: schema_json_parse looked for trailing garbage with strspn
 * from the end of the JSON value, so it read past len until a NUL (found by
 * the vmspec_json fuzz harness: a heap overflow on an unterminated buffer),
 * and judged bytes beyond len as part of the text. Only len bytes count. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "schema/input.h"

static void test_bytes_after_len_are_not_read(void **state)
{
	static const char text[] = "{\"name\":\"a\"} garbage";
	struct json_object *o = NULL;
	char err[256];

	(void)state;
	assert_int_equal(schema_json_parse(text, strlen("{\"name\":\"a\"}"), "t.json", &o, err,
					   sizeof(err)),
			 0);
	assert_non_null(o);
	json_object_put(o);
}

static void test_unterminated_buffer(void **state)
{
	static const char body[] = "[\"name\",\"a\"]  ";
	size_t len = sizeof(body) - 1;
	char *text = malloc(len); /* exactly len bytes, no NUL: ASan sees a read past */
	struct json_object *o = NULL;
	char err[256];

	(void)state;
	assert_non_null(text);
	memcpy(text, body, len);
	assert_int_equal(schema_json_parse(text, len, "t.json", &o, err, sizeof(err)), 0);
	assert_true(json_object_is_type(o, json_type_array));
	json_object_put(o);
	free(text);
}

static void test_garbage_within_len_still_refused(void **state)
{
	static const char text[] = "{\"name\":\"a\"} x";
	static const char nul[] = "{\"name\":\"a\"}\0x";
	struct json_object *o = NULL;
	char err[256];

	(void)state;
	assert_int_equal(schema_json_parse(text, strlen(text), "t.json", &o, err, sizeof(err)),
			 -EINVAL);
	assert_null(o);
	assert_non_null(strstr(err, "invalid JSON"));
	assert_int_equal(schema_json_parse(nul, sizeof(nul) - 1, "t.json", &o, err, sizeof(err)),
			 -EINVAL);
	assert_null(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes_after_len_are_not_read),
		cmocka_unit_test(test_unterminated_buffer),
		cmocka_unit_test(test_garbage_within_len_still_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
