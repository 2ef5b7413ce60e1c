/* Fuzzes the body of POST /v1/migrations as ferryd reads it: the body's
 * text through schema_json_parse (what agent/api.c's dispatch does), then
 * api_migration_request (agent/api.h), the table-driven decode with the
 * settings embedded, the name checks and the range checks.
 *
 * Properties: a refusal says why; an accepted request names a VM that is a
 * DNS-1123 label, and every setting it sets is in its range. */
#include <json-c/json.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "schema/check.h"
#include "schema/input.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *body = NULL;
	struct mset_request set;
	struct mig_request req;
	struct schema_err e;
	char err[600] = "";

	if (schema_json_parse((const char *)data, size, "request body", &body, err, sizeof(err)) < 0) {
		fuzz_assert(body == NULL && err[0] != '\0');
		return 0;
	}
	if (api_migration_request(body, &req, &set, err, sizeof(err)) < 0) {
		fuzz_assert(err[0] != '\0');
	} else {
		fuzz_assert(schema_check_dns_label(&e, "vm", req.vm) == 0);
		fuzz_assert(mset_request_check(&set, err, sizeof(err)) == 0);
	}
	json_object_put(body);
	return 0;
}
