/* A host-model CPU: QEMU's static expansion into recorded properties (an
 * excerpt of QEMU 10.0.2's reply for "max" under TCG), the features a
 * host lacks, and the -cpu a recorded model builds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "engine/qemu_cmdline.h"
#include "engine/vmspec.h"
#include "qmp/cpu_model.h"

#define MAX_TCG                                                                             \
	"{\"model\": {\"name\": \"base\", \"props\": {\"sse4.1\": true, \"avx512f\": false, "   \
	"\"aes\": true, \"family\": 6, \"vendor\": \"AuthenticAMD\", \"min-level\": 13, "        \
	"\"model-id\": \"QEMU TCG CPU version 2.5+\", \"gfni\": false, \"pku\": true}}}"

static void test_parse(void **state)
{
	struct json_object *j = json_tokener_parse(MAX_TCG);
	struct ferry_kv *kv = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(cpu_model_parse(j, &kv, &n), 0);
	/* sorted; features off are left out; numbers and strings kept as text */
	assert_int_equal(n, 7);
	assert_string_equal(kv[0].key, "aes");
	assert_string_equal(kv[0].value, "on");
	assert_string_equal(kv[1].key, "family");
	assert_string_equal(kv[1].value, "6");
	assert_string_equal(kv[3].key, "model-id");
	assert_string_equal(kv[3].value, "QEMU TCG CPU version 2.5+");
	assert_string_equal(kv[5].key, "sse4.1");
	assert_string_equal(kv[6].key, "vendor");
	cpu_model_free(kv, n);
	json_object_put(j);

	/* not a static expansion */
	j = json_tokener_parse("{\"model\": {\"name\": \"max\", \"props\": {}}}");
	assert_int_equal(cpu_model_parse(j, &kv, &n), -EPROTO);
	json_object_put(j);
	j = json_tokener_parse("{\"model\": {\"name\": \"base\"}}");
	assert_int_equal(cpu_model_parse(j, &kv, &n), -EPROTO);
	json_object_put(j);
	assert_int_equal(cpu_model_parse(NULL, &kv, &n), -EPROTO);
}

static void test_missing(void **state)
{
	struct ferry_kv vm[] = {{"aes", "on"}, {"avx512f", "on"}, {"family", "6"}, {"gfni", "on"},
				{"vendor", "GenuineIntel"}};
	struct ferry_kv host[] = {{"aes", "on"}, {"family", "23"}, {"gfni", "off"},
				  {"vendor", "AuthenticAMD"}};
	char buf[64];

	(void)state;
	/* on in the VM, not on here; other properties do not count */
	assert_int_equal(cpu_model_missing(vm, 5, host, 4, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "avx512f, gfni");
	assert_int_equal(cpu_model_missing(host, 4, vm, 5, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	/* a short buffer still counts them all */
	assert_int_equal(cpu_model_missing(vm, 5, host, 0, buf, 6), 3);
	assert_int_equal(strlen(buf), 5);
}

static void test_spec_and_cmdline(void **state)
{
	const char *y = "name: a\ncpu_model: host-model\n"
			"cpu_host_model: {aes: \"on\", family: \"6\", model-id: \"Xeon, v4\"}\n";
	struct qemu_launch l = {.accel = "tcg", .qmp_socket = "/q"};
	struct vm_spec *s = NULL, *t = NULL;
	struct json_object *j;
	char err[256], **argv = NULL;
	int i;

	(void)state;
	assert_int_equal(vmspec_parse_yaml(y, strlen(y), "vm.yaml", &s, err, sizeof(err)), 0);
	assert_int_equal(s->n_cpu_host_model, 3);
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	for (i = 0; argv[i] && strcmp(argv[i], "-cpu"); i++)
		;
	assert_non_null(argv[i]);
	/* commas in a value doubled: they cannot add properties */
	assert_string_equal(argv[i + 1], "base,aes=on,family=6,model-id=Xeon,, v4");
	qemu_cmdline_free(argv);
	/* it travels: the JSON form gives it back */
	j = vmspec_to_json(s);
	assert_int_equal(vmspec_from_json(j, &t, err, sizeof(err)), 0);
	assert_int_equal(t->n_cpu_host_model, 3);
	assert_string_equal(t->cpu_host_model[2].value, "Xeon, v4");
	json_object_put(j);
	vmspec_free(t);
	/* unrecorded, the command line cannot be built */
	vmspec_free(s);
	y = "name: a\ncpu_model: host-model\n";
	assert_int_equal(vmspec_parse_yaml(y, strlen(y), "vm.yaml", &s, err, sizeof(err)), 0);
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), -EINVAL);
	vmspec_free(s);

	y = "name: a\ncpu_host_model: {aes: \"on\"}\n";
	assert_int_equal(vmspec_parse_yaml(y, strlen(y), "vm.yaml", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "vm.yaml:2: cpu_host_model is only for cpu_model host-model "
				 "(cpu_model is qemu64)");
	y = "name: a\ncpu_model: host-model\ncpu_host_model: {\"a,b\": \"on\"}\n";
	assert_int_equal(vmspec_parse_yaml(y, strlen(y), "vm.yaml", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a CPU property name is 1..63 characters"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_spec_and_cmdline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
