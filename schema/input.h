/* schema/input: getting a document's text and its JSON tree. YAML is in
 * schema/yaml.h.
 *
 * Functions return 0 or -errno (-EINVAL with the reason in err, -ENOMEM,
 * -errno of open/read) and leave errno alone.
 */
#ifndef FERRY_SCHEMA_INPUT_H
#define FERRY_SCHEMA_INPUT_H

#include <stddef.h>

struct json_object;

/* Read a whole regular file of at most SCHEMA_MAX_FILE bytes into a
 * NUL-terminated malloc'd buffer; errors as "path: reason". */
#define SCHEMA_MAX_FILE (1024 * 1024)
int schema_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);
/* Parse JSON text (exactly one value, trailing blanks allowed); errors as
 * "origin:line: invalid JSON: ...". */
int schema_json_parse(const char *text, size_t len, const char *origin,
		      struct json_object **out, char *err, size_t errlen);

#endif
