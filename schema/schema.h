/* schema: table-driven decoding of JSON trees into C structs, shared by the
 * VM spec (engine/vmspec.c) and ferryd's config (agent/config.c).
 *
 * A struct is described by a table of fields (key, kind, offsets) ending in
 * a zeroed entry. schema_decode() walks a json-c object against the table:
 * unknown keys are errors, absent keys leave the target untouched (callers
 * pre-fill defaults), lists replace what was there. YAML reaches it through
 * schema_yaml_to_json() (schema/yaml.h), which keeps each node's line for
 * messages, so both forms of a document are decoded by the same code and
 * cannot drift apart.
 *
 * Strictness is deliberate. Unknown keys, duplicate keys and wrong types are
 * errors: a typo such as `memroy_mib` must not silently fall back to a
 * default. Error messages name the origin, line and key:
 *   "vm.yaml:7: memory_mib must be between 16 and 1048576 (got 0)".
 *
 * Conventions: functions return 0 or -errno (-EINVAL for a bad document,
 * with the reason in err; -ENOMEM) and leave errno alone.
 */
#ifndef FERRY_SCHEMA_SCHEMA_H
#define FERRY_SCHEMA_SCHEMA_H

#include <limits.h>
#include <stddef.h>

struct json_object;

/* One label or node-selector entry; both strings are owned (malloc). */
struct ferry_kv {
	char *key, *value;
};

/* An int field holding FERRY_UNSET is "absent" (see SCHEMA_F_UNSET_OMIT).
 * It lies outside every setting's range, so no value (0 and -1 included)
 * is ever mistaken for it. */
#define FERRY_UNSET INT_MIN

enum schema_kind {
	SCHEMA_END = 0,
	SCHEMA_STR,      /* char[size] at off; a string (a YAML plain scalar that looks
			    like a number or boolean keeps its text; a JSON number is refused) */
	SCHEMA_INT,      /* int at off; an integer, not a quoted string */
	SCHEMA_BOOL,     /* int at off, 0/1; true/false */
	SCHEMA_KV,       /* struct ferry_kv * at off, size_t count at off2; a map of scalars */
	SCHEMA_STRLIST,  /* char ** at off, size_t count at off2; a list of scalars */
	SCHEMA_OBJ,      /* nested object decoded by sub into the struct at off (0: the same one) */
	SCHEMA_OBJLIST,  /* array of size-byte elements at off, count at off2; each by sub */
	SCHEMA_HOSTPORT, /* "host:port" / "[v6]:port": char[size] at off, int port at off2 */
	SCHEMA_RESERVED, /* accepted only as an empty list (a key of a later version) */
	SCHEMA_INLINE,   /* no key: the keys of sub are keys of this object too, decoded
			    into the struct at off (a request that embeds a settings struct) */
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
/* Format e for the user: "origin:line: msg", "origin: msg" or "msg". The
 * line is that of e->path in root (schema_line), when root came from YAML. */
void schema_report(const struct schema_err *e, struct json_object *root, const char *origin,
		   char *err, size_t errlen);

#endif
