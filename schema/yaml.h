/* schema/yaml: YAML text to a json-c tree whose nodes remember their source
 * line, so that the schema decoder and the checks after it can say
 * "file:line: key ...".
 *
 * Functions return 0 or -errno (-EINVAL with the reason in err, -ENOMEM)
 * and leave errno alone.
 */
#ifndef FERRY_SCHEMA_YAML_H
#define FERRY_SCHEMA_YAML_H

#include <stddef.h>

struct json_object;

/* Parse one YAML document into a json-c tree. Plain scalars resolve like
 * YAML 1.2's core schema (null, true/false, decimal integers; everything
 * else, including yes/no and floats, stays a string); duplicate keys,
 * non-scalar keys and multi-document streams are errors. Errors read
 * "origin:line: ..."; origin NULL is "<input>". */
int schema_yaml_to_json(const char *text, size_t len, const char *origin,
			struct json_object **out, char *err, size_t errlen);
/* Source line of the node at path ("disks[1].type"), or of its deepest
 * existing ancestor; 0 when the tree did not come from YAML. */
int schema_line(struct json_object *root, const char *path);

/* For the decoder (schema/schema.c); all are 0/NULL for nodes not built by
 * schema_yaml_to_json. */
/* Line of node o. */
int schema_node_line(struct json_object *o);
/* The text a plain scalar was written as, when it resolved to a number or a
 * boolean (so a string field given `007` keeps "007"); NULL otherwise. */
const char *schema_node_raw(struct json_object *o);
/* Line of child (a member named key of object o, or an element of array o
 * when key is NULL): its own line, else the line of its key (a null value
 * has no node of its own), else o's line. */
int schema_child_line(struct json_object *o, const char *key, struct json_object *child);

#endif
