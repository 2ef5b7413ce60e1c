/* VM spec (YAML/JSON, validation) and the QEMU command line built from it.
 *
 * The last test starts a real QEMU (-incoming defer, so the guest never
 * runs) on a command line whose paths all contain ',' and '=', and asks it over
 * QMP what it made of them: the escaping is only right if QEMU agrees. It is
 * skipped when qemu-system-x86_64 / qemu-img are not installed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "engine/qemu_cmdline.h"
#include "engine/vmspec.h"

extern char **environ;

static char g_dir[64];
static char g_kernel[128];
static pid_t g_qemu; /* killed by teardown if a test fails while it runs */

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A 64-byte multiboot image with the address fields set (flag bit 16), so
 * QEMU's loader accepts it as a raw binary: enough for -kernel to load. */
static void write_multiboot(const char *path)
{
	uint32_t img[16] = {0};

	img[0] = 0x1BADB002u;
	img[1] = 0x00010000u;
	img[2] = (uint32_t)-(0x1BADB002u + 0x00010000u);
	img[3] = 0x100000; /* header_addr */
	img[4] = 0x100000; /* load_addr */
	img[5] = 0;        /* load_end_addr: whole file */
	img[6] = 0;        /* bss_end_addr */
	img[7] = 0x100020; /* entry: the hlt loop below */
	img[8] = 0xfdebf4f4u; /* hlt; hlt; jmp -3 */
	write_file(path, img, sizeof(img));
}

