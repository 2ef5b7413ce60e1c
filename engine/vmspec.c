#include "engine/vmspec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "schema/check.h"
#include "schema/input.h"
#include "schema/yaml.h"
#include "util/uuid.h"

#define VOFF(m) offsetof(struct vm_spec, m)
#define DOFF(m) offsetof(struct vm_disk, m)
#define NOFF(m) offsetof(struct vm_nic, m)
#define SZ(t, m) sizeof(((t *)0)->m)

static void disk_init(void *p)
{
	struct vm_disk *d = p;

	/* format and bus stay empty: their defaults depend on the type and
	 * the machine (see finish). */
	snprintf(d->type, sizeof(d->type), "disk");
	snprintf(d->storage, sizeof(d->storage), "local");
}

static void nic_init(void *p)
{
	struct vm_nic *n = p;

	snprintf(n->network, sizeof(n->network), "default");
	snprintf(n->binding, sizeof(n->binding), "user");
	snprintf(n->model, sizeof(n->model), "virtio");
}

static const struct schema_field disk_fields[] = {
	{"name", SCHEMA_STR, DOFF(name), SZ(struct vm_disk, name), 0, NULL, NULL, 0},
	{"path", SCHEMA_STR, DOFF(path), SZ(struct vm_disk, path), 0, NULL, NULL, 0},
	{"format", SCHEMA_STR, DOFF(format), SZ(struct vm_disk, format), 0, NULL, NULL, 0},
	{"type", SCHEMA_STR, DOFF(type), SZ(struct vm_disk, type), 0, NULL, NULL, 0},
	{"storage", SCHEMA_STR, DOFF(storage), SZ(struct vm_disk, storage), 0, NULL, NULL, 0},
	{"bus", SCHEMA_STR, DOFF(bus), SZ(struct vm_disk, bus), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field nic_fields[] = {
	{"name", SCHEMA_STR, NOFF(name), SZ(struct vm_nic, name), 0, NULL, NULL, 0},
	{"network", SCHEMA_STR, NOFF(network), SZ(struct vm_nic, network), 0, NULL, NULL, 0},
	{"binding", SCHEMA_STR, NOFF(binding), SZ(struct vm_nic, binding), 0, NULL, NULL, 0},
	{"management", SCHEMA_BOOL, NOFF(management), 0, 0, NULL, NULL, 0},
	{"model", SCHEMA_STR, NOFF(model), SZ(struct vm_nic, model), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field vm_fields[] = {
	{"name", SCHEMA_STR, VOFF(name), SZ(struct vm_spec, name), 0, NULL, NULL, 0},
	{"uuid", SCHEMA_STR, VOFF(uuid), SZ(struct vm_spec, uuid), 0, NULL, NULL, 0},
	{"memory_mib", SCHEMA_INT, VOFF(memory_mib), 0, 0, NULL, NULL, 0},
	{"vcpus", SCHEMA_INT, VOFF(vcpus), 0, 0, NULL, NULL, 0},
	{"machine", SCHEMA_STR, VOFF(machine), SZ(struct vm_spec, machine), 0, NULL, NULL, 0},
	{"cpu_model", SCHEMA_STR, VOFF(cpu_model), SZ(struct vm_spec, cpu_model), 0, NULL, NULL,
	 0},
	{"cpu_host_model", SCHEMA_KV, VOFF(cpu_host_model), 0, VOFF(n_cpu_host_model), NULL, NULL,
	 0},
	{"firmware", SCHEMA_STR, VOFF(firmware), SZ(struct vm_spec, firmware), 0, NULL, NULL, 0},
	{"kernel", SCHEMA_STR, VOFF(kernel), SZ(struct vm_spec, kernel), 0, NULL, NULL, 0},
	{"initrd", SCHEMA_STR, VOFF(initrd), SZ(struct vm_spec, initrd), 0, NULL, NULL, 0},
	{"append", SCHEMA_STR, VOFF(append), SZ(struct vm_spec, append), 0, NULL, NULL, 0},
	{"serial", SCHEMA_BOOL, VOFF(serial), 0, 0, NULL, NULL, 0},
	{"labels", SCHEMA_KV, VOFF(labels), 0, VOFF(n_labels), NULL, NULL, 0},
	{"node_selector", SCHEMA_KV, VOFF(node_selector), 0, VOFF(n_node_selector), NULL, NULL,
	 0},
	{"disks", SCHEMA_OBJLIST, VOFF(disks), sizeof(struct vm_disk), VOFF(n_disks), disk_fields,
	 disk_init, 0},
	{"nics", SCHEMA_OBJLIST, VOFF(nics), sizeof(struct vm_nic), VOFF(n_nics), nic_fields,
	 nic_init, 0},
	{"migration", SCHEMA_OBJ, VOFF(mig), 0, 0, ferry_migration_fields, NULL, 0},
	{0},
};

static void spec_defaults(struct vm_spec *s)
{
	s->memory_mib = 1024;
	s->vcpus = 1;
	snprintf(s->machine, sizeof(s->machine), "q35");
	snprintf(s->cpu_model, sizeof(s->cpu_model), "qemu64");
	snprintf(s->firmware, sizeof(s->firmware), "bios");
	ferry_migration_unset(&s->mig);
}

/* Machine families ferry knows how to lay out: their disk controllers differ. */
static int machine_family(const char *m)
{
	if (!strcmp(m, "pc") || !strncmp(m, "pc-i440fx-", 10))
		return 'p';
	if (!strcmp(m, "q35") || !strncmp(m, "pc-q35-", 7))
		return 'q';
	return 0;
}

/* Defaults that depend on other fields, and normalisation, applied after
 * decoding whatever the form. */
static int spec_finish(struct vm_spec *s)
{
	for (size_t i = 0; i < s->n_disks; i++) {
		struct vm_disk *d = &s->disks[i];

		if (!d->format[0])
			snprintf(d->format, sizeof(d->format), "%s",
				 strcmp(d->type, "cdrom") ? "qcow2" : "raw");
		/* virtio-blk has no removable media: a cdrom defaults to the
		 * machine's own controller. */
		if (!d->bus[0])
			snprintf(d->bus, sizeof(d->bus), "%s",
				 strcmp(d->type, "cdrom") ? "virtio"
				 : machine_family(s->machine) == 'p' ? "ide" : "sata");
	}
	/* QEMU accepts either case; one spelling keeps the JSON form (and the
	 * source/target comparison) canonical. */
	for (char *p = s->uuid; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!s->uuid[0])
		return uuid_v4(s->uuid);
	return 0;
}

/* The position of disk idx among the disks of its bus. */
static size_t index_on_bus(const struct vm_spec *s, size_t idx)
{
	size_t n = 0;

	for (size_t j = 0; j < idx; j++)
		n += !strcmp(s->disks[j].bus, s->disks[idx].bus);
	return n;
}

int vmspec_disk_slot(const struct vm_spec *s, size_t idx, int *bus, int *unit)
{
	const char *b = s->disks[idx].bus;
	size_t n = index_on_bus(s, idx);
	int fam = machine_family(s->machine);

	*bus = *unit = 0;
	if (!strcmp(b, "virtio"))
		return 0;
	if (!strcmp(b, "scsi")) {
		if (n >= VM_SCSI_DISKS_MAX)
			return -EINVAL;
		*unit = (int)n;
		return 0;
	}
	if (!strcmp(b, "ide") && fam == 'p') { /* PIIX: ide.0/ide.1, master and slave */
		if (n >= 4)
			return -EINVAL;
		*bus = (int)(n / 2);
		*unit = (int)(n % 2);
		return 0;
	}
	if (!strcmp(b, "sata") && fam == 'q') { /* ICH9 AHCI: ports ide.0..ide.5 */
		if (n >= 6)
			return -EINVAL;
		*bus = (int)n;
		return 0;
	}
	return -EINVAL;
}

static int check_uuid(struct schema_err *e, const char *u)
{
	size_t i;

	if (strlen(u) != 36)
		goto bad;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				goto bad;
		} else if (!u[i] || !strchr("0123456789abcdef", u[i])) {
			goto bad;
		}
	}
	return 0;
bad:
	return schema_fail(e, "uuid",
			   "uuid must be a UUID like 6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7c6b5a (got \"%s\")",
			   u);
}

static int check_disks(const struct vm_spec *s, struct schema_err *e)
{
	static const char *const types[] = {"disk", "cdrom", "containerdisk", NULL};
	static const char *const storages[] = {"local", "shared", NULL};
	static const char *const formats[] = {"qcow2", "raw", NULL};
	static const char *const buses[] = {"virtio", "scsi", "sata", "ide", NULL};
	int fam = machine_family(s->machine);
	char p[96];
	int rc, bus, unit;

	if (s->n_disks > VM_DISKS_MAX)
		return schema_fail(e, "disks", "disks: at most %d, got %zu", VM_DISKS_MAX, s->n_disks);
	for (size_t i = 0; i < s->n_disks; i++) {
		const struct vm_disk *d = &s->disks[i];

		snprintf(p, sizeof(p), "disks[%zu].name", i);
		if ((rc = schema_check_name(e, p, d->name, VM_DISK_NAME_MAX)))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->disks[j].name, d->name))
				return schema_fail(e, p, "%s: duplicate disk name \"%s\"", p,
						   d->name);
		snprintf(p, sizeof(p), "disks[%zu].type", i);
		if ((rc = schema_check_enum(e, p, d->type, types, "disk, cdrom, containerdisk")))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].storage", i);
		if ((rc = schema_check_enum(e, p, d->storage, storages, "local, shared")))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].format", i);
		if ((rc = schema_check_enum(e, p, d->format, formats, "qcow2, raw")))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].path", i);
		/* An empty cdrom is a drive without media; anything else needs one. */
		if (!d->path[0] && strcmp(d->type, "cdrom"))
			return schema_fail(e, p, "%s is required for a %s", p, d->type);
		if (d->path[0] && (rc = schema_check_abs_path(e, p, d->path)))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].bus", i);
		if ((rc = schema_check_enum(e, p, d->bus, buses, "virtio, scsi, sata, ide")))
			return rc;
		if (!strcmp(d->bus, "virtio") && !strcmp(d->type, "cdrom"))
			return schema_fail(e, p,
					   "%s: a cdrom cannot be on virtio (virtio-blk has no removable "
					   "media): use scsi, or %s",
					   p, fam == 'p' ? "ide" : "sata");
		if (!strcmp(d->bus, "sata") && fam != 'q')
			return schema_fail(e, p,
					   "%s: sata (AHCI) is q35's controller; machine %s has none: "
					   "use virtio, scsi or ide",
					   p, s->machine);
		if (!strcmp(d->bus, "ide") && fam != 'p')
			return schema_fail(e, p,
					   "%s: ide is the pc machine's controller; machine %s has none: "
					   "use virtio, scsi or sata",
					   p, s->machine);
		if (vmspec_disk_slot(s, i, &bus, &unit))
			return schema_fail(e, p, "%s: bus %s has room for %d disks; this is one more",
					   p, d->bus,
					   !strcmp(d->bus, "scsi") ? VM_SCSI_DISKS_MAX
					   : !strcmp(d->bus, "ide") ? 4 : 6);
	}
	return 0;
}

