/* Preflight: the seeds' restrictions and ferry's own, with reasons. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/preflight.h"
#include "engine/vmspec.h"

static struct vm_spec *spec(const char *yaml)
{
	struct vm_spec *s = NULL;
	char err[512];
	int r = vmspec_parse_yaml(yaml, strlen(yaml), "vm.yaml", &s, err, sizeof(err));

	if (r < 0)
		fail_msg("spec does not parse: %s", err);
	return s;
}

static void test_plain_vm_migrates(void **state)
{
	struct vm_spec *s = spec("name: vm1\nmemory_mib: 128\n");
	char why[512];

	(void)state;
	assert_int_equal(preflight_vm(s, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	vmspec_free(s);
}

static void test_blockers_named(void **state)
{
	struct vm_spec *s = spec("name: vm1\nmemory_mib: 128\n"
				 "disks:\n"
				 "  - {name: cd, path: /tmp/x.iso, type: cdrom}\n"
				 "  - {name: empty, path: \"\", type: cdrom}\n"
				 "  - {name: box, path: /tmp/c.img, type: containerdisk, format: raw}\n"
				 "  - {name: root, path: /tmp/r.qcow2, storage: shared}\n"
				 "nics:\n"
				 "  - {name: mgmt, network: mgmt, binding: bridge, management: true}\n"
				 "  - {name: data, network: default, binding: bridge}\n");
	char why[900];

	(void)state;
	assert_int_equal(preflight_vm(s, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "CD-ROM cd has media: eject it"));
	assert_null(strstr(why, "empty")); /* a CD-ROM without media is fine */
	assert_non_null(strstr(why, "container disk box: remove it"));
	assert_null(strstr(why, "root")); /* shared storage is fine */
	assert_non_null(strstr(why, "NIC mgmt binds a bridge on the management network"));
	assert_null(strstr(why, "NIC data")); /* a bridge off the management net is fine */
	vmspec_free(s);
}

/* Local disks travel with the VM (storage migration); shared ones stay. */
static void test_local_and_shared_disks_migrate(void **state)
{
	struct vm_spec *s = spec("name: vm1\nmemory_mib: 128\n"
				 "disks:\n  - {name: root, path: /tmp/r.qcow2}\n"
				 "  - {name: data, path: /tmp/d.raw, format: raw, storage: shared}\n");
	char why[512];

	(void)state;
	assert_int_equal(preflight_vm(s, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	vmspec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_vm_migrates),
		cmocka_unit_test(test_blockers_named),
		cmocka_unit_test(test_local_and_shared_disks_migrate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
