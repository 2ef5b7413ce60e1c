#include "schema/yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <yaml.h>

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

int schema_node_line(struct json_object *o)
{
	struct node_meta *m = meta_of(o);

	return m ? m->line : 0;
}

const char *schema_node_raw(struct json_object *o)
{
	struct node_meta *m = meta_of(o);

	return m ? m->raw : NULL;
}

/* Line of child `key` (or an array element when key is NULL) of o. */
int schema_child_line(struct json_object *o, const char *key, struct json_object *child)
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
			l = schema_child_line(cur, NULL, next);
		} else {
			if (n >= sizeof(key))
				break;
			memcpy(key, p, n);
			key[n] = '\0';
			p += n;
			if (!json_object_is_type(cur, json_type_object) ||
			    !json_object_object_get_ex(cur, key, &next))
				break;
			l = schema_child_line(cur, key, next);
		}
		if (l > 0)
			line = l;
		if (*p == '.')
			p++;
		cur = next;
	}
	return line;
}
