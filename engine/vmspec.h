/* vmspec: the VM spec, in its two forms.
 *
 * YAML is what people write (`ferryctl vm create -f vm.yaml`); JSON is what
 * agents exchange over the peer link and persist in their state dir. Both
 * forms have the same keys and are decoded by the same table-driven schema
 * code (the "schema_" part of this header, also used by agent/config.c), so
 * they cannot drift apart: YAML is first turned into a json-c tree whose
 * nodes remember their source line, then decoded like JSON.
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

#include <limits.h>
#include <stddef.h>

struct json_object;

/* One label or node-selector entry; both strings are owned (malloc). */
struct ferry_kv {
	char *key, *value;
};

/* Migration tuning. In ferryd's config these are the agent defaults; in a
 * VM spec or a policy they are overrides where FERRY_UNSET means "not named
 * here". compress is a boolean (0/1) or FERRY_UNSET. Ranges, precedence and
 * the checks are engine/mig_settings.h's (mset_). */
struct ferry_migration_defaults {
	int progress_timeout_s;          /* abort when remaining data sets no new low for this long */
	int completion_timeout_s_per_gib; /* abort after this many s per GiB of RAM + copied disk */
	int max_bandwidth_mibps;         /* 0 = unlimited (QEMU max-bandwidth set very high) */
	int downtime_limit_ms;           /* QEMU downtime-limit */
	int compress;                    /* ferry's LZ4 on the wire */
	int multifd_channels;            /* 0 = single channel */
	/* Escalations, each off by default; they start after escalate_after_s
	 * without progress, before the progress timeout aborts. */
	int auto_converge;               /* QEMU throttles the guest's vCPUs */
	int post_copy;                   /* switch to post-copy (forces 1 channel) */
	int downtime_step_ms;            /* raise downtime-limit by this per step; 0 = off */
	int downtime_max_ms;             /* ... up to this */
	int escalate_after_s;            /* no progress for this long: next step */
};

/* "Not set": outside every setting's range, so no value (0 and -1
 * included) is ever mistaken for it. */
#define FERRY_UNSET INT_MIN

/* Limits checked by vmspec_validate. */
#define VM_MEMORY_MIB_MIN 16
#define VM_MEMORY_MIB_MAX 1048576
#define VM_VCPUS_MAX 256
/* Disk names end up in QEMU block node names ("disk-<name>", "file-<name>"),
 * which QEMU limits to 31 characters. */
#define VM_DISK_NAME_MAX 26

struct vm_disk {
	char name[64];
	char path[512];   /* absolute; "" only for a cdrom without media */
	char format[16];  /* qcow2 | raw (default qcow2, raw for cdrom) */
	char type[16];    /* disk | cdrom | containerdisk (default disk) */
	char storage[16]; /* local | shared (default local): shared disks are not copied */
};

struct vm_nic {
	char name[64];    /* also the QEMU netdev id, so it starts with a letter */
	char network[64]; /* default "default" */
	char binding[16]; /* user | bridge | masquerade (default user) */
	int management;   /* 0/1 (default 0) */
};

