/* Fuzzes the VM spec in JSON (engine/vmspec.h: vmspec_from_json), as it
 * arrives in a REST body (POST /v1/vms: agent/api.c decodes the body with
 * json-c, then vmspec_from_json and vmspec_validate), in a peer's "prepare"
 * message, and in a spec file starting with '{' (schema_json_parse, which
 * this harness uses to turn the input into a tree).
 *
 * Properties: as in vmspec_yaml.c, a failure says why and an accepted spec
 * survives vmspec_from_json(vmspec_to_json(s)) unchanged. */
#include <json-c/json.h>

#include "engine/vmspec.h"
#include "schema/input.h"
#include "schema/yaml.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

static void round_trip(const struct vm_spec *s)
{
	struct json_object *j1 = vmspec_to_json(s), *j2 = NULL;
	struct vm_spec *back = NULL;
	char err[512] = "";

	if (!j1)
		return;
	fuzz_assert(vmspec_from_json(j1, &back, err, sizeof(err)) == 0);
	j2 = vmspec_to_json(back);
	if (j2)
		fuzz_assert(!strcmp(json_object_to_json_string(j1), json_object_to_json_string(j2)));
	json_object_put(j1);
	json_object_put(j2);
	vmspec_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL;
	struct vm_spec *s = NULL;
	char err[512] = "";

	if (schema_json_parse((const char *)data, size, "fuzz.json", &o, err, sizeof(err)) < 0) {
		fuzz_assert(o == NULL && err[0] != '\0');
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		goto out; /* the API refuses it before decoding */
	if (vmspec_from_json(o, &s, err, sizeof(err)) < 0) {
		fuzz_assert(s == NULL && err[0] != '\0');
		goto out;
	}
	fuzz_assert(vmspec_validate(s, err, sizeof(err)) == 0);
	round_trip(s);
out:
	vmspec_free(s);
	json_object_put(o);
	return 0;
}