static int check_nics(const struct vm_spec *s, struct schema_err *e)
{
	static const char *const bindings[] = {"user", "bridge", "masquerade", NULL};
	static const char *const models[] = {"virtio", "e1000", NULL};
	char p[96];
	int rc;

	for (size_t i = 0; i < s->n_nics; i++) {
		const struct vm_nic *n = &s->nics[i];

		snprintf(p, sizeof(p), "nics[%zu].name", i);
		if ((rc = schema_check_name(e, p, n->name, 63)))
			return rc;
		/* It is the netdev id, and QEMU ids must start with a letter. */
		if (!isalpha((unsigned char)n->name[0]))
			return schema_fail(e, p, "%s must start with a letter (got \"%s\")", p,
					   n->name);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->nics[j].name, n->name))
				return schema_fail(e, p, "%s: duplicate nic name \"%s\"", p, n->name);
		snprintf(p, sizeof(p), "nics[%zu].network", i);
		if ((rc = schema_check_name(e, p, n->network, 63)))
			return rc;
		snprintf(p, sizeof(p), "nics[%zu].binding", i);
		if ((rc = schema_check_enum(e, p, n->binding, bindings, "user, bridge, masquerade")))
			return rc;
		snprintf(p, sizeof(p), "nics[%zu].model", i);
		if ((rc = schema_check_enum(e, p, n->model, models, "virtio, e1000")))
			return rc;
		if (n->management != 0 && n->management != 1)
			return schema_fail(e, p, "nics[%zu].management must be true or false", i);
	}
	return 0;
}

