/* vmspec: the VM spec, in its two forms.
 *
 * YAML is what people write (`ferryctl vm create -f vm.yaml`); JSON is what
 * agents exchange over the peer link and persist in their state dir. Both
 * forms have the same keys and are decoded by the same table-driven schema
 * code (schema/, also used by agent/config.c), so they cannot drift apart:
 * YAML is first turned into a json-c tree whose nodes remember their source
 * line, then decoded like JSON.
 *
 * Strictness is deliberate. Unknown keys, duplicate keys and wrong types are
 * errors: a typo such as `memroy_mib` must not silently give the VM the
 * default memory, and a spec the target agent receives must mean exactly
 * what it meant on the source. Error messages name the origin, line and key:
 *   "vm.yaml:7: memory_mib must be between 16 and 1048576 (got 0)".
 *
 * Conventions: functions return 0 or -errno (-EINVAL for a bad spec, with
 * the reason in err; -ENOMEM; -errno of open/read) and leave errno alone.
 */
#ifndef FERRY_ENGINE_VMSPEC_H
#define FERRY_ENGINE_VMSPEC_H

#include <stddef.h>

#include "schema/migration.h" /* struct ferry_migration_defaults */
#include "schema/schema.h"    /* struct ferry_kv, FERRY_UNSET */

struct json_object;

/* Limits checked by vmspec_validate. */
#define VM_MEMORY_MIB_MIN 16
#define VM_MEMORY_MIB_MAX 1048576
#define VM_VCPUS_MAX 256
/* Disk names end up in QEMU block node names ("disk-<name>", "file-<name>"),
 * which QEMU limits to 31 characters. */
#define VM_DISK_NAME_MAX 26
/* Disks of a VM, every bus together: each virtio disk takes a PCI slot of
 * the root bus, which has 32. */
#define VM_DISKS_MAX 24
/* cpu_model value of a host-model CPU, and the most properties it keeps. */
#define VM_CPU_HOST_MODEL "host-model"
#define VM_CPU_PROPS_MAX 1024
/* virtio-scsi: one controller, one target per disk. */
#define VM_SCSI_DISKS_MAX 16

struct vm_disk {
	char name[64];
	char path[512];   /* absolute; "" only for a cdrom without media */
	char format[16];  /* qcow2 | raw (default qcow2, raw for cdrom) */
	char type[16];    /* disk | cdrom | containerdisk (default disk) */
	char storage[16]; /* local | shared (default local): shared disks are not copied */
	char bus[16];     /* virtio | scsi | sata | ide (default virtio; a cdrom: sata
			   * on q35, ide on pc) */
};

struct vm_nic {
	char name[64];    /* also the QEMU netdev id, so it starts with a letter */
	char network[64]; /* default "default" */
	char binding[16]; /* user | bridge | masquerade (default user) */
	int management;   /* 0/1 (default 0) */
	char model[16];   /* virtio | e1000 (default virtio) */
};

struct vm_spec {
	char name[64];      /* required, a DNS-1123 label (schema_check_dns_label) */
	char uuid[37];      /* lowercase canonical; generated (v4) when empty */
	int memory_mib;     /* default 1024 */
	int vcpus;          /* default 1 */
	char machine[32];   /* default "q35" */
	char cpu_model[64]; /* default "qemu64"; "host" = passthrough, "host-model" */
	/* cpu_model host-model: the CPU of the host the VM was created on,
	 * QEMU's static expansion (qmp/cpu_model.h), recorded at its first
	 * start and travelling with it; empty for any other model. */
	struct ferry_kv *cpu_host_model;
	size_t n_cpu_host_model;
	char firmware[16];  /* bios | uefi (default bios) */
	char kernel[512];   /* optional direct kernel boot; else boot from the first disk */
	char initrd[512];   /* optional, only with kernel */
	char append[1024];
	int serial;         /* 0/1 (default 0): serial console socket in the run dir */
	struct ferry_kv *labels;
	size_t n_labels;
	struct ferry_kv *node_selector;
	size_t n_node_selector;
	struct vm_disk *disks;
	size_t n_disks;
	struct vm_nic *nics;
	size_t n_nics;
	struct ferry_migration_defaults mig; /* every field FERRY_UNSET by default */
};

/* Parse a YAML spec. origin names the source in messages ("vm.yaml").
 * Decodes, fills defaults, generates the uuid when empty and validates. */
int vmspec_parse_yaml(const char *text, size_t len, const char *origin,
		      struct vm_spec **out, char *err, size_t errlen);
/* Read a file (at most 1 MiB): JSON when its first non-blank character is
 * '{', YAML otherwise. Messages use the path as origin. */
int vmspec_load_file(const char *path, struct vm_spec **out, char *err, size_t errlen);
/* Decode the JSON form (as produced by vmspec_to_json, or written by hand:
 * absent keys take their defaults). Generates the uuid when empty and
 * validates. Does not take ownership of o. */
int vmspec_from_json(struct json_object *o, struct vm_spec **out, char *err, size_t errlen);
/* A spec ferry wrote itself (a VM's spec.json, a peer's prepare): as
 * vmspec_from_json, but one written by ferry 0.3, whose disks had no bus
 * and NICs no model, keeps the hardware it was started with (IDE on pc,
 * AHCI on q35, e1000) instead of taking today's defaults. */
int vmspec_from_stored_json(struct json_object *o, struct vm_spec **out, char *err, size_t errlen);
/* Every key, in a fixed order; migration overrides that are FERRY_UNSET are
 * left out. vmspec_from_json(vmspec_to_json(s)) gives back s exactly.
 * NULL only on allocation failure. */
struct json_object *vmspec_to_json(const struct vm_spec *s);
/* Names, ranges, enums, uniqueness, buses the machine has and their slots,
 * absolute paths, and that the kernel and initrd (when given) are readable
 * regular files on this host. */
int vmspec_validate(const struct vm_spec *s, char *err, size_t errlen);
/* Deep copy; NULL on allocation failure. */
struct vm_spec *vmspec_dup(const struct vm_spec *s);
void vmspec_free(struct vm_spec *s);

/* Where disk idx of a spec sits on its controller, counted among the disks
 * on the same bus: ide (pc's PIIX) "ide.<bus>" unit <unit>, 2 buses x 2
 * units; sata (q35's ICH9 AHCI) "ide.<bus>" unit 0, 6 ports; scsi
 * (virtio-scsi "scsi0.0") scsi-id <unit>, bus 0, up to VM_SCSI_DISKS_MAX;
 * virtio: bus = unit = 0 (a PCI device each). -EINVAL for a bus the machine
 * does not have, or no free slot. Shared by vmspec_validate and
 * qemu_cmdline so they cannot disagree. */
int vmspec_disk_slot(const struct vm_spec *s, size_t idx, int *bus, int *unit);

/* Firmware files of firmware: uefi (Debian's ovmf package). The code is
 * read-only; each VM gets its own copy of the variables template. */
#define VM_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define VM_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

#endif
