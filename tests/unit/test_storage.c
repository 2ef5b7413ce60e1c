/* Storage migration, the parts that need no QEMU: which disks travel, the
 * target's checks of what the source asks for, its images (made with the
 * real qemu-img) and their removal. The QMP choreography is covered by the
 * e2e.storage_* tests against real QEMUs. */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/storage.h"
#include "engine/vmspec.h"

static char state_dir[64], shared_path[128];

static struct vm_spec *spec(const char *yaml)
{
	struct vm_spec *s = NULL;
	char err[512];

	if (vmspec_parse_yaml(yaml, strlen(yaml), "vm.yaml", &s, err, sizeof(err)) < 0)
		fail_msg("spec does not parse: %s", err);
	return s;
}

/* A VM with a local qcow2 root, a local raw data disk, a shared disk and an
 * empty CD-ROM tray. */
static struct vm_spec *four_disks(void)
{
	char yaml[1024];

	snprintf(yaml, sizeof(yaml),
		 "name: vm1\nmemory_mib: 128\ndisks:\n"
		 "  - {name: root, path: /src/root.qcow2}\n"
		 "  - {name: data, path: /src/data.raw, format: raw}\n"
		 "  - {name: home, path: %s, format: raw, storage: shared}\n"
		 "  - {name: cd, type: cdrom}\n",
		 shared_path);
	return spec(yaml);
}

static struct json_object *disks_json(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static int setup(void **state)
{
	FILE *f;

	(void)state;
	snprintf(state_dir, sizeof(state_dir), "/tmp/ferry-test-storage.XXXXXX");
	if (!mkdtemp(state_dir))
		return -1;
	snprintf(shared_path, sizeof(shared_path), "%s/shared.raw", state_dir);
	f = fopen(shared_path, "w");
	if (!f)
		return -1;
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_plan_takes_local_disks_only(void **state)
{
	struct vm_spec *s = four_disks();
	struct stor *st = NULL;
	struct json_object *j;

	(void)state;
	assert_int_equal(stor_plan(s, &st), 0);
	assert_int_equal(stor_count(st), 2);
	j = stor_to_json(st);
	assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
			    "[{\"name\":\"root\",\"format\":\"qcow2\",\"size\":0},"
			    "{\"name\":\"data\",\"format\":\"raw\",\"size\":0}]");
	json_object_put(j);
	stor_free(st);
	vmspec_free(s);
}

static void test_target_creates_images_and_removes_them(void **state)
{
	struct vm_spec *s = four_disks();
	struct json_object *d = disks_json("[{\"name\":\"root\",\"format\":\"qcow2\",\"size\":67108864},"
					   "{\"name\":\"data\",\"format\":\"raw\",\"size\":1048576}]");
	struct stor *st = NULL;
	char err[512] = "", root[256], data[256];
	struct stat sb;

	(void)state;
	if (access("/usr/bin/qemu-img", X_OK) < 0)
		skip();
	assert_int_equal(stor_target_prepare(s, d, state_dir, &st, err, sizeof(err)), 0);
	snprintf(root, sizeof(root), "%s/disks/vm1/root.qcow2", state_dir);
	snprintf(data, sizeof(data), "%s/disks/vm1/data.raw", state_dir);
	/* The spec now points at the images made here; shared and CD-ROM
	 * stay as they were. */
	assert_string_equal(s->disks[0].path, root);
	assert_string_equal(s->disks[1].path, data);
	assert_string_equal(s->disks[2].path, shared_path);
	assert_string_equal(s->disks[3].path, "");
	assert_int_equal(stat(data, &sb), 0);
	assert_int_equal(sb.st_size, 1048576);
	assert_int_equal(stat(root, &sb), 0);
	stor_target_remove_images(st);
	assert_int_equal(access(root, F_OK), -1);
	assert_int_equal(access(data, F_OK), -1);
	stor_free(st);
	json_object_put(d);
	vmspec_free(s);
}

/* What a broken or hostile source might ask: each is refused with a
 * reason and leaves no image behind. */
static void test_target_refuses_bad_disk_lists(void **state)
{
	static const char *const bad[] = {
		"[]", /* leaves local disks out */
		"[{\"name\":\"root\",\"format\":\"qcow2\",\"size\":1048576}]",
		"[{\"name\":\"root\",\"size\":1048576},{\"name\":\"root\",\"size\":1048576}]",
		"[{\"name\":\"root\",\"size\":1048576},{\"name\":\"home\",\"size\":1048576}]",
		"[{\"name\":\"root\",\"size\":1048576},{\"name\":\"data\",\"size\":0}]",
		"[{\"name\":\"root\",\"size\":1048576},{\"name\":\"data\",\"size\":-5}]",
	};
	char dir[128];

	(void)state;
	if (access("/usr/bin/qemu-img", X_OK) < 0)
		skip();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_spec *s = four_disks();
		struct json_object *d = disks_json(bad[i]);
		struct stor *st = NULL;
		char err[512] = "";

		assert_int_equal(stor_target_prepare(s, d, state_dir, &st, err, sizeof(err)), -EINVAL);
		assert_null(st);
		assert_true(err[0] != '\0');
		assert_string_equal(s->disks[0].path, "/src/root.qcow2");
		json_object_put(d);
		vmspec_free(s);
	}
	snprintf(dir, sizeof(dir), "%s/disks/vm1", state_dir);
	assert_int_equal(stor_remove_vm_images(state_dir, "vm1"), 0);
	assert_int_equal(access(dir, F_OK), -1);
}

static void test_target_refuses_missing_shared_disk(void **state)
{
	struct vm_spec *s = spec("name: vm1\nmemory_mib: 128\ndisks:\n"
				 "  - {name: home, path: /nonexistent/ferry/home.raw, format: raw, storage: shared}\n");
	struct json_object *d = disks_json("[]");
	struct stor *st = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(stor_target_prepare(s, d, state_dir, &st, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "shared disk home: /nonexistent/ferry/home.raw is not accessible on this node"));
	json_object_put(d);
	vmspec_free(s);
}

static void test_remove_vm_images_stays_in_its_folder(void **state)
{
	char dir[128], img[192];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/disks/vm2", state_dir);
	snprintf(img, sizeof(img), "%s/root.raw", dir);
	assert_int_equal(mkdir(state_dir, 0700) == 0 || errno == EEXIST, 1);
	snprintf(img, sizeof(img), "%s/disks", state_dir);
	mkdir(img, 0700);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(img, sizeof(img), "%s/root.raw", dir);
	f = fopen(img, "w");
	assert_non_null(f);
	fclose(f);
	/* Names that would leave the folder are refused. */
	assert_int_equal(stor_remove_vm_images(state_dir, "../disks"), -EINVAL);
	assert_int_equal(stor_remove_vm_images(state_dir, ""), -EINVAL);
	assert_int_equal(access(img, F_OK), 0);
	assert_int_equal(stor_remove_vm_images(state_dir, "vm2"), 1);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(access(shared_path, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_takes_local_disks_only),
		cmocka_unit_test(test_target_creates_images_and_removes_them),
		cmocka_unit_test(test_target_refuses_bad_disk_lists),
		cmocka_unit_test(test_target_refuses_missing_shared_disk),
		cmocka_unit_test(test_remove_vm_images_stays_in_its_folder),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
