/* POST /v1/migrations's body as a typed request (api_migration_request):
 * the VM, node, name and flags into a mig_request, the settings into the
 * request's layer (absent: unset); a body that names no VM, a bad setting,
 * an unknown key, a value of the wrong type, or a name KubeVirt would not
 * take is refused, naming the key. */
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
	r = api_migration_request(body, req, &set, err, errlen);
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
	char err[400], json[200];

	(void)state;
	assert_int_equal(decode(NULL, &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a migration needs \"vm\"");
	assert_int_equal(decode("{\"node\": \"node-b\"}", &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a migration needs \"vm\"");
	snprintf(json, sizeof(json), "{\"vm\": %s}", long_name);
	assert_int_equal(decode(json, &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "vm is too long (max 63 characters)");
	snprintf(json, sizeof(json), "{\"vm\": \"g1\", \"node\": %s}", long_name);
	assert_int_equal(decode(json, &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "node is too long (max 63 characters)");
}

/* Strict input: every bad body names its key, and nothing is half-filled
 * into a request that is refused. */
static void strict(void **state)
{
	static const struct {
		const char *body, *err;
	} cases[] = {
		{"{\"vm\": 5}", "vm must be a string, not an integer"},
		{"{\"vm\": true}", "vm must be a string, not a boolean"},
		{"{\"vm\": [\"g1\"]}", "vm must be a string, not a list"},
		{"{\"vm\": \"g1\", \"nodee\": \"node-c\"}", "unknown key \"nodee\""},
		{"{\"vm\": \"g1\", \"node\": 3}", "node must be a string, not an integer"},
		{"{\"vm\": \"g1\", \"verifyMemory\": \"yes\"}", "verifyMemory must be true or false, not a string"},
		{"{\"vm\": \"g1\", \"paused\": 1}", "paused must be true or false, not an integer"},
		{"{\"vm\": \"g1\", \"progressTimeoutS\": \"five\"}", "progressTimeoutS must be an integer, not a string"},
		{"{\"vm\": \"g1\", \"progressTimeoutS\": 0}", "progressTimeoutS must be between 1 and 86400 (got 0)"},
		{"{\"vm\": \"g1\", \"progressTimeoutS\": -5}", "progressTimeoutS must be between 1 and 86400 (got -5)"},
		{"{\"vm\": \"g1\", \"spec\": {}}", "unknown key \"spec\""},
		{"{\"vm\": \"Bad_Name\"}",
		 "vm: \"Bad_Name\" is not a valid name: a DNS-1123 label is at most 63 characters of "
		 "lowercase a-z, 0-9 and '-', starting and ending with a letter or digit"},
		{"{\"vm\": \"g1\", \"name\": \"Bad_Name\"}",
		 "name: \"Bad_Name\" is not a valid name: a DNS-1123 label is at most 63 characters of "
		 "lowercase a-z, 0-9 and '-', starting and ending with a letter or digit"},
		{"{\"vm\": \"-g1\"}", NULL},
		{"{\"vm\": \"g1-\"}", NULL},
		{"{\"vm\": \"\"}", "a migration needs \"vm\""},
		{"{\"vm\": \"g1\", \"node\": \"Node_B\"}", NULL},
	};
	struct mig_request req;
	char err[400];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&req, 0x5a, sizeof(req));
		assert_int_equal(decode(cases[i].body, &req, err, sizeof(err)), -EINVAL);
		if (cases[i].err)
			assert_string_equal(err, cases[i].err);
		else
			assert_true(err[0] != '\0');
	}
	/* The names KubeVirt takes pass. */
	assert_int_equal(decode("{\"vm\": \"0g-1\", \"name\": \"mig-2\"}", &req, err, sizeof(err)), 0);
	assert_string_equal(req.vm, "0g-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal),
		cmocka_unit_test(every_field),
		cmocka_unit_test(refused),
		cmocka_unit_test(strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
