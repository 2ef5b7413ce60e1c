/* Fuzzes the reading of a KubeVirt VirtualMachineInstanceMigration manifest
 * (`ferryctl create -f vmim.yaml`): vmim_manifest_parse (schema/vmim.h),
 * which turns YAML or JSON into a tree, decodes it strictly with the schema
 * decoder and checks the names. schema_line is run for the keys it reports
 * on (used for "file:line:" errors).
 *
 * Properties: a failure says why; a success has the one apiVersion and kind
 * ferry creates and two names that are DNS-1123 labels; a line number is
 * never negative. */
#include <json-c/json.h>

#include "schema/check.h"
#include "schema/vmim.h"
#include "schema/yaml.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {"apiVersion", "kind", "metadata.name", "spec.vmiName",
					    "spec", "metadata.labels[0]", "a[1].b[2]"};
	struct json_object *doc = NULL;
	struct vmim_manifest m;
	struct schema_err e;
	char err[600] = "";

	if (vmim_manifest_parse((const char *)data, size, "vmim.yaml", &m, err, sizeof(err)) < 0) {
		fuzz_assert(err[0] != '\0');
	} else {
		fuzz_assert(!strcmp(m.api_version, "kubevirt.io/v1"));
		fuzz_assert(!strcmp(m.kind, "VirtualMachineInstanceMigration"));
		fuzz_assert(schema_check_dns_label(&e, "n", m.name) == 0);
		fuzz_assert(schema_check_dns_label(&e, "v", m.vmi_name) == 0);
	}
	if (schema_yaml_to_json((const char *)data, size, "vmim.yaml", &doc, err, sizeof(err)) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		fuzz_assert(schema_line(doc, paths[i]) >= 0);
	json_object_put(doc);
	return 0;
}
