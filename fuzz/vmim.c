/* Fuzzes the reading of a KubeVirt VirtualMachineInstanceMigration manifest
 * (`ferryctl create -f vmim.yaml`). The decoding there lives in a static
 * function of cli/ferryctl.c (cmd_create), which parses the file with
 * schema_yaml_to_json (engine/vmspec.h) and then picks apiVersion, kind,
 * metadata.name and spec.vmiName with json-c getters. The harness runs the
 * same parser and the same look-ups on the fuzzed manifest, plus
 * schema_line for every key it asks about (used for "file:line:" errors).
 *
 * Properties: a failure says why; the tree of a success is a JSON value
 * json-c can print; a line number is never negative. */
#include <json-c/json.h>

#include "engine/vmspec.h"
#include "schema/input.h"
#include "schema/yaml.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static const char *str_at(struct json_object *doc, const char *a, const char *b)
{
	struct json_object *o = json_object_object_get(doc, a);

	if (b)
		o = json_object_object_get(o, b);
	return json_object_get_string(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {"apiVersion", "kind", "metadata.name", "spec.vmiName",
					    "spec", "metadata.labels[0]", "a[1].b[2]"};
	struct json_object *doc = NULL;
	const char *api, *kind, *name, *vmi;
	char err[512] = "";

	if (schema_yaml_to_json((const char *)data, size, "vmim.yaml", &doc, err, sizeof(err)) < 0) {
		fuzz_assert(doc == NULL && err[0] != '\0');
		return 0;
	}
	fuzz_assert(json_object_to_json_string(doc) != NULL);
	api = str_at(doc, "apiVersion", NULL);
	kind = str_at(doc, "kind", NULL);
	name = str_at(doc, "metadata", "name");
	vmi = str_at(doc, "spec", "vmiName");
	/* ferryctl compares and copies them as C strings. */
	if (api && kind && name && vmi)
		fuzz_assert(strlen(api) + strlen(kind) + strlen(name) + strlen(vmi) < SIZE_MAX);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		fuzz_assert(schema_line(doc, paths[i]) >= 0);
	json_object_put(doc);
	return 0;
}
