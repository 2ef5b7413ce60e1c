/* The VirtualMachineInstanceMigration manifest (schema/vmim.h): KubeVirt's
 * example as written, in YAML and JSON; every unknown key, wrong type and
 * bad name refused with the file, line and key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schema/vmim.h"

static const char *refuse(const char *text)
{
	static char err[600];
	struct vmim_manifest m;

	err[0] = '\0';
	assert_int_equal(vmim_manifest_parse(text, strlen(text), "vmim.yaml", &m, err, sizeof(err)),
			 -EINVAL);
	return err;
}

#define HEAD "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\n"

static void test_kubevirt_example(void **state)
{
	static const char yaml[] = HEAD "metadata:\n  name: migration-job\nspec:\n  vmiName: vmi-fedora\n";
	static const char json[] =
		"{\"apiVersion\": \"kubevirt.io/v1\", \"kind\": \"VirtualMachineInstanceMigration\","
		" \"metadata\": {\"name\": \"m1\", \"namespace\": \"default\"}, \"spec\": {\"vmiName\": \"g1\"}}";
	struct vmim_manifest m;
	char err[600] = "";

	(void)state;
	assert_int_equal(vmim_manifest_parse(yaml, strlen(yaml), "vmim.yaml", &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "migration-job");
	assert_string_equal(m.vmi_name, "vmi-fedora");
	assert_int_equal(vmim_manifest_parse(json, strlen(json), "vmim.json", &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "m1");
	assert_string_equal(m.vmi_name, "g1");
}

static void test_refused(void **state)
{
	(void)state;
	assert_string_equal(refuse(HEAD "metadata:\n  name: m1\nspec:\n  vmiNmae: g1\n"),
			    "vmim.yaml:6: unknown key \"spec.vmiNmae\"");
	assert_string_equal(refuse(HEAD "metadata:\n  name: m1\n  labels: {a: b}\nspec:\n  vmiName: g1\n"),
			    "vmim.yaml:5: unknown key \"metadata.labels\"");
	assert_string_equal(refuse(HEAD "metadata:\n  name: m1\nspec: g1\n"),
			    "vmim.yaml:5: spec must be a mapping, not a string");
	assert_string_equal(refuse(HEAD "metadata:\n  name: m1\nspec:\n  vmiName: [g1]\n"),
			    "vmim.yaml:6: spec.vmiName must be a string, not a list");
	assert_string_equal(refuse(HEAD "metadata:\n  name: Bad_Name\nspec:\n  vmiName: g1\n"),
			    "vmim.yaml:4: metadata.name: \"Bad_Name\" is not a valid name: a DNS-1123 "
			    "label is at most 63 characters of lowercase a-z, 0-9 and '-', starting "
			    "and ending with a letter or digit");
	assert_non_null(strstr(refuse(HEAD "metadata:\n  name: m1\nspec:\n  vmiName: g1-\n"),
			       "vmim.yaml:6: spec.vmiName: \"g1-\" is not a valid name"));
	assert_string_equal(refuse(HEAD "metadata:\n  name: m1\n"), "vmim.yaml:1: spec.vmiName is required");
	assert_string_equal(refuse(HEAD "spec:\n  vmiName: g1\n"), "vmim.yaml:1: metadata.name is required");
	assert_string_equal(refuse("apiVersion: kubevirt.io/v1alpha3\nkind: VirtualMachineInstanceMigration\n"),
			    "vmim.yaml:1: apiVersion must be kubevirt.io/v1 (got \"kubevirt.io/v1alpha3\")");
	assert_non_null(strstr(refuse("apiVersion: kubevirt.io/v1\nkind: VirtualMachine\n"),
			       "vmim.yaml:2: kind must be VirtualMachineInstanceMigration"));
	assert_non_null(strstr(refuse(HEAD "metadata:\n  name: m1\n  namespace: prod\nspec:\n  vmiName: g1\n"),
			       "vmim.yaml:5: metadata.namespace: ferry has one namespace"));
	/* JSON writes its types out: a number is not a name. */
	assert_string_equal(refuse("{\"apiVersion\": \"kubevirt.io/v1\", \"spec\": {\"vmiName\": 5}}"),
			    "vmim.yaml: spec.vmiName must be a string, not an integer");
	assert_non_null(strstr(refuse("{\"apiVersion\": \"kubevirt.io/v1\"} x"), "invalid JSON"));
	assert_string_equal(refuse("- a\n"), "vmim.yaml:1: expected a mapping, not a list");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubevirt_example),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