/* An absolute path to a readable regular file on this host. */
static int check_file(struct schema_err *e, const char *key, const char *path)
{
	struct stat st;
	int rc;

	if ((rc = schema_check_abs_path(e, key, path)))
		return rc;
	if (stat(path, &st) || access(path, R_OK))
		return schema_fail(e, key, "%s %s: %s", key, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return schema_fail(e, key, "%s %s is not a regular file", key, path);
	return 0;
}

/* The recorded host-model CPU: property names and values as QEMU's -cpu
 * takes them, only for cpu_model host-model. */
static int check_cpu_host_model(const struct vm_spec *s, struct schema_err *e)
{
	static const char key_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789._-";
	char p[96];

	if (strcmp(s->cpu_model, VM_CPU_HOST_MODEL) && s->n_cpu_host_model)
		return schema_fail(e, "cpu_host_model",
				   "cpu_host_model is only for cpu_model %s (cpu_model is %s)",
				   VM_CPU_HOST_MODEL, s->cpu_model);
	if (s->n_cpu_host_model > VM_CPU_PROPS_MAX)
		return schema_fail(e, "cpu_host_model", "cpu_host_model has %zu properties, at most %d",
				   s->n_cpu_host_model, VM_CPU_PROPS_MAX);
	for (size_t i = 0; i < s->n_cpu_host_model; i++) {
		const struct ferry_kv *kv = &s->cpu_host_model[i];
		size_t kl = strlen(kv->key);

		snprintf(p, sizeof(p), "cpu_host_model.%.60s", kv->key);
		if (!kl || kl > 63 || strspn(kv->key, key_chars) != kl)
			return schema_fail(e, p,
					   "%s: a CPU property name is 1..63 characters of a-z, A-Z, "
					   "0-9, '.', '_', '-'",
					   p);
		if (strlen(kv->value) > 63)
			return schema_fail(e, p, "%s: value longer than 63 characters", p);
		for (const char *c = kv->value; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				return schema_fail(e, p, "%s: value has a non-printable character", p);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->cpu_host_model[j].key, kv->key))
				return schema_fail(e, p, "%s: duplicate property", p);
	}
	return 0;
}

