#include "engine/vmspec.h"
#include "util/uuid.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <yaml.h>

/* ========================================================================
 * YAML -> json-c, remembering lines
 * ====================================================================== */

/* Guards against alias bombs ("billion laughs") and stack exhaustion: a spec
 * or config has a few hundred nodes at most. */
#define Y2J_MAX_NODES 100000
#define Y2J_MAX_DEPTH 64

#define META_MAGIC 0x66657279u /* "fery" */

/* Attached as json-c userdata to every object built from YAML. raw keeps a
 * plain scalar's text when it resolved to a number or boolean, so a string
 * field given `007` keeps "007". key_lines[i] is the line of the i-th key of
 * a mapping (json-c keeps insertion order): a null value has no object of its
 * own to carry a line. */
struct node_meta {
	unsigned magic;
	int line;
	char *raw;
	int *key_lines;
	size_t n_keys;
};

static void meta_delete(struct json_object *o, void *ud)
{
	struct node_meta *m = ud;

	(void)o;
	free(m->raw);
	free(m->key_lines);
	free(m);
}

/* Only trees built by schema_yaml_to_json carry our userdata. json-c itself
 * stores a string as userdata of doubles parsed from text, so doubles are
 * never asked (we never create doubles from YAML). */
static struct node_meta *meta_of(struct json_object *o)
{
	struct node_meta *m;

	if (!o || json_object_get_type(o) == json_type_double)
		return NULL;
	m = json_object_get_userdata(o);
	return m && m->magic == META_MAGIC ? m : NULL;
}

static int meta_attach(struct json_object *o, int line, const char *raw)
{
	struct node_meta *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->magic = META_MAGIC;
	m->line = line;
	if (raw && !(m->raw = strdup(raw))) {
		free(m);
		return -ENOMEM;
	}
	json_object_set_userdata(o, m, meta_delete);
	return 0;
}

struct y2j {
	yaml_document_t *doc;
	const char *origin;
	char *err;
	size_t errlen;
	unsigned nodes;
};

static int y2j_fail(struct y2j *c, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int y2j_fail(struct y2j *c, int line, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%d: %s", c->origin, line, msg);
	return -EINVAL;
}

static int is_plain_null(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* YAML 1.2 core schema for plain scalars, minus floats/octal/hex: those stay
 * strings and an integer field reports them as "must be an integer". yes/no
 * deliberately stay strings (the "Norway problem" of YAML 1.1). */
static int y2j_scalar(struct y2j *c, yaml_node_t *n, struct json_object **out)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	int line = (int)n->start_mark.line + 1;
	struct json_object *o = NULL;
	const char *raw = NULL;
	int rc;

	*out = NULL;
	if (strlen(s) != len)
		return y2j_fail(c, line, "NUL byte in a scalar");
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		const char *p = s + (*s == '-' || *s == '+');

		if (is_plain_null(s))
			return 0; /* json null: absent value */
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") ||
		    !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
			o = json_object_new_boolean(*s == 't' || *s == 'T');
			raw = s;
		} else if (*p && strspn(p, "0123456789") == strlen(p)) {
			long long v;

			errno = 0;
			v = strtoll(s, NULL, 10);
			if (errno == ERANGE) {
				o = json_object_new_string_len(s, (int)len);
			} else {
				o = json_object_new_int64(v);
				raw = s;
			}
		}
	}
	if (!o && !raw)
		o = json_object_new_string_len(s, (int)len);
	if (!o)
		return -ENOMEM;
	rc = meta_attach(o, line, raw);
	if (rc) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

static int y2j_node(struct y2j *c, yaml_node_t *n, int depth, struct json_object **out);

static int y2j_sequence(struct y2j *c, yaml_node_t *n, int depth, struct json_object **out)
{
	struct json_object *arr, *child = NULL;
	yaml_node_item_t *it;
	int rc;

	*out = NULL;
	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	rc = meta_attach(arr, (int)n->start_mark.line + 1, NULL);
	if (rc)
		goto fail;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		rc = y2j_node(c, yaml_document_get_node(c->doc, *it), depth + 1, &child);
		if (rc)
			goto fail;
		if (json_object_array_add(arr, child)) {
			json_object_put(child);
			rc = -ENOMEM;
			goto fail;
		}
	}
	*out = arr;
	return 0;
fail:
	json_object_put(arr);
	return rc;
}

static int y2j_mapping(struct y2j *c, yaml_node_t *n, int depth, struct json_object **out)
{
	struct json_object *obj, *child = NULL;
	struct node_meta *m;
	yaml_node_pair_t *p;
	size_t npairs;
	int rc;

	*out = NULL;
	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	rc = meta_attach(obj, (int)n->start_mark.line + 1, NULL);
	if (rc)
		goto fail;
	m = meta_of(obj);
	npairs = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	m->key_lines = calloc(npairs ? npairs : 1, sizeof(int));
	if (!m->key_lines) {
		rc = -ENOMEM;
		goto fail;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		int kline = (int)k->start_mark.line + 1;
		const char *key;

		if (k->type != YAML_SCALAR_NODE) {
			rc = y2j_fail(c, kline, "mapping keys must be plain strings");
			goto fail;
		}
		key = (const char *)k->data.scalar.value;
		if (strlen(key) != k->data.scalar.length) {
			rc = y2j_fail(c, kline, "NUL byte in a key");
			goto fail;
		}
		/* libyaml accepts duplicate keys; the later one would silently
		 * win in json-c. Refuse: one of the two is surely a mistake. */
		if (json_object_object_get_ex(obj, key, NULL)) {
			rc = y2j_fail(c, kline, "duplicate key \"%s\"", key);
			goto fail;
		}
		rc = y2j_node(c, yaml_document_get_node(c->doc, p->value), depth + 1, &child);
		if (rc)
			goto fail;
		if (json_object_object_add(obj, key, child)) {
			json_object_put(child);
			rc = -ENOMEM;
			goto fail;
		}
		m->key_lines[m->n_keys++] = kline;
	}
	*out = obj;
	return 0;
fail:
	json_object_put(obj);
	return rc;
}

