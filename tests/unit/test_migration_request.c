/* POST /v1/migrations's body as a typed request (api_migration_request):
 * what is absent stays unset, flags and numbers come through, and a body
 * that names no VM, or a VM or node no agent could have, is refused. */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent.h"

static int decode(const char *json, struct mig_request *req, char *err, size_t errlen)
{
	struct json_object *body = json ? json_tokener_parse(json) : NULL;
	int r;

	err[0] = '\0';
	r = api_migration_request(body, "node-a", req, err, errlen);
	json_object_put(body);
	return r;
}

static void minimal(void **state)
{
	struct mig_request req;
	char err[200];

	(void)state;
	assert_int_equal(decode("{\"vm\": \"g1\"}", &req, err, sizeof(err)), 0);
	assert_string_equal(req.vm, "g1");
	assert_string_equal(req.target_node, "");
	assert_string_equal(req.name, "");
	assert_int_equal(req.multifd_channels, FERRY_UNSET);
	assert_int_equal(req.compress, FERRY_UNSET);
	assert_int_equal(req.max_bandwidth_mibps, FERRY_UNSET);
	assert_int_equal(req.downtime_limit_ms, FERRY_UNSET);
	assert_int_equal(req.progress_timeout_s, FERRY_UNSET);
	assert_int_equal(req.completion_timeout_s_per_gib, FERRY_UNSET);
	assert_int_equal(req.auto_converge, FERRY_UNSET);
	assert_int_equal(req.post_copy, FERRY_UNSET);
	assert_int_equal(req.downtime_step_ms, FERRY_UNSET);
	assert_int_equal(req.escalate_after_s, FERRY_UNSET);
	assert_int_equal(req.verify_memory, 0);
	assert_int_equal(req.keep_paused, 0);
	assert_int_equal(req.post_copy_now, 0);
}

static void every_field(void **state)
{
	struct mig_request req;
	char err[200];

	(void)state;
	assert_int_equal(decode("{\"vm\": \"g1\", \"node\": \"node-b\", \"name\": \"mig-1\", \"multifdChannels\": 4,"
				" \"compress\": false, \"maxBandwidthMiBps\": 0, \"downtimeLimitMs\": 300,"
				" \"progressTimeoutS\": 0, \"completionTimeoutSPerGiB\": 60, \"autoConverge\": true,"
				" \"postCopy\": false, \"postCopyNow\": true, \"downtimeStepMs\": 50,"
				" \"escalateAfterS\": 7, \"verifyMemory\": true, \"paused\": true}",
				&req, err, sizeof(err)), 0);
	assert_string_equal(req.target_node, "node-b");
	assert_string_equal(req.name, "mig-1");
	assert_int_equal(req.multifd_channels, 4);
	assert_int_equal(req.compress, 0);
	assert_int_equal(req.max_bandwidth_mibps, 0);
	assert_int_equal(req.downtime_limit_ms, 300);
	assert_int_equal(req.progress_timeout_s, 0);
	assert_int_equal(req.completion_timeout_s_per_gib, 60);
	assert_int_equal(req.auto_converge, 1);
	/* postCopyNow implies postCopy: the agent decides that, not the decoder. */
	assert_int_equal(req.post_copy, 0);
	assert_int_equal(req.post_copy_now, 1);
	assert_int_equal(req.downtime_step_ms, 50);
	assert_int_equal(req.escalate_after_s, 7);
	assert_int_equal(req.verify_memory, 1);
	assert_int_equal(req.keep_paused, 1);
	/* Out-of-range values pass: the agent's settings checks refuse them. */
	assert_int_equal(decode("{\"vm\": \"g1\", \"multifdChannels\": 99}", &req, err, sizeof(err)), 0);
	assert_int_equal(req.multifd_channels, 99);
}

static void refused(void **state)
{
	static const char long_name[] = "\"0123456789012345678901234567890123456789012345678901234567890123\"";
	struct mig_request req;
	char err[300], json[200];

	(void)state;
	assert_int_equal(decode(NULL, &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a migration needs \"vm\"");
	assert_int_equal(decode("{\"node\": \"node-b\"}", &req, err, sizeof(err)), -EINVAL);
	snprintf(json, sizeof(json), "{\"vm\": %s}", long_name);
	assert_int_equal(decode(json, &req, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "runs on node node-a"));
	snprintf(json, sizeof(json), "{\"vm\": \"g1\", \"node\": %s}", long_name);
	assert_int_equal(decode(json, &req, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "not a peer of node-a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal),
		cmocka_unit_test(every_field),
		cmocka_unit_test(refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
