/* What ferry takes from QEMU's replies: excerpts of replies recorded from
 * QEMU 10.0.2 and 7.2 (query-version, query-commands,
 * query-migrate-capabilities, query-migrate-parameters). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "qmp/qemu_caps.h"

#define V10_VERSION "{\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"Debian 1:10.0.2+ds-2\"}"
#define V10_COMMANDS "[{\"name\": \"query-block-jobs\"}, {\"name\": \"block-job-change\"}, {\"name\": \"migrate\"}]"
#define V10_CAPS "[{\"state\": false, \"capability\": \"xbzrle\"}, {\"state\": false, \"capability\": \"postcopy-preempt\"}]"
#define V10_PARAMS "{\"multifd-channels\": 2, \"zero-page-detection\": \"multifd\", \"downtime-limit\": 300}"

#define V72_VERSION "{\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7\"}"
#define V72_COMMANDS "[{\"name\": \"query-block-jobs\"}, {\"name\": \"migrate\"}]"
#define V72_CAPS "[{\"state\": false, \"capability\": \"xbzrle\"}, {\"state\": false, \"capability\": \"postcopy-preempt\"}]"
#define V72_PARAMS "{\"multifd-channels\": 2, \"downtime-limit\": 300}"

static int parse(const char *v, const char *c, const char *caps, const char *p, struct qemu_caps *out)
{
	struct json_object *jv = json_tokener_parse(v), *jc = c ? json_tokener_parse(c) : NULL;
	struct json_object *jcaps = caps ? json_tokener_parse(caps) : NULL;
	struct json_object *jp = p ? json_tokener_parse(p) : NULL;
	int r = qcaps_parse(jv, jc, jcaps, jp, out);

	json_object_put(jv);
	json_object_put(jc);
	json_object_put(jcaps);
	json_object_put(jp);
	return r;
}

static void test_qemu10(void **state)
{
	struct qemu_caps c;
	char buf[160];

	(void)state;
	assert_int_equal(parse(V10_VERSION, V10_COMMANDS, V10_CAPS, V10_PARAMS, &c), 0);
	assert_int_equal(c.major, 10);
	assert_int_equal(c.minor, 0);
	assert_int_equal(c.micro, 2);
	assert_true(qcaps_supported(&c));
	assert_true(qcaps_has(&c, QCAP_BLOCK_JOB_CHANGE));
	assert_true(qcaps_has(&c, QCAP_ACTIVELY_SYNCED));
	assert_true(qcaps_has(&c, QCAP_ZERO_PAGE_DETECTION));
	assert_true(qcaps_has(&c, QCAP_POSTCOPY_PREEMPT));
	assert_true(qcaps_has(&c, QCAP_TCG_DIRTY_COHERENT));
	assert_string_equal(qcaps_describe(&c, buf, sizeof(buf)),
			    "10.0.2 block-job-change,actively-synced,zero-page-detection,postcopy-preempt,"
			    "tcg-dirty-coherent");
}

/* 7.2 gets the old paths: no in-place copy-mode switch, no multifd zero
 * pages, and the TCG dirty-sync bug. */
static void test_qemu72(void **state)
{
	struct qemu_caps c;
	char buf[160];

	(void)state;
	assert_int_equal(parse(V72_VERSION, V72_COMMANDS, V72_CAPS, V72_PARAMS, &c), 0);
	assert_false(qcaps_supported(&c));
	assert_false(qcaps_has(&c, QCAP_BLOCK_JOB_CHANGE));
	assert_false(qcaps_has(&c, QCAP_ACTIVELY_SYNCED));
	assert_false(qcaps_has(&c, QCAP_ZERO_PAGE_DETECTION));
	assert_true(qcaps_has(&c, QCAP_POSTCOPY_PREEMPT));
	assert_false(qcaps_has(&c, QCAP_TCG_DIRTY_COHERENT));
	assert_string_equal(qcaps_describe(&c, buf, sizeof(buf)), "7.2.0 postcopy-preempt");
}

/* The boundaries: 8.2 is the oldest supported; 9.0 has the TCG fix. A
 * feature's query missing (NULL) means the feature is absent. */
static void test_boundaries(void **state)
{
	struct qemu_caps c;

	(void)state;
	assert_int_equal(parse("{\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 8}}", NULL, NULL, NULL, &c), 0);
	assert_false(qcaps_supported(&c));
	assert_int_equal(c.features, 0);
	assert_int_equal(parse("{\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 8}}", NULL, NULL, NULL, &c), 0);
	assert_true(qcaps_supported(&c));
	assert_false(qcaps_has(&c, QCAP_TCG_DIRTY_COHERENT));
	assert_int_equal(parse("{\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 9}}", NULL, NULL, NULL, &c), 0);
	assert_true(qcaps_has(&c, QCAP_TCG_DIRTY_COHERENT));
}

/* Replies that are not what QEMU sends are refused or ignored, never
 * taken for a feature. */
static void test_malformed(void **state)
{
	struct qemu_caps c;
	char tiny[4];

	(void)state;
	assert_int_equal(parse("{}", NULL, NULL, NULL, &c), -EPROTO);
	assert_int_equal(parse("{\"qemu\": {\"major\": \"10\", \"minor\": 0, \"micro\": 0}}", NULL, NULL, NULL, &c),
			 -EPROTO);
	assert_int_equal(parse("{\"qemu\": {\"major\": -1, \"minor\": 0, \"micro\": 0}}", NULL, NULL, NULL, &c),
			 -EPROTO);
	assert_int_equal(parse("[]", NULL, NULL, NULL, &c), -EPROTO);
	assert_int_equal(parse(V10_VERSION, "{\"name\": \"block-job-change\"}", "[{\"capability\": 5}]",
			       "[\"zero-page-detection\"]", &c),
			 0);
	assert_int_equal(c.features, QCAP_TCG_DIRTY_COHERENT);
	/* A short buffer stays terminated. */
	assert_int_equal(strlen(qcaps_describe(&c, tiny, sizeof(tiny))), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu10),
		cmocka_unit_test(test_qemu72),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