static int y2j_node(struct y2j *c, yaml_node_t *n, int depth, struct json_object **out)
{
	*out = NULL;
	if (!n)
		return -EINVAL;
	if (++c->nodes > Y2J_MAX_NODES || depth > Y2J_MAX_DEPTH)
		return y2j_fail(c, (int)n->start_mark.line + 1,
				"document too large or too deeply nested");
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return y2j_scalar(c, n, out);
	case YAML_SEQUENCE_NODE:
		return y2j_sequence(c, n, depth, out);
	case YAML_MAPPING_NODE:
		return y2j_mapping(c, n, depth, out);
	default:
		return y2j_fail(c, (int)n->start_mark.line + 1, "unsupported YAML node");
	}
}

int schema_yaml_to_json(const char *text, size_t len, const char *origin,
			struct json_object **out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int have_doc = 0, have_extra = 0;
	struct y2j c = {.doc = &doc, .origin = origin ? origin : "<input>", .err = err,
			.errlen = errlen};
	yaml_node_t *root;
	int rc;

	*out = NULL;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		/* problem_mark is where libyaml noticed, context_mark what it was
		 * inside of; the first is what an editor should jump to. */
		rc = y2j_fail(&c, (int)parser.problem_mark.line + 1, "invalid YAML: %s%s%s",
			      parser.problem ? parser.problem : "parse error",
			      parser.context ? " " : "", parser.context ? parser.context : "");
		goto out;
	}
	have_doc = 1;
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		rc = y2j_fail(&c, 1, "empty document");
		goto out;
	}
	/* A second document would be ignored by a single load: refuse it
	 * rather than apply half of what the author wrote. */
	if (!yaml_parser_load(&parser, &extra)) {
		rc = y2j_fail(&c, (int)parser.problem_mark.line + 1, "invalid YAML: %s",
			      parser.problem ? parser.problem : "parse error");
		goto out;
	}
	have_extra = 1;
	if (yaml_document_get_root_node(&extra)) {
		rc = y2j_fail(&c, (int)yaml_document_get_root_node(&extra)->start_mark.line + 1,
			      "more than one YAML document");
		goto out;
	}
	rc = y2j_node(&c, root, 0, out);
out:
	if (have_extra)
		yaml_document_delete(&extra);
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* Line of child `key` (or array index idx when key is NULL) of o. */
static int child_line(struct json_object *o, const char *key, struct json_object *child)
{
	struct node_meta *m = meta_of(child), *pm = meta_of(o);
	size_t i = 0;

	if (m)
		return m->line;
	if (!pm)
		return 0;
	if (key && json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			(void)v;
			if (!strcmp(k, key))
				return i < pm->n_keys ? pm->key_lines[i] : pm->line;
			i++;
		}
	}
	return pm->line;
}

int schema_line(struct json_object *root, const char *path)
{
	struct json_object *cur = root;
	struct node_meta *m = meta_of(root);
	int line = m ? m->line : 0;
	const char *p = path;

	while (p && *p && cur) {
		char key[128];
		size_t n = strcspn(p, ".[");
		struct json_object *next = NULL;
		int l;

		if (*p == '[') {
			size_t idx = strtoul(p + 1, NULL, 10);
			const char *close = strchr(p, ']');

			p = close ? close + 1 : p + strlen(p);
			if (!json_object_is_type(cur, json_type_array) ||
			    idx >= json_object_array_length(cur))
				break;
			next = json_object_array_get_idx(cur, idx);
			l = child_line(cur, NULL, next);
		} else {
			if (n >= sizeof(key))
				break;
			memcpy(key, p, n);
			key[n] = '\0';
			p += n;
			if (!json_object_is_type(cur, json_type_object) ||
			    !json_object_object_get_ex(cur, key, &next))
				break;
			l = child_line(cur, key, next);
		}
		if (l > 0)
			line = l;
		if (*p == '.')
			p++;
		cur = next;
	}
	return line;
}

int schema_fail(struct schema_err *e, const char *path, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void schema_report(const struct schema_err *e, struct json_object *root, const char *origin,
		   char *err, size_t errlen)
{
	int line = root ? schema_line(root, e->path) : 0;

	if (origin && line > 0)
		snprintf(err, errlen, "%s:%d: %s", origin, line, e->msg);
	else if (origin)
		snprintf(err, errlen, "%s: %s", origin, e->msg);
	else
		snprintf(err, errlen, "%s", e->msg);
}

/* ========================================================================
 * schema: decode
 * ====================================================================== */

struct dec {
	const char *origin;
	char *err;
	size_t errlen;
	char path[256]; /* key path of the value being decoded */
};

static int dec_fail(struct dec *d, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int dec_fail(struct dec *d, int line, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->origin && line > 0)
		snprintf(d->err, d->errlen, "%s:%d: %s", d->origin, line, msg);
	else if (d->origin)
		snprintf(d->err, d->errlen, "%s: %s", d->origin, msg);
	else
		snprintf(d->err, d->errlen, "%s", msg);
	return -EINVAL;
}

/* Append ".key" or "[i]" to the path; returns the old length to restore. */
static size_t path_push(struct dec *d, const char *key, size_t idx)
{
	size_t old = strlen(d->path);

	if (key)
		snprintf(d->path + old, sizeof(d->path) - old, "%s%s", old ? "." : "", key);
	else
		snprintf(d->path + old, sizeof(d->path) - old, "[%zu]", idx);
	return old;
}

static const char *type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_int: return "an integer";
	case json_type_double: return "a number";
	case json_type_string: return "a string";
	case json_type_array: return "a list";
	default: return "a mapping";
	}
}