static int setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/ferry-vmspec-XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(g_kernel, sizeof(g_kernel), "%s/ferry-guest.elf", g_dir);
	write_multiboot(g_kernel);
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	if (g_qemu > 0) {
		kill(g_qemu, SIGKILL);
		waitpid(g_qemu, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The example of docs/config.md, with the kernel in the temp dir. */
static char *example_yaml(void)
{
	char *s = NULL;

	assert_true(asprintf(&s,
			     "name: vm1\n"
			     "uuid: \"\"\n"
			     "memory_mib: 1024\n"
			     "vcpus: 1\n"
			     "machine: pc\n"
			     "cpu_model: qemu64\n"
			     "kernel: %s\n"
			     "append: \"fill=768 profile=mix dirty=20 wss=256\"\n"
			     "serial: true\n"
			     "labels: {app: web}\n"
			     "node_selector: {zone: b}\n"
			     "disks:\n"
			     "  - {name: root, path: /var/lib/images/a.qcow2, format: qcow2, type: disk, "
			     "storage: local}\n"
			     "  - {name: cd, path: \"\", type: cdrom}\n"
			     "nics:\n"
			     "  - {name: net0, network: default, binding: user}\n"
			     "migration: {multifd_channels: 0, max_bandwidth_mibps: 0, "
			     "downtime_limit_ms: 300, compress: true}\n",
			     g_kernel) > 0);
	return s;
}

static int parse(const char *yaml, struct vm_spec **out, char *err, size_t errlen)
{
	return vmspec_parse_yaml(yaml, strlen(yaml), "vm.yaml", out, err, errlen);
}

/* Parse a spec that must fail; returns the message for the caller to check. */
static const char *parse_fail(const char *yaml)
{
	static char err[512];
	struct vm_spec *s = (struct vm_spec *)1;

	err[0] = '\0';
	assert_int_equal(parse(yaml, &s, err, sizeof(err)), -EINVAL);
	assert_null(s);
	return err;
}

static char *to_string(const struct vm_spec *s)
{
	struct json_object *o = vmspec_to_json(s);
	char *str;

	assert_non_null(o);
	str = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return str;
}

static void test_yaml_example(void **state)
{
	char err[256] = "", *y = example_yaml();
	struct vm_spec *s = NULL;

	(void)state;
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(s->name, "vm1");
	assert_int_equal(strlen(s->uuid), 36);
	assert_int_equal(s->memory_mib, 1024);
	assert_int_equal(s->vcpus, 1);
	assert_string_equal(s->machine, "pc");
	assert_string_equal(s->cpu_model, "qemu64");
	assert_string_equal(s->kernel, g_kernel);
	assert_string_equal(s->append, "fill=768 profile=mix dirty=20 wss=256");
	assert_int_equal(s->serial, 1);
	assert_int_equal(s->n_labels, 1);
	assert_string_equal(s->labels[0].key, "app");
	assert_string_equal(s->labels[0].value, "web");
	assert_int_equal(s->n_node_selector, 1);
	assert_string_equal(s->node_selector[0].key, "zone");
	assert_string_equal(s->node_selector[0].value, "b");
	assert_int_equal(s->n_disks, 2);
	assert_string_equal(s->disks[0].name, "root");
	assert_string_equal(s->disks[0].path, "/var/lib/images/a.qcow2");
	assert_string_equal(s->disks[0].format, "qcow2");
	assert_string_equal(s->disks[0].type, "disk");
	assert_string_equal(s->disks[0].storage, "local");
	assert_string_equal(s->disks[1].type, "cdrom");
	assert_string_equal(s->disks[1].format, "raw"); /* cdrom default */
	assert_string_equal(s->disks[1].path, "");
	assert_int_equal(s->n_nics, 1);
	assert_string_equal(s->nics[0].name, "net0");
	assert_string_equal(s->nics[0].network, "default");
	assert_string_equal(s->nics[0].binding, "user");
	assert_int_equal(s->nics[0].management, 0);
	assert_int_equal(s->mig.multifd_channels, 0);
	assert_int_equal(s->mig.max_bandwidth_mibps, 0);
	assert_int_equal(s->mig.downtime_limit_ms, 300);
	assert_int_equal(s->mig.compress, 1);
	assert_int_equal(s->mig.progress_timeout_s, FERRY_UNSET);
	assert_int_equal(s->mig.completion_timeout_s_per_gib, FERRY_UNSET);
	vmspec_free(s);
	free(y);
}

static void test_defaults(void **state)
{
	char err[256] = "";
	struct vm_spec *s = NULL;

	(void)state;
	assert_int_equal(parse("name: tiny\ndisks: [{name: d, path: /x.img}]\nnics: [{name: n}]\n",
			       &s, err, sizeof(err)),
			 0);
	assert_int_equal(s->memory_mib, 1024);
	assert_int_equal(s->vcpus, 1);
	assert_string_equal(s->machine, "q35");
	assert_string_equal(s->cpu_model, "qemu64");
	assert_string_equal(s->firmware, "bios");
	assert_string_equal(s->initrd, "");
	assert_int_equal(s->serial, 0);
	assert_string_equal(s->disks[0].bus, "virtio");
	assert_string_equal(s->nics[0].model, "virtio");
	assert_string_equal(s->disks[0].format, "qcow2");
	assert_string_equal(s->disks[0].type, "disk");
	assert_string_equal(s->disks[0].storage, "local");
	assert_string_equal(s->nics[0].network, "default");
	assert_string_equal(s->nics[0].binding, "user");
	assert_int_equal(s->mig.compress, FERRY_UNSET);
	assert_int_equal(s->mig.multifd_channels, FERRY_UNSET);
	vmspec_free(s);
}

static void test_json_roundtrip(void **state)
{
	char err[256] = "", *y = example_yaml(), *j1, *j2, *j3;
	struct vm_spec *s = NULL, *s2 = NULL, *d;
	struct json_object *o;

	(void)state;
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	j1 = to_string(s);
	o = json_tokener_parse(j1);
	assert_non_null(o);
	assert_int_equal(vmspec_from_json(o, &s2, err, sizeof(err)), 0);
	json_object_put(o);
	j2 = to_string(s2);
	assert_string_equal(j1, j2);
	/* uuid survives (it is what keeps -uuid equal on both sides) */
	assert_string_equal(s->uuid, s2->uuid);
	/* unset per-VM overrides are left out, set ones kept */
	assert_null(strstr(j1, "progress_timeout_s"));
	assert_non_null(strstr(j1, "\"downtime_limit_ms\":300"));
	d = vmspec_dup(s2);
	assert_non_null(d);
	j3 = to_string(d);
	assert_string_equal(j1, j3);
	vmspec_free(d);
	vmspec_free(s2);
	vmspec_free(s);
	free(j1);
	free(j2);
	free(j3);
	free(y);
}

static void test_load_file(void **state)
{
	char err[256] = "", path[160], *y = example_yaml(), *j;
	struct vm_spec *s = NULL, *s2 = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/vm.yaml", g_dir);
	write_file(path, y, strlen(y));
	assert_int_equal(vmspec_load_file(path, &s, err, sizeof(err)), 0);
	j = to_string(s);
	/* JSON recognised by content even with a .yaml name */
	write_file(path, j, strlen(j));
	assert_int_equal(vmspec_load_file(path, &s2, err, sizeof(err)), 0);
	assert_string_equal(s->uuid, s2->uuid);
	vmspec_free(s2);
	s2 = NULL;
	/* JSON errors carry the path and line */
	write_file(path, "{\n\"name\": \"a\",\n\"vcpus\": }\n", 26);
	assert_int_equal(vmspec_load_file(path, &s2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vm.yaml:3: invalid JSON"));
	/* JSON validation errors name the file and key */
	write_file(path, "{\"name\": \"a\", \"memory_mib\": 0}", 30);
	assert_int_equal(vmspec_load_file(path, &s2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vm.yaml: memory_mib must be between 16 and 1048576"));
	snprintf(path, sizeof(path), "%s/missing.yaml", g_dir);
	assert_int_equal(vmspec_load_file(path, &s2, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.yaml"));
	vmspec_free(s);
	free(j);
	free(y);
}

static void test_errors(void **state)
{
	(void)state;
	/* VM names as KubeVirt takes them: DNS-1123 labels, the rule in the message. */
	assert_string_equal(parse_fail("name: VM_1\n"),
			    "vm.yaml:1: name: \"VM_1\" is not a valid name: a DNS-1123 label is at "
			    "most 63 characters of lowercase a-z, 0-9 and '-', starting and ending "
			    "with a letter or digit");
	assert_non_null(strstr(parse_fail("name: -vm1\n"), "is not a valid name"));
	assert_non_null(strstr(parse_fail("name: vm1-\n"), "is not a valid name"));
	assert_string_equal(parse_fail("name: a\nvcpus: 1\nmemory_mib: 0\n"),
			    "vm.yaml:3: memory_mib must be between 16 and 1048576 (got 0)");
	assert_string_equal(parse_fail("name: a\ndisks:\n  - name: d\n    path: /x\n"
				       "  - name: e\n    path: /y\n    type: floppy\n"),
			    "vm.yaml:7: disks[1].type must be one of disk, cdrom, containerdisk "
			    "(got \"floppy\")");
	assert_string_equal(parse_fail("name: a\nmemroy_mib: 512\n"),
			    "vm.yaml:2: unknown key \"memroy_mib\"");
	assert_string_equal(parse_fail("name: a\ndisks:\n  - name: d\n    path: /x\n    sze: 1\n"),
			    "vm.yaml:5: unknown key \"disks[0].sze\"");
	assert_string_equal(parse_fail("name: a\nmemory_mib: \"1024\"\n"),
			    "vm.yaml:2: memory_mib must be an integer, not a string");
	assert_string_equal(parse_fail("name: a\nvcpus: [1]\n"),
			    "vm.yaml:2: vcpus must be an integer, not a list");
	assert_string_equal(parse_fail("name: a\nserial: yes\n"),
			    "vm.yaml:2: serial must be true or false, not a string");
	assert_string_equal(parse_fail("name: a\nlabels: [a, b]\n"),
			    "vm.yaml:2: labels must be a mapping, not a list");
	assert_string_equal(parse_fail("name: a\nmemory_mib: 1.5\n"),
			    "vm.yaml:2: memory_mib must be an integer, not a string");
	assert_string_equal(parse_fail("name: a\nmemory_mib: 99999999999\n"),
			    "vm.yaml:2: memory_mib is out of range (got 99999999999)");
	/* malformed YAML: libyaml's message and the line it stopped at */
	assert_string_equal(parse_fail("name: a\nlabels: {app: web\nvcpus: 1\n"),
			    "vm.yaml:3: invalid YAML: did not find expected ',' or '}' while "
			    "parsing a flow mapping");
	assert_non_null(strstr(parse_fail("name: a\n  vcpus: 1\n"), "vm.yaml:2: invalid YAML"));
	assert_string_equal(parse_fail("name: a\nvcpus: 1\nname: b\n"),
			    "vm.yaml:3: duplicate key \"name\"");
	assert_string_equal(parse_fail("vcpus: 1\n"), "vm.yaml:1: name is required");
	assert_string_equal(parse_fail("name:\nvcpus: 1\n"), "vm.yaml:1: name is required");
	assert_string_equal(parse_fail(""), "vm.yaml:1: empty document");
	assert_string_equal(parse_fail("- a\n"), "vm.yaml:1: expected a mapping, not a list");
	assert_string_equal(parse_fail("name: a\n---\nname: b\n"),
			    "vm.yaml:3: more than one YAML document");
	assert_string_equal(parse_fail("name: a\nuuid: 1234\n"),
			    "vm.yaml:2: uuid must be a UUID like 6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7c6b5a "
			    "(got \"1234\")");
	assert_string_equal(parse_fail("name: a\nvcpus: 0\n"),
			    "vm.yaml:2: vcpus must be between 1 and 256 for machine q35 (got 0)");
	assert_string_equal(parse_fail("name: a\nmachine: pc\nvcpus: 256\n"),
			    "vm.yaml:3: vcpus must be between 1 and 255 for machine pc (got 256)");
	assert_string_equal(parse_fail("name: a\nmachine: virt\n"),
			    "vm.yaml:2: machine must be pc, q35, pc-i440fx-<version> or "
			    "pc-q35-<version> (got \"virt\")");
	assert_string_equal(parse_fail("name: a\nkernel: /nonexistent/k\n"),
			    "vm.yaml:2: kernel /nonexistent/k: No such file or directory");
	assert_string_equal(parse_fail("name: a\nkernel: rel/k\n"),
			    "vm.yaml:2: kernel must be an absolute path (got \"rel/k\")");
	assert_string_equal(parse_fail("name: a\ndisks:\n- {name: r, path: /a}\n- {name: r, path: /b}\n"),
			    "vm.yaml:4: disks[1].name: duplicate disk name \"r\"");
	assert_string_equal(parse_fail("name: a\ndisks:\n- {name: r}\n"),
			    "vm.yaml:3: disks[0].path is required for a disk");
	assert_string_equal(parse_fail("name: a\ndisks:\n- {name: r, path: /a, storage: nfs}\n"),
			    "vm.yaml:3: disks[0].storage must be one of local, shared (got \"nfs\")");
	assert_string_equal(parse_fail("name: a\ndisks:\n- {name: abcdefghijklmnopqrstuvwxyz0, "
				       "path: /a}\n"),
			    "vm.yaml:3: disks[0].name must be 1..26 characters of a-z, 0-9 and '-' "
			    "(got \"abcdefghijklmnopqrstuvwxyz0\")");
	assert_string_equal(parse_fail("name: a\ndisks: [{name: a, path: /a, bus: sata}, "
				       "{name: b, path: /b, bus: sata}, {name: c, path: /c, bus: sata}, "
				       "{name: d, path: /d, bus: sata}, {name: e, path: /e, bus: sata}, "
				       "{name: f, path: /f, bus: sata}, {name: v, path: /v}, "
				       "{name: g, path: /g, bus: sata}]\n"),
			    "vm.yaml:2: disks[7].bus: bus sata has room for 6 disks; this is one more");
	assert_string_equal(parse_fail("name: a\nnics:\n- {name: 0net}\n"),
			    "vm.yaml:3: nics[0].name must start with a letter (got \"0net\")");
	assert_string_equal(parse_fail("name: a\nnics:\n- {name: n, binding: tap}\n"),
			    "vm.yaml:3: nics[0].binding must be one of user, bridge, masquerade "
			    "(got \"tap\")");
	assert_string_equal(parse_fail("name: a\nmigration:\n  multifd_channels: 65\n"),
			    "vm.yaml:3: migration.multifd_channels must be between 0 and 64 "
			    "(got 65)");
	/* -1 is a value, not "unset": a negative bandwidth is refused, not
	 * taken as the agent default (or as unlimited). */
	assert_string_equal(parse_fail("name: a\nmigration:\n  max_bandwidth_mibps: -1\n"),
			    "vm.yaml:3: migration.max_bandwidth_mibps must be between 0 and "
			    "1048576 (got -1)");
	assert_string_equal(parse_fail("name: a\nlabels: {\"a b\": c}\n"),
			    "vm.yaml:2: labels: label key \"a b\" must be 1..253 characters of "
			    "A-Z, a-z, 0-9, '.', '_', '/', '-' starting with a letter or digit");
	assert_string_equal(parse_fail("name: a\nappend: x=1\n"), "vm.yaml:2: append needs a kernel");
	/* aliases are resolved, but an alias bomb stops at the node limit */
	assert_non_null(strstr(parse_fail("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
					  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
					  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
					  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
					  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
					  "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"),
			       "document too large"));
}

static void test_json_errors(void **state)
{
	char err[256];
	struct vm_spec *s = NULL;
	struct json_object *o;

	(void)state;
	o = json_tokener_parse("{\"name\":\"a\",\"disks\":[{\"name\":\"d\",\"path\":\"/x\","
			       "\"type\":\"tape\"}]}");
	assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "disks[0].type must be one of disk, cdrom, containerdisk "
				 "(got \"tape\")");
	json_object_put(o);
	o = json_tokener_parse("{\"name\":\"a\",\"vcpus\":\"2\"}");
	assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "vcpus must be an integer, not a string");
	json_object_put(o);
	/* JSON says a value's type: a number is not a name. */
	o = json_tokener_parse("{\"name\":5}");
	assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "name must be a string, not an integer");
	json_object_put(o);
	o = json_tokener_parse("{\"name\":\"a\",\"labels\":{\"tier\":1}}");
	assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "labels.tier must be a string, not an integer");
	json_object_put(o);
	o = json_tokener_parse("{\"name\":\"a\",\"extra\":1}");
	assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown key \"extra\"");
	json_object_put(o);
	o = json_tokener_parse("[1]");
	assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), -EINVAL);
	json_object_put(o);
	assert_null(s);
}

static void test_validate_struct(void **state)
{
	char err[256], *y = example_yaml();
	struct vm_spec *s = NULL;

	(void)state;
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	assert_int_equal(vmspec_validate(s, err, sizeof(err)), 0);
	s->memory_mib = 8;
	assert_int_equal(vmspec_validate(s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "memory_mib must be between 16 and 1048576 (got 8)");
	s->memory_mib = 1024;
	snprintf(s->nics[0].binding, sizeof(s->nics[0].binding), "macvtap");
	assert_int_equal(vmspec_validate(s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nics[0].binding"));
	vmspec_free(s);
	free(y);
}

static void test_uuid(void **state)
{
	char err[256];
	struct vm_spec *a = NULL, *b = NULL, *c = NULL;

	(void)state;
	assert_int_equal(parse("name: a\nuuid: \"\"\n", &a, err, sizeof(err)), 0);
	assert_int_equal(parse("name: a\n", &b, err, sizeof(err)), 0);
	assert_int_equal(strlen(a->uuid), 36);
	assert_int_equal(a->uuid[14], '4');                     /* version 4 */
	assert_non_null(strchr("89ab", a->uuid[19]));           /* RFC 4122 variant */
	assert_string_not_equal(a->uuid, b->uuid);
	assert_int_equal(parse("name: a\nuuid: 6F1C2A4E-0B7D-4C1E-9A53-2F0E8D7C6B5A\n", &c, err,
			       sizeof(err)),
			 0);
	assert_string_equal(c->uuid, "6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7c6b5a");
	vmspec_free(a);
	vmspec_free(b);
	vmspec_free(c);
}

static int argv_find(char **argv, const char *opt, const char *val)
{
	for (int i = 0; argv[i]; i++)
		if (!strcmp(argv[i], opt) && (!val || (argv[i + 1] && !strcmp(argv[i + 1], val))))
			return i;
	return -1;
}

static void test_cmdline(void **state)
{
	char err[256], *y = example_yaml(), mac[18];
	int i;
	struct vm_spec *s = NULL;
	struct qemu_launch l = {.binary = "qemu-system-x86_64", .accel = "kvm:tcg",
				.qmp_socket = "/run/ferry/vm1/qmp.sock",
				.serial_socket = "/run/ferry/vm1/serial.sock",
				.serial_log = "/run/ferry/vm1/serial.log",
				.pidfile = "/run/ferry/vm1/qemu.pid"};
	char **argv = NULL;

	(void)state;
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_true(argv_find(argv, "-name", "guest=vm1") > 0);
	assert_true(argv_find(argv, "-uuid", s->uuid) > 0);
	assert_true(argv_find(argv, "-machine", "pc") > 0);
	/* the fallback list, one -accel each, tried in order */
	i = argv_find(argv, "-accel", "kvm");
	assert_true(i > 0);
	assert_string_equal(argv[i + 2], "-accel");
	assert_string_equal(argv[i + 3], "tcg");
	assert_true(argv_find(argv, "-cpu", "qemu64") > 0);
	assert_true(argv_find(argv, "-m", "1024") > 0);
	assert_true(argv_find(argv, "-smp", "1") > 0);
	assert_true(argv_find(argv, "-nodefaults", NULL) > 0);
	assert_true(argv_find(argv, "-no-user-config", NULL) > 0);
	assert_true(argv_find(argv, "-display", "none") > 0);
	assert_true(argv_find(argv, "-chardev",
			      "socket,id=qmp,path=/run/ferry/vm1/qmp.sock,server=on,wait=off") > 0);
	assert_true(argv_find(argv, "-mon", "chardev=qmp,mode=control") > 0);
	assert_true(argv_find(argv, "-chardev",
			      "socket,id=ser0,path=/run/ferry/vm1/serial.sock,server=on,wait=off,"
			      "logfile=/run/ferry/vm1/serial.log") > 0);
	assert_true(argv_find(argv, "-serial", "chardev:ser0") > 0);
	assert_true(argv_find(argv, "-kernel", g_kernel) > 0);
	assert_true(argv_find(argv, "-append", "fill=768 profile=mix dirty=20 wss=256") > 0);
	assert_true(argv_find(argv, "-blockdev",
			      "driver=qcow2,node-name=disk-root,file.driver=file,"
			      "file.node-name=file-root,file.filename=/var/lib/images/a.qcow2") > 0);
	/* virtio by default; a kernel boots, so no disk is marked */
	assert_true(argv_find(argv, "-device", "virtio-blk-pci,drive=disk-root,id=dev-root") > 0);
	/* the empty cdrom (pc's IDE by default): a device without a drive */
	assert_true(argv_find(argv, "-device", "ide-cd,bus=ide.0,unit=0,id=dev-cd") > 0);
	assert_true(argv_find(argv, "-netdev", "user,id=net0") > 0);
	qemu_nic_mac(s, 0, mac);
	assert_int_equal(strlen(mac), 17);
	assert_int_equal(strncmp(mac, "52:", 3), 0);
	{
		char dev[128];

		snprintf(dev, sizeof(dev), "virtio-net-pci,netdev=net0,mac=%s,id=nic-net0", mac);
		assert_true(argv_find(argv, "-device", dev) > 0);
	}
	assert_true(argv_find(argv, "-pidfile", "/run/ferry/vm1/qemu.pid") > 0);
	assert_int_equal(argv_find(argv, "-incoming", NULL), -1);
	qemu_cmdline_free(argv);

	/* target side */
	l.incoming_defer = 1;
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_true(argv_find(argv, "-incoming", "defer") > 0);
	qemu_cmdline_free(argv);

	/* commas doubled wherever QEMU parses options; verbatim elsewhere */
	snprintf(s->disks[0].path, sizeof(s->disks[0].path), "/img/a,b.qcow2");
	snprintf(s->disks[1].path, sizeof(s->disks[1].path), "/iso/x,y.iso");
	l.qmp_socket = "/run/q,mp.sock";
	l.serial_socket = NULL;
	l.serial_log = "/run/s,erial.log";
	l.pidfile = "/run/p,id";
	l.accel = "tcg";
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_true(argv_find(argv, "-blockdev",
			      "driver=qcow2,node-name=disk-root,file.driver=file,"
			      "file.node-name=file-root,file.filename=/img/a,,b.qcow2") > 0);
	assert_true(argv_find(argv, "-blockdev",
			      "driver=raw,node-name=disk-cd,file.driver=file,file.node-name=file-cd,"
			      "file.filename=/iso/x,,y.iso,read-only=on") > 0);
	assert_true(argv_find(argv, "-device", "ide-cd,drive=disk-cd,bus=ide.0,unit=0,id=dev-cd") > 0);
	assert_true(argv_find(argv, "-chardev", "socket,id=qmp,path=/run/q,,mp.sock,server=on,wait=off") > 0);
	/* serial wanted by the spec but no socket: a null backend keeps the device */
	assert_true(argv_find(argv, "-chardev", "null,id=ser0,logfile=/run/s,,erial.log") > 0);
	assert_true(argv_find(argv, "-pidfile", "/run/p,id") > 0);
	assert_true(argv_find(argv, "-machine", "pc") > 0);
	assert_true(argv_find(argv, "-accel", "tcg") > 0);
	assert_int_equal(argv_find(argv, "-accel", "kvm"), -1);
	qemu_cmdline_free(argv);

	/* a MAC is a function of uuid and index only */
	{
		char m1[18], m2[18];

		qemu_nic_mac(s, 1, m1);
		qemu_nic_mac(s, 1, m2);
		assert_string_equal(m1, m2);
		assert_string_not_equal(m1, mac);
	}

	/* refused: no qmp socket, bad accel */
	l.qmp_socket = NULL;
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), -EINVAL);
	assert_null(argv);
	l.qmp_socket = "/run/q";
	l.accel = "xen";
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), -EINVAL);
	l.accel = "kvm:";
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), -EINVAL);
	vmspec_free(s);
	free(y);
}

