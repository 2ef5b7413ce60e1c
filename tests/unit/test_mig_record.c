/* One record per migration on both nodes: the source's "outcome" message
 * (engine/migration.c) round-trips into the target's status, refuses what
 * is not an outcome, and the record's JSON shows no pause for a guest that
 * did not pause; agent_int.h's record_time_us orders history. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "agent/agent_int.h"
#include "engine/migration.h"

static void source_status(struct mig_status *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "mig-1");
	snprintf(st->target_addr, sizeof(st->target_addr), "127.0.0.1:7000");
	snprintf(st->failure_reason, sizeof(st->failure_reason), "cancelled: cancelled by request");
	snprintf(st->cancelled_by, sizeof(st->cancelled_by), "root@unix (admin)");
	st->phase = MIG_FAILED;
	st->start_us = 1700000000000000ull;
	st->end_us = st->start_us + 198000000ull;
	st->total_ms = 198000;
	st->pause_ms = -1;
	st->abort_requested = 1;
}

/* What the source knew is what the target keeps, its own load failure
 * replaced by the source's reason. */
static void test_round_trip(void **state)
{
	struct mig_status src, tgt = {0};
	struct json_object *msg;
	char err[200];

	(void)state;
	source_status(&src);
	msg = mig_outcome_to_json(&src);
	assert_null(json_object_object_get(msg, "pause_ms"));
	tgt.pause_ms = -1;
	snprintf(tgt.failure_reason, sizeof(tgt.failure_reason), "target QEMU could not load the incoming state");
	assert_int_equal(mig_outcome_apply(&tgt, msg, 1, err, sizeof(err)), 0);
	assert_string_equal(tgt.name, "mig-1");
	assert_string_equal(tgt.target_addr, "127.0.0.1:7000");
	assert_string_equal(tgt.failure_reason, "cancelled: cancelled by request");
	assert_string_equal(tgt.cancelled_by, "root@unix (admin)");
	assert_int_equal(tgt.total_ms, 198000);
	assert_int_equal(tgt.start_us, src.start_us);
	assert_int_equal(tgt.end_us, src.end_us);
	assert_int_equal(tgt.pause_ms, -1);
	assert_int_equal(tgt.abort_requested, 1);
	json_object_put(msg);
}

/* A target that succeeded keeps no failure reason; the pause comes over. */
static void test_success_keeps_no_reason(void **state)
{
	struct mig_status src, tgt = {0};
	struct json_object *msg;
	char err[200];

	(void)state;
	source_status(&src);
	src.phase = MIG_SUCCEEDED;
	src.pause_ms = 42;
	src.failure_reason[0] = '\0';
	src.cancelled_by[0] = '\0';
	/* How the source coded the pages comes over too. */
	src.page_cache_bytes = 1u << 28;
	src.pages = 1000;
	src.pages_zero = 1;
	src.pages_dup = 2;
	src.pages_delta = 300;
	msg = mig_outcome_to_json(&src);
	tgt.pause_ms = -1;
	assert_int_equal(mig_outcome_apply(&tgt, msg, 0, err, sizeof(err)), 0);
	assert_int_equal(tgt.pause_ms, 42);
	assert_int_equal(tgt.pages, 1000);
	assert_int_equal(tgt.pages_zero, 1);
	assert_int_equal(tgt.pages_dup, 2);
	assert_int_equal(tgt.pages_delta, 300);
	assert_string_equal(tgt.failure_reason, "");
	assert_string_equal(tgt.cancelled_by, "");
	json_object_put(msg);
}

/* Bad outcomes change nothing and say what was wrong. */
static void test_refusals(void **state)
{
	static const char *bad[] = {
		"{\"op\":\"outcome\"}",
		"{\"op\":\"outcome\",\"phase\":\"Running\"}",
		"{\"op\":\"outcome\",\"phase\":\"Failed\",\"total_ms\":-5}",
		"{\"op\":\"outcome\",\"phase\":\"Failed\",\"total_ms\":\"5\"}",
		"{\"op\":\"outcome\",\"phase\":\"Failed\",\"name\":5}",
		"{\"op\":\"outcome\",\"phase\":\"Failed\",\"start_us\":10,\"end_us\":5}",
		"{\"op\":\"outcome\",\"phase\":\"Failed\",\"abort_requested\":1}",
		"{\"op\":\"outcome\",\"phase\":\"Failed\",\"pages_delta\":-1}",
	};
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *msg = json_tokener_parse(bad[i]);
		struct mig_status tgt = {0};

		tgt.pause_ms = -1;
		snprintf(tgt.name, sizeof(tgt.name), "kept");
		err[0] = '\0';
		assert_non_null(msg);
		assert_int_equal(mig_outcome_apply(&tgt, msg, 1, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		assert_string_equal(tgt.name, "kept");
		json_object_put(msg);
	}
	{
		/* A name longer than a name can be. */
		char name[200];
		struct json_object *msg = json_object_new_object();
		struct mig_status tgt = {0};

		memset(name, 'a', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		json_object_object_add(msg, "phase", json_object_new_string("Failed"));
		json_object_object_add(msg, "name", json_object_new_string(name));
		assert_int_equal(mig_outcome_apply(&tgt, msg, 1, err, sizeof(err)), -EINVAL);
		json_object_put(msg);
	}
}

/* No pause is no number in the API: pauseMs is absent, never -1. */
static void test_json_pause(void **state)
{
	struct mig_status st;
	struct json_object *o;

	(void)state;
	source_status(&st);
	o = mig_status_to_json(&st);
	assert_null(json_object_object_get(o, "pauseMs"));
	assert_string_equal(json_object_get_string(json_object_object_get(o, "cancelledBy")), "root@unix (admin)");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "name")), "mig-1");
	json_object_put(o);
	st.pause_ms = 0;
	o = mig_status_to_json(&st);
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "pauseMs")), 0);
	json_object_put(o);
}

/* Old records (whole seconds) and new ones (milliseconds) order together. */
static void test_record_time(void **state)
{
	(void)state;
	assert_int_equal(record_time_us("2026-01-02T03:04:05Z"), 1767323045000000ull);
	assert_int_equal(record_time_us("2026-01-02T03:04:05.250Z"), 1767323045250000ull);
	assert_true(record_time_us("2026-01-02T03:04:05.001Z") > record_time_us("2026-01-02T03:04:05Z"));
	assert_int_equal(record_time_us(NULL), 0);
	assert_int_equal(record_time_us(""), 0);
	assert_int_equal(record_time_us("2026-01-02 03:04:05"), 0);
	assert_int_equal(record_time_us("2026-01-02T03:04:05+01:00"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_success_keeps_no_reason),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_json_pause),
		cmocka_unit_test(test_record_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
