/* POST /v1/migrations's body as a typed request (api_migration_request):
 * the VM, node, name and flags into a mig_request, the settings into the
 * request's layer (absent: unset); a body that names no VM, a bad setting,
 * or a VM or node no agent could have, is refused. */
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
#include "agent/api.h"

static struct mset_request set;

static int decode(const char *json, struct mig_request *req, char *err, size_t errlen)
{
	struct json_object *body = json ? json_tokener_parse(json) : NULL;
	int r;

	err[0] = '\0';
	r = api_migration_request(body, "node-a", req, &set, err, errlen);
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
	assert_int_equal(req.verify_memory, 0);
	assert_int_equal(req.keep_paused, 0);
	for (int i = 0; i < MSET_COUNT; i++)
		assert_int_equal(mset_get(&set.mig, (enum mset_id)i), FERRY_UNSET);
	assert_int_equal(set.post_copy_now, 0);
}

static void every_field(void **state)
{
	struct mig_request req;
	char err[200];

	(void)state;
	assert_int_equal(decode("{\"vm\": \"g1\", \"node\": \"node-b\", \"name\": \"mig-1\", \"multifdChannels\": 4,"
				" \"compress\": false, \"maxBandwidthMiBps\": 0, \"verifyMemory\": true,"
				" \"paused\": true, \"postCopyNow\": true}",
				&req, err, sizeof(err)), 0);
	assert_string_equal(req.target_node, "node-b");
	assert_string_equal(req.name, "mig-1");
	assert_int_equal(req.verify_memory, 1);
	assert_int_equal(req.keep_paused, 1);
	assert_int_equal(set.mig.multifd_channels, 4);
	assert_int_equal(set.mig.compress, 0);
	assert_int_equal(set.mig.max_bandwidth_mibps, 0);
	assert_int_equal(set.post_copy_now, 1);
	/* A setting out of range is refused here, naming the request's key. */
	assert_int_equal(decode("{\"vm\": \"g1\", \"multifdChannels\": 99}", &req, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "multifdChannels"));
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