static void test_cmdline_q35_bridge(void **state)
{
	char err[256], **argv = NULL;
	struct vm_spec *s = NULL;
	struct qemu_launch l = {.accel = "kvm", .qmp_socket = "/q"};

	(void)state;
	assert_int_equal(parse("name: a\nmachine: q35\nvcpus: 4\nserial: false\n"
			       "disks: [{name: a, path: /a, bus: sata}, {name: b, path: /b, format: raw}, "
			       "{name: c, path: /c, bus: sata}]\n"
			       "nics: [{name: n0, network: br0, binding: bridge, management: true}, "
			       "{name: n1, binding: masquerade, model: e1000}]\n",
			       &s, err, sizeof(err)),
			 0);
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_true(argv_find(argv, "-machine", "q35") > 0);
	/* kvm alone: no tcg thread option */
	assert_true(argv_find(argv, "-accel", "kvm") > 0);
	assert_int_equal(argv_find(argv, "-accel", "tcg,thread=multi"), -1);
	/* sata slots count sata disks only; no kernel: the first disk boots */
	assert_true(argv_find(argv, "-device",
			      "ide-hd,drive=disk-a,bus=ide.0,unit=0,id=dev-a,bootindex=1") > 0);
	assert_true(argv_find(argv, "-device", "virtio-blk-pci,drive=disk-b,id=dev-b") > 0);
	assert_true(argv_find(argv, "-device", "ide-hd,drive=disk-c,bus=ide.1,unit=0,id=dev-c") > 0);
	assert_true(argv_find(argv, "-netdev", "bridge,id=n0,br=br0") > 0);
	assert_true(argv_find(argv, "-netdev", "user,id=n1") > 0);
	assert_non_null(strstr(argv[argv_find(argv, "-netdev", "user,id=n1") + 3], "e1000,netdev=n1"));
	assert_true(argv_find(argv, "-smp", "4") > 0);
	assert_int_equal(argv_find(argv, "-serial", NULL), -1);
	assert_int_equal(argv_find(argv, "-kernel", NULL), -1);
	assert_int_equal(argv_find(argv, "-pidfile", NULL), -1);
	assert_int_equal(argv_find(argv, "-device", "virtio-scsi-pci,id=scsi0"), -1);
	qemu_cmdline_free(argv);
	vmspec_free(s);
}

