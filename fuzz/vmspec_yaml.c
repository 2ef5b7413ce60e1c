/* Fuzzes the VM spec in YAML (engine/vmspec.h: vmspec_parse_yaml, the path
 * of `ferryctl apply -f` and of spec files), with schema_yaml_to_json and
 * the table-driven decoder and validation behind it.
 *
 * Properties: a failure always says why; a spec that parses survives the
 * documented round trip vmspec_from_json(vmspec_to_json(s)) unchanged, and
 * vmspec_dup copies it exactly. */
#include <json-c/json.h>

#include "engine/vmspec.h"
#include "schema/input.h"
#include "schema/yaml.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

/* Property checks shared in spirit with vmspec_json.c: s re-encodes and
 * decodes to the same JSON text. */
static void round_trip(const struct vm_spec *s)
{
	struct json_object *j1 = vmspec_to_json(s), *j2 = NULL;
	struct vm_spec *back = NULL, *dup = vmspec_dup(s);
	char err[512] = "";

	if (!j1 || !dup)
		goto out;
	fuzz_assert(vmspec_from_json(j1, &back, err, sizeof(err)) == 0);
	j2 = vmspec_to_json(back);
	if (j2)
		fuzz_assert(!strcmp(json_object_to_json_string(j1), json_object_to_json_string(j2)));
	json_object_put(j2);
	j2 = vmspec_to_json(dup);
	if (j2)
		fuzz_assert(!strcmp(json_object_to_json_string(j1), json_object_to_json_string(j2)));
out:
	json_object_put(j1);
	json_object_put(j2);
	vmspec_free(back);
	vmspec_free(dup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_spec *s = NULL;
	char err[512] = "";

	if (vmspec_parse_yaml((const char *)data, size, "fuzz.yaml", &s, err, sizeof(err)) < 0) {
		fuzz_assert(s == NULL && err[0] != '\0');
		return 0;
	}
	round_trip(s);
	vmspec_free(s);
	return 0;
}