struct vm_spec {
	char name[64];      /* required, [a-z0-9-]{1,63} */
	char uuid[37];      /* lowercase canonical; generated (v4) when empty */
	int memory_mib;     /* default 1024 */
	int vcpus;          /* default 1 */
	char machine[32];   /* default "pc" */
	char cpu_model[64]; /* default "qemu64"; "host" = host-model CPU */
	char kernel[512];   /* optional direct kernel boot */
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
/* Every key, in a fixed order; migration overrides that are FERRY_UNSET are
 * left out. vmspec_from_json(vmspec_to_json(s)) gives back s exactly.
 * NULL only on allocation failure. */
struct json_object *vmspec_to_json(const struct vm_spec *s);
/* Names, ranges, enums, uniqueness, IDE slots, absolute paths, and that the
 * kernel (when given) is a readable regular file on this host. */
int vmspec_validate(const struct vm_spec *s, char *err, size_t errlen);
/* Deep copy; NULL on allocation failure. */
struct vm_spec *vmspec_dup(const struct vm_spec *s);
void vmspec_free(struct vm_spec *s);

/* Where disk idx of a spec sits on the machine's IDE controller: device
 * bus "ide.<bus>", unit <unit>. pc (PIIX) has 2 buses x 2 units, q35 (AHCI)
 * 6 ports x 1 unit. -EINVAL for an unknown machine or no free slot. Shared
 * by vmspec_validate and qemu_cmdline so they cannot disagree. */
int vmspec_ide_slot(const char *machine, size_t idx, int *bus, int *unit);

/* ------------------------------------------------------------------------
 * schema: table-driven decoding shared by the VM spec and ferryd's config.
 *
 * A struct is described by a table of fields (key, kind, offsets) ending in
 * a zeroed entry. schema_decode() walks a json-c object against the table:
 * unknown keys are errors, absent keys leave the target untouched (callers
 * pre-fill defaults), lists replace what was there. YAML reaches it through
 * schema_yaml_to_json(), which keeps each node's line for messages.
 * ---------------------------------------------------------------------- */

enum schema_kind {
	SCHEMA_END = 0,
	SCHEMA_STR,      /* char[size] at off; any scalar (numbers keep their text) */
	SCHEMA_INT,      /* int at off; an integer, not a quoted string */
	SCHEMA_BOOL,     /* int at off, 0/1; true/false */
	SCHEMA_KV,       /* struct ferry_kv * at off, size_t count at off2; a map of scalars */
	SCHEMA_STRLIST,  /* char ** at off, size_t count at off2; a list of scalars */
	SCHEMA_OBJ,      /* nested object decoded into the same struct by sub */
	SCHEMA_OBJLIST,  /* array of size-byte elements at off, count at off2; each by sub */
	SCHEMA_HOSTPORT, /* "host:port" / "[v6]:port": char[size] at off, int port at off2 */
	SCHEMA_RESERVED, /* accepted only as an empty list (a key of a later version) */
};

/* FERRY_UNSET means "absent": schema_encode leaves such a field out. */
#define SCHEMA_F_UNSET_OMIT 0x1

struct schema_field {
	const char *key;
	enum schema_kind kind;
	size_t off;
	size_t size;
	size_t off2;
	const struct schema_field *sub;
	void (*init)(void *elem); /* SCHEMA_OBJLIST: defaults of a fresh element */
	unsigned flags;
};

/* A validation failure: the key path ("disks[1].type") lets a YAML caller
 * turn it into a line number; msg is complete on its own. */
struct schema_err {
	char path[128];
	char msg[384];
};

/* Read a whole regular file of at most SCHEMA_MAX_FILE bytes into a
 * NUL-terminated malloc'd buffer; errors as "path: reason". */
#define SCHEMA_MAX_FILE (1024 * 1024)
int schema_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);
/* Parse JSON text (exactly one value, trailing blanks allowed); errors as
 * "origin:line: invalid JSON: ...". */
int schema_json_parse(const char *text, size_t len, const char *origin,
		      struct json_object **out, char *err, size_t errlen);
/* Parse one YAML document into a json-c tree. Plain scalars resolve like
 * YAML 1.2's core schema (null, true/false, decimal integers; everything
 * else, including yes/no and floats, stays a string); duplicate keys,
 * non-scalar keys and multi-document streams are errors. */
int schema_yaml_to_json(const char *text, size_t len, const char *origin,
			struct json_object **out, char *err, size_t errlen);
/* Source line of the node at path ("disks[1].type"), or of its deepest
 * existing ancestor; 0 when the tree did not come from YAML. */
int schema_line(struct json_object *root, const char *path);
/* Decode obj (must be an object) into target. origin may be NULL. */
int schema_decode(struct json_object *obj, const struct schema_field *fields, void *target,
		  const char *origin, char *err, size_t errlen);
/* Encode target as a JSON object; NULL on allocation failure. */
struct json_object *schema_encode(const struct schema_field *fields, const void *target);
/* Deep-copy the owned members of src into dst (which holds a shallow
 * memcpy of src); on failure dst's owned members are NULL/0. */
int schema_copy(const struct schema_field *fields, void *dst, const void *src);
/* Free the owned members (lists, maps) and reset their counts. */
void schema_free(const struct schema_field *fields, void *target);
/* Fill e and return -EINVAL. */
int schema_fail(struct schema_err *e, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Format e for the user: "origin:line: msg", "origin: msg" or "msg". */
void schema_report(const struct schema_err *e, struct json_object *root, const char *origin,
		   char *err, size_t errlen);

/* Shared checks (0 or schema_fail(e, path, ...)). */
/* [a-z0-9-]{1,max} (DNS-label-like names of VMs, nodes, networks, ...) */
int schema_check_name(struct schema_err *e, const char *path, const char *v, size_t max);
/* label keys [A-Za-z0-9._/-]{1,253}, values [A-Za-z0-9._-]{0,63}, unique keys */
int schema_check_labels(struct schema_err *e, const char *path, const struct ferry_kv *kv,
			size_t n);
/* Split "host:port" or "[v6addr]:port"; port 1..65535. 0 or -EINVAL. */
int schema_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