/* Each bus, NIC model and firmware as QEMU gets them. */
static void test_cmdline_buses(void **state)
{
	char err[256], **argv = NULL, *y;
	struct vm_spec *s = NULL;
	struct qemu_launch l = {.accel = "kvm:tcg", .qmp_socket = "/q",
				.efi_vars = "/state/disks/a/efi,vars.fd"};

	(void)state;
	assert_true(asprintf(&y,
			     "name: a\nvcpus: 2\nfirmware: uefi\nkernel: %s\ninitrd: %s\n"
			     "disks:\n- {name: v, path: /v}\n- {name: s0, path: /s0, bus: scsi}\n"
			     "- {name: s1, path: /s1, bus: scsi}\n- {name: cd, path: '', type: cdrom, "
			     "bus: scsi}\n- {name: t, path: /t, bus: sata}\n"
			     "nics: [{name: n0}, {name: n1, model: e1000}]\n",
			     g_kernel, g_kernel) > 0);
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	free(y);
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_true(argv_find(argv, "-machine", "q35,pflash0=fw-code,pflash1=fw-vars") > 0);
	assert_true(argv_find(argv, "-accel", "kvm") > 0);
	assert_true(argv_find(argv, "-accel", "tcg,thread=multi") > 0);
	assert_true(argv_find(argv, "-blockdev", "driver=file,node-name=fw-code,filename=" VM_OVMF_CODE
						  ",read-only=on") > 0);
	assert_true(argv_find(argv, "-blockdev",
			      "driver=file,node-name=fw-vars,filename=/state/disks/a/efi,,vars.fd") > 0);
	assert_true(argv_find(argv, "-kernel", g_kernel) > 0);
	assert_true(argv_find(argv, "-initrd", g_kernel) > 0);
	/* a kernel boots: no bootindex anywhere */
	for (int i = 0; argv[i]; i++)
		assert_null(strstr(argv[i], "bootindex"));
	assert_true(argv_find(argv, "-device", "virtio-blk-pci,drive=disk-v,id=dev-v") > 0);
	/* one controller, before its disks */
	assert_true(argv_find(argv, "-device", "virtio-scsi-pci,id=scsi0") > 0);
	assert_true(argv_find(argv, "-device", "virtio-scsi-pci,id=scsi0") <
		    argv_find(argv, "-device", "virtio-blk-pci,drive=disk-v,id=dev-v"));
	assert_true(argv_find(argv, "-device",
			      "scsi-hd,drive=disk-s0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,id=dev-s0") > 0);
	assert_true(argv_find(argv, "-device",
			      "scsi-hd,drive=disk-s1,bus=scsi0.0,channel=0,scsi-id=1,lun=0,id=dev-s1") > 0);
	assert_true(argv_find(argv, "-device",
			      "scsi-cd,bus=scsi0.0,channel=0,scsi-id=2,lun=0,id=dev-cd") > 0);
	assert_true(argv_find(argv, "-device", "ide-hd,drive=disk-t,bus=ide.0,unit=0,id=dev-t") > 0);
	qemu_cmdline_free(argv);
	/* uefi without a variables file cannot be built */
	l.efi_vars = NULL;
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), -EINVAL);
	vmspec_free(s);

	/* pc: IDE slots count IDE disks only; a virtio disk first boots */
	assert_int_equal(parse("name: b\nmachine: pc\nvcpus: 2\n"
			       "disks: [{name: v, path: /v}, {name: i0, path: /i0, bus: ide}, "
			       "{name: i1, path: /i1, bus: ide}, {name: i2, path: /i2, bus: ide}]\n",
			       &s, err, sizeof(err)),
			 0);
	l.accel = "tcg";
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_true(argv_find(argv, "-accel", "tcg,thread=multi") > 0);
	assert_true(argv_find(argv, "-device", "virtio-blk-pci,drive=disk-v,id=dev-v,bootindex=1") > 0);
	assert_true(argv_find(argv, "-device", "ide-hd,drive=disk-i0,bus=ide.0,unit=0,id=dev-i0") > 0);
	assert_true(argv_find(argv, "-device", "ide-hd,drive=disk-i1,bus=ide.0,unit=1,id=dev-i1") > 0);
	assert_true(argv_find(argv, "-device", "ide-hd,drive=disk-i2,bus=ide.1,unit=0,id=dev-i2") > 0);
	qemu_cmdline_free(argv);
	/* what validation refuses, the builder refuses too */
	snprintf(s->disks[1].bus, sizeof(s->disks[1].bus), "sata");
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), -EINVAL);
	vmspec_free(s);
}