static int spec_check(const struct vm_spec *s, struct schema_err *e)
{
	static const char *const firmwares[] = {"bios", "uefi", NULL};
	size_t n;
	int rc;

	if ((rc = schema_check_dns_label(e, "name", s->name)))
		return rc;
	if ((rc = check_uuid(e, s->uuid)))
		return rc;
	if (s->memory_mib < VM_MEMORY_MIB_MIN || s->memory_mib > VM_MEMORY_MIB_MAX)
		return schema_fail(e, "memory_mib", "memory_mib must be between %d and %d (got %d)",
				   VM_MEMORY_MIB_MIN, VM_MEMORY_MIB_MAX, s->memory_mib);
	n = strlen(s->machine);
	if (!machine_family(s->machine) ||
	    strspn(s->machine, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
		return schema_fail(e, "machine",
				   "machine must be pc, q35, pc-i440fx-<version> or "
				   "pc-q35-<version> (got \"%s\")",
				   s->machine);
	/* i440fx tops out at 255 vCPUs; q35 takes the full range. */
	if (s->vcpus < 1 || s->vcpus > (machine_family(s->machine) == 'p' ? 255 : VM_VCPUS_MAX))
		return schema_fail(e, "vcpus", "vcpus must be between 1 and %d for machine %s (got %d)",
				   machine_family(s->machine) == 'p' ? 255 : VM_VCPUS_MAX,
				   s->machine, s->vcpus);
	n = strlen(s->cpu_model);
	if (!n || strspn(s->cpu_model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789._-") != n)
		return schema_fail(e, "cpu_model",
				   "cpu_model must be a QEMU CPU model name such as qemu64 or host "
				   "(got \"%s\")",
				   s->cpu_model);
	if ((rc = check_cpu_host_model(s, e)))
		return rc;
	if ((rc = schema_check_enum(e, "firmware", s->firmware, firmwares, "bios, uefi")))
		return rc;
	if (!strcmp(s->firmware, "uefi") && machine_family(s->machine) != 'q')
		return schema_fail(e, "firmware",
				   "firmware uefi needs machine q35 (OVMF's 4 MiB build is for q35); "
				   "machine is %s",
				   s->machine);
	if (s->kernel[0]) {
		if ((rc = check_file(e, "kernel", s->kernel)))
			return rc;
	} else if (s->append[0]) {
		return schema_fail(e, "append", "append needs a kernel");
	}
	if (s->initrd[0]) {
		if (!s->kernel[0])
			return schema_fail(e, "initrd", "initrd needs a kernel");
		if ((rc = check_file(e, "initrd", s->initrd)))
			return rc;
	}
	if (s->serial != 0 && s->serial != 1)
		return schema_fail(e, "serial", "serial must be true or false");
	if ((rc = schema_check_labels(e, "labels", s->labels, s->n_labels)))
		return rc;
	if ((rc = schema_check_labels(e, "node_selector", s->node_selector, s->n_node_selector)))
		return rc;
	if ((rc = check_disks(s, e)))
		return rc;
	if ((rc = check_nics(s, e)))
		return rc;
	return ferry_migration_check(e, "migration", &s->mig, 1);
}

int vmspec_validate(const struct vm_spec *s, char *err, size_t errlen)
{
	struct schema_err e;
	int rc = spec_check(s, &e);

	if (rc)
		snprintf(err, errlen, "%s", e.msg);
	return rc;
}

void vmspec_free(struct vm_spec *s)
{
	if (!s)
		return;
	schema_free(vm_fields, s);
	free(s);
}

/* Decode a tree (from YAML or JSON) into a finished, validated spec. */
static int spec_from_tree(struct json_object *root, const char *origin, struct vm_spec **out,
			  char *err, size_t errlen)
{
	struct vm_spec *s = NULL;
	struct schema_err e;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	spec_defaults(s);
	rc = schema_decode(root, vm_fields, s, origin, err, errlen);
	if (rc)
		goto out;
	rc = spec_finish(s);
	if (rc) {
		snprintf(err, errlen, "cannot generate a uuid: %s", strerror(-rc));
		goto out;
	}
	rc = spec_check(s, &e);
	if (rc) {
		schema_report(&e, root, origin, err, errlen);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	vmspec_free(s);
	return rc;
}

int vmspec_parse_yaml(const char *text, size_t len, const char *origin, struct vm_spec **out,
		      char *err, size_t errlen)
{
	struct json_object *root = NULL;
	int rc;

	*out = NULL;
	if (!origin)
		origin = "<spec>";
	rc = schema_yaml_to_json(text, len, origin, &root, err, errlen);
	if (!rc)
		rc = spec_from_tree(root, origin, out, err, errlen);
	json_object_put(root);
	return rc;
}

int vmspec_from_json(struct json_object *o, struct vm_spec **out, char *err, size_t errlen)
{
	return spec_from_tree(o, NULL, out, err, errlen);
}

int vmspec_from_stored_json(struct json_object *o, struct vm_spec **out, char *err, size_t errlen)
{
	struct json_object *copy = NULL, *list, *machine;
	const char *m;
	int r;

	if (!json_object_is_type(o, json_type_object) || json_object_deep_copy(o, &copy, NULL) < 0)
		return vmspec_from_json(o, out, err, errlen);
	/* ferry 0.3 wrote every key but these two, which it did not have: its
	 * disks sat on the machine's own IDE/AHCI controller, its NICs were
	 * e1000. A written spec always names its machine (0.3 did too). */
	m = json_object_object_get_ex(copy, "machine", &machine) ? json_object_get_string(machine) : NULL;
	if (m && json_object_object_get_ex(copy, "disks", &list) && json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			struct json_object *d = json_object_array_get_idx(list, i);

			if (json_object_is_type(d, json_type_object) && !json_object_object_get_ex(d, "bus", NULL))
				json_object_object_add(d, "bus", json_object_new_string(
								machine_family(m) == 'q' ? "sata" : "ide"));
		}
	if (m && json_object_object_get_ex(copy, "nics", &list) && json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			struct json_object *n = json_object_array_get_idx(list, i);

			if (json_object_is_type(n, json_type_object) && !json_object_object_get_ex(n, "model", NULL))
				json_object_object_add(n, "model", json_object_new_string("e1000"));
		}
	r = vmspec_from_json(copy, out, err, errlen);
	json_object_put(copy);
	return r;
}

struct json_object *vmspec_to_json(const struct vm_spec *s)
{
	return schema_encode(vm_fields, s);
}

struct vm_spec *vmspec_dup(const struct vm_spec *s)
{
	struct vm_spec *d = malloc(sizeof(*d));

	if (!d)
		return NULL;
	memcpy(d, s, sizeof(*d));
	if (schema_copy(vm_fields, d, s)) {
		free(d);
		return NULL;
	}
	return d;
}

int vmspec_load_file(const char *path, struct vm_spec **out, char *err, size_t errlen)
{
	struct json_object *root = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = schema_read_file(path, &text, &len, err, errlen);
	if (rc)
		goto out;
	if (strlen(text) != len) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		rc = -EINVAL;
		goto out;
	}
	/* Decided by content, not by the name: what the state dir persists
	 * and what people write may be named anything. */
	if (text[strspn(text, " \t\r\n")] == '{')
		rc = schema_json_parse(text, len, path, &root, err, errlen);
	else
		rc = schema_yaml_to_json(text, len, path, &root, err, errlen);
	if (!rc)
		rc = spec_from_tree(root, path, out, err, errlen);
out:
	json_object_put(root);
	free(text);
	return rc;
}