/* A scalar as text: strings as they are, numbers and booleans with the text
 * the author wrote when it came from YAML. NULL for lists and mappings. */
static const char *scalar_text(struct json_object *v, size_t *len)
{
	struct node_meta *m;

	if (!v) {
		*len = 0;
		return "";
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		*len = (size_t)json_object_get_string_len(v);
		return json_object_get_string(v);
	case json_type_boolean:
	case json_type_int:
	case json_type_double:
		m = meta_of(v);
		if (m && m->raw) {
			*len = strlen(m->raw);
			return m->raw;
		}
		*len = strlen(json_object_get_string(v));
		return json_object_get_string(v);
	default:
		return NULL;
	}
}

static int dec_string(struct dec *d, int line, struct json_object *v, char **out)
{
	size_t len;
	const char *s = scalar_text(v, &len);

	*out = NULL;
	if (!s)
		return dec_fail(d, line, "%s must be a string, not %s", d->path, type_name(v));
	if (strlen(s) != len)
		return dec_fail(d, line, "%s contains a NUL byte", d->path);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static void kv_free(struct ferry_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static void strlist_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

#define AT(base, off, type) ((type *)((char *)(base) + (off)))
#define CAT(base, off, type) ((const type *)((const char *)(base) + (off)))

static int dec_fields(struct dec *d, struct json_object *obj,
		      const struct schema_field *fields, void *target);

static int dec_kv(struct dec *d, int line, struct json_object *v,
		  const struct schema_field *f, void *target)
{
	struct ferry_kv *kv = NULL;
	size_t n = 0, i = 0;
	int rc = 0;

	if (v && !json_object_is_type(v, json_type_object))
		return dec_fail(d, line, "%s must be a mapping, not %s", d->path, type_name(v));
	n = v ? (size_t)json_object_object_length(v) : 0;
	kv = calloc(n ? n : 1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	if (v) {
		json_object_object_foreach(v, k, val) {
			size_t old = path_push(d, k, 0);

			rc = dec_string(d, child_line(v, k, val), val, &kv[i].value);
			d->path[old] = '\0';
			if (rc)
				goto fail;
			if (!(kv[i].key = strdup(k))) {
				rc = -ENOMEM;
				goto fail;
			}
			i++;
		}
	}
	kv_free(*AT(target, f->off, struct ferry_kv *), *AT(target, f->off2, size_t));
	*AT(target, f->off, struct ferry_kv *) = kv;
	*AT(target, f->off2, size_t) = n;
	return 0;
fail:
	kv_free(kv, n);
	return rc;
}

static int dec_strlist(struct dec *d, int line, struct json_object *v,
		       const struct schema_field *f, void *target)
{
	char **l = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (v && !json_object_is_type(v, json_type_array))
		return dec_fail(d, line, "%s must be a list, not %s", d->path, type_name(v));
	n = v ? json_object_array_length(v) : 0;
	l = calloc(n ? n : 1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		size_t old = path_push(d, NULL, i);
		int eline = child_line(v, NULL, e);

		if (!e)
			rc = dec_fail(d, eline, "%s must be a string, not null", d->path);
		else
			rc = dec_string(d, eline, e, &l[i]);
		d->path[old] = '\0';
		if (rc)
			goto fail;
	}
	strlist_free(*AT(target, f->off, char **), *AT(target, f->off2, size_t));
	*AT(target, f->off, char **) = l;
	*AT(target, f->off2, size_t) = n;
	return 0;
fail:
	strlist_free(l, n);
	return rc;
}

static int dec_objlist(struct dec *d, int line, struct json_object *v,
		       const struct schema_field *f, void *target)
{
	char *arr = NULL;
	size_t n = 0, i, done = 0;
	int rc = 0;

	if (v && !json_object_is_type(v, json_type_array))
		return dec_fail(d, line, "%s must be a list, not %s", d->path, type_name(v));
	n = v ? json_object_array_length(v) : 0;
	arr = calloc(n ? n : 1, f->size);
	if (!arr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		size_t old = path_push(d, NULL, i);
		void *elem = arr + i * f->size;

		if (f->init)
			f->init(elem);
		done = i + 1;
		if (!e || !json_object_is_type(e, json_type_object))
			rc = dec_fail(d, e ? child_line(v, NULL, e) : line,
				      "%s must be a mapping, not %s", d->path,
				      e ? type_name(e) : "null");
		else
			rc = dec_fields(d, e, f->sub, elem);
		d->path[old] = '\0';
		if (rc)
			goto fail;
	}
	/* Replace the old list only once the new one decoded completely. */
	{
		char *old_arr = *AT(target, f->off, char *);
		size_t old_n = *AT(target, f->off2, size_t);

		for (i = 0; i < old_n; i++)
			schema_free(f->sub, old_arr + i * f->size);
		free(old_arr);
	}
	*AT(target, f->off, char *) = arr;
	*AT(target, f->off2, size_t) = n;
	return 0;
fail:
	for (i = 0; i < done; i++)
		schema_free(f->sub, arr + i * f->size);
	free(arr);
	return rc;
}

static int dec_value(struct dec *d, int line, struct json_object *v,
		     const struct schema_field *f, void *target)
{
	char *s = NULL;
	int rc = 0;

	switch (f->kind) {
	case SCHEMA_STR:
		rc = dec_string(d, line, v, &s);
		if (rc)
			break;
		if (strlen(s) >= f->size)
			rc = dec_fail(d, line, "%s is too long (max %zu characters)", d->path,
				      f->size - 1);
		else
			memcpy(AT(target, f->off, char), s, strlen(s) + 1);
		break;
	case SCHEMA_INT:
		if (!v)
			break; /* `key:` with no value: keep the default */
		if (!json_object_is_type(v, json_type_int))
			rc = dec_fail(d, line, "%s must be an integer, not %s", d->path,
				      type_name(v));
		else if (json_object_get_int64(v) < INT_MIN || json_object_get_int64(v) > INT_MAX)
			rc = dec_fail(d, line, "%s is out of range", d->path);
		else
			*AT(target, f->off, int) = (int)json_object_get_int64(v);
		break;
	case SCHEMA_BOOL:
		if (!v)
			break;
		if (!json_object_is_type(v, json_type_boolean))
			rc = dec_fail(d, line, "%s must be true or false, not %s", d->path,
				      type_name(v));
		else
			*AT(target, f->off, int) = json_object_get_boolean(v) ? 1 : 0;
		break;
	case SCHEMA_KV:
		rc = dec_kv(d, line, v, f, target);
		break;
	case SCHEMA_STRLIST:
		rc = dec_strlist(d, line, v, f, target);
		break;
	case SCHEMA_OBJ:
		if (!v)
			break;
		if (!json_object_is_type(v, json_type_object))
			rc = dec_fail(d, line, "%s must be a mapping, not %s", d->path,
				      type_name(v));
		else
			rc = dec_fields(d, v, f->sub, target);
		break;
	case SCHEMA_OBJLIST:
		rc = dec_objlist(d, line, v, f, target);
		break;
	case SCHEMA_HOSTPORT:
		if (!v)
			break;
		if (!json_object_is_type(v, json_type_string)) {
			rc = dec_fail(d, line, "%s must be a string \"host:port\", not %s", d->path,
				      type_name(v));
			break;
		}
		if (schema_parse_hostport(json_object_get_string(v), AT(target, f->off, char),
					  f->size, AT(target, f->off2, int)))
			rc = dec_fail(d, line,
				      "%s must be host:port with a port in 1..65535 (got \"%s\")",
				      d->path, json_object_get_string(v));
		break;
	case SCHEMA_RESERVED:
		if (v && !(json_object_is_type(v, json_type_array) &&
			   json_object_array_length(v) == 0))
			rc = dec_fail(d, line, "%s is not supported yet (must be empty)", d->path);
		break;
	case SCHEMA_END:
		break;
	}
	free(s);
	return rc;
}

static int dec_fields(struct dec *d, struct json_object *obj,
		      const struct schema_field *fields, void *target)
{
	/* Walk the document, not the table: the first error reported is then
	 * the first one in the file. */
	json_object_object_foreach(obj, key, val) {
		const struct schema_field *f;
		size_t old = path_push(d, key, 0);
		int line = child_line(obj, key, val);
		int rc;

		for (f = fields; f->kind != SCHEMA_END; f++)
			if (!strcmp(f->key, key))
				break;
		if (f->kind == SCHEMA_END)
			rc = dec_fail(d, line, "unknown key \"%s\"", d->path);
		else
			rc = dec_value(d, line, val, f, target);
		d->path[old] = '\0';
		if (rc)
			return rc;
	}
	return 0;
}

int schema_decode(struct json_object *obj, const struct schema_field *fields, void *target,
		  const char *origin, char *err, size_t errlen)
{
	struct dec d = {.origin = origin, .err = err, .errlen = errlen};
	struct node_meta *m = meta_of(obj);

	if (!obj || !json_object_is_type(obj, json_type_object))
		return dec_fail(&d, m ? m->line : 0, "expected a mapping, not %s",
				obj ? type_name(obj) : "null");
	return dec_fields(&d, obj, fields, target);
}

/* ========================================================================
 * schema: encode, copy, free
 * ====================================================================== */

static int enc_fields(const struct schema_field *fields, const void *src, struct json_object *o);

static struct json_object *enc_value(const struct schema_field *f, const void *src, int *skip)
{
	struct json_object *v = NULL;
	size_t i, n;

	*skip = 0;
	switch (f->kind) {
	case SCHEMA_STR:
		return json_object_new_string(CAT(src, f->off, char));
	case SCHEMA_INT:
	case SCHEMA_BOOL:
		if ((f->flags & SCHEMA_F_UNSET_OMIT) && *CAT(src, f->off, int) == FERRY_UNSET) {
			*skip = 1;
			return NULL;
		}
		if (f->kind == SCHEMA_INT)
			return json_object_new_int(*CAT(src, f->off, int));
		return json_object_new_boolean(*CAT(src, f->off, int) != 0);
	case SCHEMA_KV: {
		const struct ferry_kv *kv = *CAT(src, f->off, struct ferry_kv *);

		n = *CAT(src, f->off2, size_t);
		if (!(v = json_object_new_object()))
			return NULL;
		for (i = 0; i < n; i++) {
			struct json_object *s = json_object_new_string(kv[i].value);

			if (!s || json_object_object_add(v, kv[i].key, s)) {
				json_object_put(s);
				json_object_put(v);
				return NULL;
			}
		}
		return v;
	}
	case SCHEMA_STRLIST: {
		char *const *l = *(char **const *)((const char *)src + f->off);

		n = *CAT(src, f->off2, size_t);
		if (!(v = json_object_new_array()))
			return NULL;
		for (i = 0; i < n; i++) {
			struct json_object *s = json_object_new_string(l[i]);

			if (!s || json_object_array_add(v, s)) {
				json_object_put(s);
				json_object_put(v);
				return NULL;
			}
		}
		return v;
	}
	case SCHEMA_OBJ:
		if (!(v = json_object_new_object()))
			return NULL;
		if (enc_fields(f->sub, src, v)) {
			json_object_put(v);
			return NULL;
		}
		return v;
	case SCHEMA_OBJLIST: {
		const char *arr = *CAT(src, f->off, char *);

		n = *CAT(src, f->off2, size_t);
		if (!(v = json_object_new_array()))
			return NULL;
		for (i = 0; i < n; i++) {
			struct json_object *e = json_object_new_object();

			if (!e || enc_fields(f->sub, arr + i * f->size, e) ||
			    json_object_array_add(v, e)) {
				json_object_put(e);
				json_object_put(v);
				return NULL;
			}
		}
		return v;
	}
	case SCHEMA_HOSTPORT: {
		const char *h = CAT(src, f->off, char);
		char buf[300];

		snprintf(buf, sizeof(buf), strchr(h, ':') ? "[%s]:%d" : "%s:%d", h,
			 *CAT(src, f->off2, int));
		return json_object_new_string(buf);
	}
	case SCHEMA_RESERVED:
		return json_object_new_array();
	case SCHEMA_END:
		break;
	}
	*skip = 1;
	return NULL;
}

static int enc_fields(const struct schema_field *fields, const void *src, struct json_object *o)
{
	for (const struct schema_field *f = fields; f->kind != SCHEMA_END; f++) {
		int skip;
		struct json_object *v = enc_value(f, src, &skip);

		if (skip)
			continue;
		if (!v || json_object_object_add(o, f->key, v)) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

struct json_object *schema_encode(const struct schema_field *fields, const void *target)
{
	struct json_object *o = json_object_new_object();

	if (o && enc_fields(fields, target, o)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

void schema_free(const struct schema_field *fields, void *target)
{
	for (const struct schema_field *f = fields; f->kind != SCHEMA_END; f++) {
		size_t *n = AT(target, f->off2, size_t);

		switch (f->kind) {
		case SCHEMA_KV:
			kv_free(*AT(target, f->off, struct ferry_kv *), *n);
			*AT(target, f->off, struct ferry_kv *) = NULL;
			*n = 0;
			break;
		case SCHEMA_STRLIST:
			strlist_free(*AT(target, f->off, char **), *n);
			*AT(target, f->off, char **) = NULL;
			*n = 0;
			break;
		case SCHEMA_OBJ:
			schema_free(f->sub, target);
			break;
		case SCHEMA_OBJLIST: {
			char *arr = *AT(target, f->off, char *);

			for (size_t i = 0; i < *n; i++)
				schema_free(f->sub, arr + i * f->size);
			free(arr);
			*AT(target, f->off, char *) = NULL;
			*n = 0;
			break;
		}
		default:
			break;
		}
	}
}

/* NULL the owned members of a shallow copy so that a failed deep copy can
 * be freed without touching the source's memory. */
static void detach(const struct schema_field *fields, void *t)
{
	for (const struct schema_field *f = fields; f->kind != SCHEMA_END; f++) {
		if (f->kind == SCHEMA_KV || f->kind == SCHEMA_STRLIST || f->kind == SCHEMA_OBJLIST) {
			*AT(t, f->off, void *) = NULL;
			*AT(t, f->off2, size_t) = 0;
		} else if (f->kind == SCHEMA_OBJ) {
			detach(f->sub, t);
		}
	}
}

static int copy_fields(const struct schema_field *fields, void *dst, const void *src)
{
	for (const struct schema_field *f = fields; f->kind != SCHEMA_END; f++) {
		size_t i, n = *CAT(src, f->off2, size_t);
		int rc;

		switch (f->kind) {
		case SCHEMA_KV: {
			const struct ferry_kv *s = *CAT(src, f->off, struct ferry_kv *);
			struct ferry_kv *d = calloc(n ? n : 1, sizeof(*d));

			if (!d)
				return -ENOMEM;
			*AT(dst, f->off, struct ferry_kv *) = d;
			*AT(dst, f->off2, size_t) = n;
			for (i = 0; i < n; i++)
				if (!(d[i].key = strdup(s[i].key)) ||
				    !(d[i].value = strdup(s[i].value)))
					return -ENOMEM;
			break;
		}
		case SCHEMA_STRLIST: {
			char *const *s = *(char **const *)((const char *)src + f->off);
			char **d = calloc(n ? n : 1, sizeof(*d));

			if (!d)
				return -ENOMEM;
			*AT(dst, f->off, char **) = d;
			*AT(dst, f->off2, size_t) = n;
			for (i = 0; i < n; i++)
				if (!(d[i] = strdup(s[i])))
					return -ENOMEM;
			break;
		}
		case SCHEMA_OBJ:
			rc = copy_fields(f->sub, dst, src);
			if (rc)
				return rc;
			break;
		case SCHEMA_OBJLIST: {
			const char *s = *CAT(src, f->off, char *);
			char *d = calloc(n ? n : 1, f->size);

			if (!d)
				return -ENOMEM;
			if (n)
				memcpy(d, s, n * f->size);
			for (i = 0; i < n; i++)
				detach(f->sub, d + i * f->size);
			*AT(dst, f->off, char *) = d;
			*AT(dst, f->off2, size_t) = n;
			for (i = 0; i < n; i++) {
				rc = copy_fields(f->sub, d + i * f->size, s + i * f->size);
				if (rc)
					return rc;
			}
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

int schema_copy(const struct schema_field *fields, void *dst, const void *src)
{
	int rc;

	detach(fields, dst);
	rc = copy_fields(fields, dst, src);
	if (rc)
		schema_free(fields, dst);
	return rc;
}

/* ========================================================================
 * schema: shared checks
 * ====================================================================== */

int schema_check_name(struct schema_err *e, const char *path, const char *v, size_t max)
{
	size_t n = strlen(v);

	if (!n)
		return schema_fail(e, path, "%s is required", path);
	if (n > max || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return schema_fail(e, path,
				   "%s must be 1..%zu characters of a-z, 0-9 and '-' (got \"%s\")",
				   path, max, v);
	return 0;
}

int schema_check_labels(struct schema_err *e, const char *path, const struct ferry_kv *kv,
			size_t n)
{
	static const char alnum[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char p[192];

	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(kv[i].key), vl = strlen(kv[i].value);

		snprintf(p, sizeof(p), "%s.%s", path, kv[i].key);
		/* Kubernetes label syntax: the node selectors people copy from
		 * there keep working, and values stay safe in key=value logs. */
		if (!kl || kl > 253 || strspn(kv[i].key, alnum) == 0 ||
		    strspn(kv[i].key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789._/-") != kl)
			return schema_fail(e, p,
					   "%s: label key \"%s\" must be 1..253 characters of "
					   "A-Z, a-z, 0-9, '.', '_', '/', '-' starting with a letter or digit",
					   path, kv[i].key);
		if (vl > 63 ||
		    strspn(kv[i].value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789._-") != vl)
			return schema_fail(e, p,
					   "%s.%s: label value \"%s\" must be 0..63 characters of "
					   "A-Z, a-z, 0-9, '.', '_', '-'",
					   path, kv[i].key, kv[i].value);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(kv[j].key, kv[i].key))
				return schema_fail(e, p, "%s: duplicate key \"%s\"", path,
						   kv[i].key);
	}
	return 0;
}

int schema_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *h, *colon, *end;
	size_t hl;
	char *ep;
	long p;

	if (*s == '[') {
		/* IPv6 literal: the brackets keep its colons apart from the port. */
		h = s + 1;
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		h = s;
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (!hl || hl >= hostlen || memchr(h, ',', hl) || memchr(h, ' ', hl))
		return -EINVAL;
	if (!isdigit((unsigned char)colon[1]))
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &ep, 10);
	if (*ep || errno || p < 1 || p > 65535)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

int ferry_migration_check(struct schema_err *e, const char *path,
			  const struct ferry_migration_defaults *m, int allow_unset)
{
	static const struct {
		const char *key;
		size_t off;
		int min, max;
	} r[] = {
		{"progress_timeout_s",
		 offsetof(struct ferry_migration_defaults, progress_timeout_s), 1, 86400},
		{"completion_timeout_s_per_gib",
		 offsetof(struct ferry_migration_defaults, completion_timeout_s_per_gib), 1, 86400},
		{"max_bandwidth_mibps",
		 offsetof(struct ferry_migration_defaults, max_bandwidth_mibps), 0, 1048576},
		/* QEMU refuses a downtime-limit above 2000 s. */
		{"downtime_limit_ms",
		 offsetof(struct ferry_migration_defaults, downtime_limit_ms), 1, 2000000},
		{"compress", offsetof(struct ferry_migration_defaults, compress), 0, 1},
		/* QEMU's multifd-channels is a uint8; more than 64 links between two
		 * agents buys nothing. */
		{"multifd_channels",
		 offsetof(struct ferry_migration_defaults, multifd_channels), 0, 64},
		{"auto_converge", offsetof(struct ferry_migration_defaults, auto_converge), 0, 1},
		{"post_copy", offsetof(struct ferry_migration_defaults, post_copy), 0, 1},
		{"downtime_step_ms",
		 offsetof(struct ferry_migration_defaults, downtime_step_ms), 0, 2000000},
		{"downtime_max_ms",
		 offsetof(struct ferry_migration_defaults, downtime_max_ms), 1, 2000000},
		{"escalate_after_s",
		 offsetof(struct ferry_migration_defaults, escalate_after_s), 1, 86400},
	};
	char p[192];

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		int v = *CAT(m, r[i].off, int);

		if (allow_unset && v == FERRY_UNSET)
			continue;
		if (v < r[i].min || v > r[i].max) {
			snprintf(p, sizeof(p), "%s.%s", path, r[i].key);
			return schema_fail(e, p, "%s must be between %d and %d (got %d)", p,
					   r[i].min, r[i].max, v);
		}
	}
	return 0;
}

/* ========================================================================
 * The VM spec
 * ====================================================================== */

#define VOFF(m) offsetof(struct vm_spec, m)
#define DOFF(m) offsetof(struct vm_disk, m)
#define NOFF(m) offsetof(struct vm_nic, m)
#define SZ(t, m) sizeof(((t *)0)->m)

static void disk_init(void *p)
{
	struct vm_disk *d = p;

	/* format stays empty: its default depends on the type (see finish). */
	snprintf(d->type, sizeof(d->type), "disk");
	snprintf(d->storage, sizeof(d->storage), "local");
}

static void nic_init(void *p)
{
	struct vm_nic *n = p;

	snprintf(n->network, sizeof(n->network), "default");
	snprintf(n->binding, sizeof(n->binding), "user");
}

static const struct schema_field disk_fields[] = {
	{"name", SCHEMA_STR, DOFF(name), SZ(struct vm_disk, name), 0, NULL, NULL, 0},
	{"path", SCHEMA_STR, DOFF(path), SZ(struct vm_disk, path), 0, NULL, NULL, 0},
	{"format", SCHEMA_STR, DOFF(format), SZ(struct vm_disk, format), 0, NULL, NULL, 0},
	{"type", SCHEMA_STR, DOFF(type), SZ(struct vm_disk, type), 0, NULL, NULL, 0},
	{"storage", SCHEMA_STR, DOFF(storage), SZ(struct vm_disk, storage), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field nic_fields[] = {
	{"name", SCHEMA_STR, NOFF(name), SZ(struct vm_nic, name), 0, NULL, NULL, 0},
	{"network", SCHEMA_STR, NOFF(network), SZ(struct vm_nic, network), 0, NULL, NULL, 0},
	{"binding", SCHEMA_STR, NOFF(binding), SZ(struct vm_nic, binding), 0, NULL, NULL, 0},
	{"management", SCHEMA_BOOL, NOFF(management), 0, 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field vm_mig_fields[] = {
	{"progress_timeout_s", SCHEMA_INT, VOFF(mig.progress_timeout_s), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"completion_timeout_s_per_gib", SCHEMA_INT, VOFF(mig.completion_timeout_s_per_gib), 0,
	 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"max_bandwidth_mibps", SCHEMA_INT, VOFF(mig.max_bandwidth_mibps), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"downtime_limit_ms", SCHEMA_INT, VOFF(mig.downtime_limit_ms), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"compress", SCHEMA_BOOL, VOFF(mig.compress), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"multifd_channels", SCHEMA_INT, VOFF(mig.multifd_channels), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"auto_converge", SCHEMA_BOOL, VOFF(mig.auto_converge), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"post_copy", SCHEMA_BOOL, VOFF(mig.post_copy), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"downtime_step_ms", SCHEMA_INT, VOFF(mig.downtime_step_ms), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"downtime_max_ms", SCHEMA_INT, VOFF(mig.downtime_max_ms), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
	{"escalate_after_s", SCHEMA_INT, VOFF(mig.escalate_after_s), 0, 0, NULL, NULL,
	 SCHEMA_F_UNSET_OMIT},
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
	{"kernel", SCHEMA_STR, VOFF(kernel), SZ(struct vm_spec, kernel), 0, NULL, NULL, 0},
	{"append", SCHEMA_STR, VOFF(append), SZ(struct vm_spec, append), 0, NULL, NULL, 0},
	{"serial", SCHEMA_BOOL, VOFF(serial), 0, 0, NULL, NULL, 0},
	{"labels", SCHEMA_KV, VOFF(labels), 0, VOFF(n_labels), NULL, NULL, 0},
	{"node_selector", SCHEMA_KV, VOFF(node_selector), 0, VOFF(n_node_selector), NULL, NULL,
	 0},
	{"disks", SCHEMA_OBJLIST, VOFF(disks), sizeof(struct vm_disk), VOFF(n_disks), disk_fields,
	 disk_init, 0},
	{"nics", SCHEMA_OBJLIST, VOFF(nics), sizeof(struct vm_nic), VOFF(n_nics), nic_fields,
	 nic_init, 0},
	{"migration", SCHEMA_OBJ, 0, 0, 0, vm_mig_fields, NULL, 0},
	{0},
};

static void spec_defaults(struct vm_spec *s)
{
	s->memory_mib = 1024;
	s->vcpus = 1;
	snprintf(s->machine, sizeof(s->machine), "pc");
	snprintf(s->cpu_model, sizeof(s->cpu_model), "qemu64");
	s->mig.progress_timeout_s = FERRY_UNSET;
	s->mig.completion_timeout_s_per_gib = FERRY_UNSET;
	s->mig.max_bandwidth_mibps = FERRY_UNSET;
	s->mig.downtime_limit_ms = FERRY_UNSET;
	s->mig.compress = FERRY_UNSET;
	s->mig.multifd_channels = FERRY_UNSET;
	s->mig.auto_converge = FERRY_UNSET;
	s->mig.post_copy = FERRY_UNSET;
	s->mig.downtime_step_ms = FERRY_UNSET;
	s->mig.downtime_max_ms = FERRY_UNSET;
	s->mig.escalate_after_s = FERRY_UNSET;
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
	}
	/* QEMU accepts either case; one spelling keeps the JSON form (and the
	 * source/target comparison) canonical. */
	for (char *p = s->uuid; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!s->uuid[0])
		return uuid_v4(s->uuid);
	return 0;
}

/* Machine families ferry knows how to lay out: their IDE buses differ. */
static int machine_family(const char *m)
{
	if (!strcmp(m, "pc") || !strncmp(m, "pc-i440fx-", 10))
		return 'p';
	if (!strcmp(m, "q35") || !strncmp(m, "pc-q35-", 7))
		return 'q';
	return 0;
}

int vmspec_ide_slot(const char *machine, size_t idx, int *bus, int *unit)
{
	switch (machine_family(machine)) {
	case 'p': /* PIIX: ide.0 and ide.1, master and slave each */
		if (idx >= 4)
			return -EINVAL;
		*bus = (int)(idx / 2);
		*unit = (int)(idx % 2);
		return 0;
	case 'q': /* ICH9 AHCI: six ports ide.0..ide.5, one device each */
		if (idx >= 6)
			return -EINVAL;
		*bus = (int)idx;
		*unit = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

static int is_one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(v, *set))
			return 1;
	return 0;
}

static int check_enum(struct schema_err *e, const char *path, const char *v,
		      const char *const *set, const char *list)
{
	if (is_one_of(v, set))
		return 0;
	return schema_fail(e, path, "%s must be one of %s (got \"%s\")", path, list, v);
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

static int check_abs_path(struct schema_err *e, const char *path, const char *v)
{
	if (v[0] != '/')
		return schema_fail(e, path, "%s must be an absolute path (got \"%s\")", path, v);
	return 0;
}

static int check_disks(const struct vm_spec *s, struct schema_err *e)
{
	static const char *const types[] = {"disk", "cdrom", "containerdisk", NULL};
	static const char *const storages[] = {"local", "shared", NULL};
	static const char *const formats[] = {"qcow2", "raw", NULL};
	char p[96];
	int rc, bus, unit;

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
		if ((rc = check_enum(e, p, d->type, types, "disk, cdrom, containerdisk")))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].storage", i);
		if ((rc = check_enum(e, p, d->storage, storages, "local, shared")))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].format", i);
		if ((rc = check_enum(e, p, d->format, formats, "qcow2, raw")))
			return rc;
		snprintf(p, sizeof(p), "disks[%zu].path", i);
		/* An empty cdrom is a drive without media; anything else needs one. */
		if (!d->path[0] && strcmp(d->type, "cdrom"))
			return schema_fail(e, p, "%s is required for a %s", p, d->type);
		if (d->path[0] && (rc = check_abs_path(e, p, d->path)))
			return rc;
		if (vmspec_ide_slot(s->machine, i, &bus, &unit))
			return schema_fail(e, "disks",
					   "disks: machine %s has IDE slots for %d disks, got %zu",
					   s->machine, machine_family(s->machine) == 'q' ? 6 : 4,
					   s->n_disks);
	}
	return 0;
}

static int check_nics(const struct vm_spec *s, struct schema_err *e)
{
	static const char *const bindings[] = {"user", "bridge", "masquerade", NULL};
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
		if ((rc = check_enum(e, p, n->binding, bindings, "user, bridge, masquerade")))
			return rc;
		if (n->management != 0 && n->management != 1)
			return schema_fail(e, p, "nics[%zu].management must be true or false", i);
	}
	return 0;
}

static int spec_check(const struct vm_spec *s, struct schema_err *e)
{
	size_t n;
	int rc;

	if ((rc = schema_check_name(e, "name", s->name, 63)))
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
	if (s->kernel[0]) {
		struct stat st;

		if ((rc = check_abs_path(e, "kernel", s->kernel)))
			return rc;
		if (stat(s->kernel, &st) || access(s->kernel, R_OK))
			return schema_fail(e, "kernel", "kernel %s: %s", s->kernel, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return schema_fail(e, "kernel", "kernel %s is not a regular file", s->kernel);
	} else if (s->append[0]) {
		return schema_fail(e, "append", "append needs a kernel");
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


int schema_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *b = NULL;
	size_t got = 0;
	int fd, rc = 0;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SCHEMA_MAX_FILE) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path,
			 SCHEMA_MAX_FILE);
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			goto out;
		}
		if (n == 0)
			break; /* shrank under us: parse what is there */
		got += (size_t)n;
	}
	b[got] = '\0';
	*buf = b;
	*len = got;
	b = NULL;
out:
	free(b);
	close(fd);
	return rc;
}

int schema_json_parse(const char *text, size_t len, const char *origin, struct json_object **out,
		      char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL;
	enum json_tokener_error jerr;
	size_t end, line = 1;
	int rc = 0;

	*out = NULL;
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!o && jerr == json_tokener_continue)
		jerr = json_tokener_error_parse_eof;
	/* Trailing garbage: anything but blanks up to len (text need not be
	 * NUL-terminated, and a NUL inside it is garbage too). */
	for (size_t i = end; jerr == json_tokener_success && i < len; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
			jerr = json_tokener_error_parse_unexpected;
	if (jerr != json_tokener_success) {
		for (size_t i = 0; i < end && i < len; i++)
			line += text[i] == '\n';
		snprintf(err, errlen, "%s:%zu: invalid JSON: %s", origin, line,
			 json_tokener_error_desc(jerr));
		json_object_put(o);
		rc = -EINVAL;
		goto out;
	}
	*out = o;
out:
	json_tokener_free(tok);
	return rc;
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