/* The new keys' refusals, each with its reason. */
static void test_hw_errors(void **state)
{
	(void)state;
	assert_string_equal(parse_fail("name: a\ndisks: [{name: r, path: /a, bus: usb}]\n"),
			    "vm.yaml:2: disks[0].bus must be one of virtio, scsi, sata, ide (got \"usb\")");
	assert_string_equal(parse_fail("name: a\ndisks: [{name: r, path: /a, bus: ide}]\n"),
			    "vm.yaml:2: disks[0].bus: ide is the pc machine's controller; machine q35 "
			    "has none: use virtio, scsi or sata");
	assert_string_equal(parse_fail("name: a\nmachine: pc-i440fx-9.2\n"
				       "disks: [{name: r, path: /a, bus: sata}]\n"),
			    "vm.yaml:3: disks[0].bus: sata (AHCI) is q35's controller; machine "
			    "pc-i440fx-9.2 has none: use virtio, scsi or ide");
	assert_string_equal(parse_fail("name: a\ndisks: [{name: r, path: /a, type: cdrom, bus: virtio}]\n"),
			    "vm.yaml:2: disks[0].bus: a cdrom cannot be on virtio (virtio-blk has no "
			    "removable media): use scsi, or sata");
	assert_string_equal(parse_fail("name: a\nmachine: pc\ndisks: [{name: a, path: /a, bus: ide}, "
				       "{name: b, path: /b, bus: ide}, {name: c, path: /c, bus: ide}, "
				       "{name: d, path: /d, bus: ide}, {name: e, path: /e, bus: ide}]\n"),
			    "vm.yaml:3: disks[4].bus: bus ide has room for 4 disks; this is one more");
	assert_string_equal(parse_fail("name: a\nnics: [{name: n, model: rtl8139}]\n"),
			    "vm.yaml:2: nics[0].model must be one of virtio, e1000 (got \"rtl8139\")");
	assert_string_equal(parse_fail("name: a\nfirmware: efi\n"),
			    "vm.yaml:2: firmware must be one of bios, uefi (got \"efi\")");
	assert_string_equal(parse_fail("name: a\nmachine: pc\nfirmware: uefi\n"),
			    "vm.yaml:3: firmware uefi needs machine q35 (OVMF's 4 MiB build is for "
			    "q35); machine is pc");
	assert_string_equal(parse_fail("name: a\ninitrd: /x\n"), "vm.yaml:2: initrd needs a kernel");
	{
		char y[300];

		snprintf(y, sizeof(y), "name: a\nkernel: %s\ninitrd: /nonexistent/i\n", g_kernel);
		assert_string_equal(parse_fail(y),
				    "vm.yaml:3: initrd /nonexistent/i: No such file or directory");
		snprintf(y, sizeof(y), "name: a\nkernel: %s\ninitrd: %s\n", g_kernel, g_dir);
		assert_non_null(strstr(parse_fail(y), "is not a regular file"));
	}
}

/* ---- a real QEMU ------------------------------------------------------- */

static int run(char *const argv[])
{
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ))
		return -1;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int on_path(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* Send one QMP command and read lines until its reply (events skipped). */
static struct json_object *qmp_cmd(FILE *f, int fd, const char *cmd)
{
	char line[65536];

	assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	while (fgets(line, sizeof(line), f)) {
		struct json_object *o = json_tokener_parse(line);

		if (o && (json_object_object_get_ex(o, "return", NULL) ||
			  json_object_object_get_ex(o, "error", NULL)))
			return o;
		json_object_put(o);
	}
	return NULL;
}

static void test_qemu_accepts(void **state)
{
	char err[256], sub[128], disk[192], iso[192], qmp[192], ser[192], kern[192], *y;
	char **argv = NULL;
	struct vm_spec *s = NULL;
	struct qemu_launch l = {0};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct json_object *r;
	const char *txt;
	pid_t pid;
	FILE *f;
	int fd = -1, st, i;

	(void)state;
	if (!on_path("qemu-system-x86_64") || !on_path("qemu-img"))
		skip();
	/* ',' and '=' everywhere a path goes */
	snprintf(sub, sizeof(sub), "%s/a,b=c", g_dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(disk, sizeof(disk), "%s/root,1.qcow2", sub);
	snprintf(iso, sizeof(iso), "%s/cd,1.iso", sub);
	snprintf(qmp, sizeof(qmp), "%s/q,mp.sock", sub);
	snprintf(ser, sizeof(ser), "%s/se,rial.sock", sub);
	snprintf(kern, sizeof(kern), "%s/ker,nel.elf", sub);
	write_multiboot(kern);
	write_file(iso, "", 0);
	{
		char *img[] = {"qemu-img", "create", "-q", "-f", "qcow2", disk, "16M", NULL};

		assert_int_equal(run(img), 0);
	}
	assert_true(asprintf(&y,
			     "name: cmdline-test\nmemory_mib: 32\nkernel: '%s'\nappend: a=1,b=2\n"
			     "serial: true\n"
			     "disks:\n  - {name: root, path: '%s'}\n"
			     "  - {name: cd, path: '%s', type: cdrom}\n"
			     "  - {name: empty, path: '', type: cdrom}\n"
			     "nics: [{name: net0}]\n",
			     kern, disk, iso) > 0);
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	free(y);
	l.accel = "tcg";
	l.qmp_socket = qmp;
	l.serial_socket = ser;
	l.incoming_defer = 1;
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_int_equal(posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), 0);
	g_qemu = pid;
	qemu_cmdline_free(argv);

	/* QEMU creates the QMP socket once it has parsed everything. */
	assert_true(strlen(qmp) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, qmp, strlen(qmp) + 1);
	for (i = 0; i < 200; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		close(fd);
		fd = -1;
		if (waitpid(pid, &st, WNOHANG) == pid && !(g_qemu = 0))
			fail_msg("QEMU exited with status %d: it rejected the command line", st);
		usleep(50 * 1000);
	}
	assert_true(fd >= 0);
	f = fdopen(dup(fd), "r");
	assert_non_null(f);
	r = qmp_cmd(f, fd, "{\"execute\":\"qmp_capabilities\"}\n");
	assert_non_null(r);
	json_object_put(r);

	r = qmp_cmd(f, fd, "{\"execute\":\"query-status\"}\n");
	assert_non_null(r);
	assert_non_null(strstr(json_object_to_json_string(r), "inmigrate"));
	json_object_put(r);

	r = qmp_cmd(f, fd, "{\"execute\":\"query-named-block-nodes\",\"arguments\":{\"flat\":true}}\n");
	assert_non_null(r);
	txt = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_non_null(strstr(txt, "\"node-name\":\"disk-root\""));
	assert_non_null(strstr(txt, "\"node-name\":\"file-root\""));
	assert_non_null(strstr(txt, "a,b=c/root,1.qcow2"));
	assert_non_null(strstr(txt, "a,b=c/cd,1.iso"));
	json_object_put(r);

	r = qmp_cmd(f, fd, "{\"execute\":\"query-block\"}\n");
	assert_non_null(r);
	txt = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_non_null(strstr(txt, "dev-empty"));
	json_object_put(r);

	{
		struct stat sb;

		assert_int_equal(stat(ser, &sb), 0); /* the serial socket exists */
		assert_true(S_ISSOCK(sb.st_mode));
	}
	r = qmp_cmd(f, fd, "{\"execute\":\"quit\"}\n");
	json_object_put(r);
	fclose(f);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	g_qemu = 0;
	assert_true(WIFEXITED(st));
	vmspec_free(s);
}

/* q35 with UEFI, a disk on each of its buses, a SCSI cdrom, a virtio NIC
 * and 2 vCPUs under MTTCG: QEMU takes the command line (it only creates its
 * QMP socket once it parsed and built everything) and shows the devices. */
static void test_qemu_accepts_hw(void **state)
{
	char err[256], qmp[192], vars[192], img[3][192], *y;
	char **argv = NULL;
	struct vm_spec *s = NULL;
	struct qemu_launch l = {.accel = "tcg", .incoming_defer = 1};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct json_object *r;
	const char *txt;
	pid_t pid;
	FILE *f;
	int fd = -1, st, i;

	(void)state;
	if (!on_path("qemu-system-x86_64") || access(VM_OVMF_CODE, R_OK) ||
	    access(VM_OVMF_VARS, R_OK))
		skip();
	for (i = 0; i < 3; i++) {
		snprintf(img[i], sizeof(img[i]), "%s/hw%d.raw", g_dir, i);
		write_file(img[i], "", 0);
		assert_int_equal(truncate(img[i], 1 << 20), 0);
	}
	snprintf(vars, sizeof(vars), "%s/efivars.fd", g_dir);
	{
		char *cp[] = {"cp", VM_OVMF_VARS, vars, NULL};

		assert_int_equal(run(cp), 0);
	}
	snprintf(qmp, sizeof(qmp), "%s/hw-qmp.sock", g_dir);
	assert_true(asprintf(&y,
			     "name: hw\nmemory_mib: 64\nvcpus: 2\nfirmware: uefi\n"
			     "disks:\n  - {name: v, path: '%s', format: raw}\n"
			     "  - {name: s, path: '%s', format: raw, bus: scsi}\n"
			     "  - {name: t, path: '%s', format: raw, bus: sata}\n"
			     "  - {name: cd, path: '', type: cdrom, bus: scsi}\n"
			     "nics: [{name: net0}, {name: net1, model: e1000}]\n",
			     img[0], img[1], img[2]) > 0);
	assert_int_equal(parse(y, &s, err, sizeof(err)), 0);
	free(y);
	l.qmp_socket = qmp;
	l.efi_vars = vars;
	assert_int_equal(qemu_cmdline_build(s, &l, &argv), 0);
	assert_int_equal(posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), 0);
	g_qemu = pid;
	qemu_cmdline_free(argv);
	memcpy(sa.sun_path, qmp, strlen(qmp) + 1);
	for (i = 0; i < 200; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		close(fd);
		fd = -1;
		if (waitpid(pid, &st, WNOHANG) == pid && !(g_qemu = 0))
			fail_msg("QEMU exited with status %d: it rejected the command line", st);
		usleep(50 * 1000);
	}
	assert_true(fd >= 0);
	f = fdopen(dup(fd), "r");
	assert_non_null(f);
	json_object_put(qmp_cmd(f, fd, "{\"execute\":\"qmp_capabilities\"}\n"));
	r = qmp_cmd(f, fd, "{\"execute\":\"query-block\"}\n");
	assert_non_null(r);
	txt = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	for (i = 0; i < 4; i++) {
		static const char *const ids[] = {"dev-v", "dev-s", "dev-t", "dev-cd"};

		assert_non_null(strstr(txt, ids[i]));
	}
	json_object_put(r);
	r = qmp_cmd(f, fd, "{\"execute\":\"query-cpus-fast\"}\n");
	assert_non_null(r);
	assert_int_equal(json_object_array_length(json_object_object_get(r, "return")), 2);
	json_object_put(r);
	json_object_put(qmp_cmd(f, fd, "{\"execute\":\"quit\"}\n"));
	fclose(f);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	g_qemu = 0;
	vmspec_free(s);
}

/* A spec.json written by ferry 0.3 (no disk bus, no NIC model) keeps the
 * hardware it was started with; a new request takes today's defaults. */
static void test_stored_legacy(void **state)
{
	static const char *const old[] = {
		"{\"name\":\"a\",\"machine\":\"pc\",\"disks\":[{\"name\":\"d\",\"path\":\"/x\"}],"
		"\"nics\":[{\"name\":\"n0\"}]}",
		"{\"name\":\"a\",\"machine\":\"q35\",\"disks\":[{\"name\":\"d\",\"path\":\"/x\"}],"
		"\"nics\":[{\"name\":\"n0\"}]}",
	};
	static const char *const bus[] = {"ide", "sata"};
	char err[400];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct json_object *o = json_tokener_parse(old[i]);
		struct vm_spec *s = NULL;

		assert_int_equal(vmspec_from_stored_json(o, &s, err, sizeof(err)), 0);
		assert_string_equal(s->disks[0].bus, bus[i]);
		assert_string_equal(s->nics[0].model, "e1000");
		vmspec_free(s);
		assert_int_equal(vmspec_from_json(o, &s, err, sizeof(err)), 0);
		assert_string_equal(s->disks[0].bus, "virtio");
		assert_string_equal(s->nics[0].model, "virtio");
		vmspec_free(s);
		json_object_put(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_json_roundtrip),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_validate_struct),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_cmdline_q35_bridge),
		cmocka_unit_test(test_cmdline_buses),
		cmocka_unit_test(test_hw_errors),
		cmocka_unit_test(test_qemu_accepts),
		cmocka_unit_test(test_qemu_accepts_hw),
		cmocka_unit_test(test_stored_legacy),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
