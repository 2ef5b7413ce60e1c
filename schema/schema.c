#include "schema/schema.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "schema/check.h"
#include "schema/yaml.h"

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
	const char *raw;

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
		raw = schema_node_raw(v);
		if (raw) {
			*len = strlen(raw);
			return raw;
		}
		*len = strlen(json_object_get_string(v));
		return json_object_get_string(v);
	default:
		return NULL;
	}
}

/* A string field takes a string. A YAML plain scalar that resolved to a
 * number or a boolean is text the author wrote (`version: 2`) and keeps it;
 * a JSON number or boolean is a typed value, and {"vm": 5} is refused
 * rather than read as the name "5". */
static int dec_string(struct dec *d, int line, struct json_object *v, char **out)
{
	size_t len;
	const char *s = scalar_text(v, &len);

	*out = NULL;
	if (!s || (v && !json_object_is_type(v, json_type_string) && !schema_node_raw(v)))
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

			rc = dec_string(d, schema_child_line(v, k, val), val, &kv[i].value);
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
		int eline = schema_child_line(v, NULL, e);

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
			rc = dec_fail(d, e ? schema_child_line(v, NULL, e) : line,
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
			rc = dec_fail(d, line, "%s is out of range (got %lld)", d->path,
				      (long long)json_object_get_int64(v));
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
			rc = dec_fields(d, v, f->sub, AT(target, f->off, char));
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
	case SCHEMA_INLINE: /* its keys are found through find_field */
	case SCHEMA_END:
		break;
	}
	free(s);
	return rc;
}

/* The field for key in fields or in a SCHEMA_INLINE table of it (at any
 * depth); *base becomes the offset of the struct that field is in. NULL
 * for an unknown key. */
static const struct schema_field *find_field(const struct schema_field *fields, const char *key,
					     size_t *base)
{
	for (const struct schema_field *f = fields; f->kind != SCHEMA_END; f++) {
		if (f->kind == SCHEMA_INLINE) {
			size_t sub = 0;
			const struct schema_field *g = find_field(f->sub, key, &sub);

			if (g) {
				*base += f->off + sub;
				return g;
			}
		} else if (!strcmp(f->key, key)) {
			return f;
		}
	}
	return NULL;
}

static int dec_fields(struct dec *d, struct json_object *obj,
		      const struct schema_field *fields, void *target)
{
	/* Walk the document, not the table: the first error reported is then
	 * the first one in the file. */
	json_object_object_foreach(obj, key, val) {
		size_t base = 0, old = path_push(d, key, 0);
		const struct schema_field *f = find_field(fields, key, &base);
		int line = schema_child_line(obj, key, val);
		int rc;

		if (!f)
			rc = dec_fail(d, line, "unknown key \"%s\"", d->path);
		else
			rc = dec_value(d, line, val, f, (char *)target + base);
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

	if (!obj || !json_object_is_type(obj, json_type_object))
		return dec_fail(&d, schema_node_line(obj), "expected a mapping, not %s",
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
		if (enc_fields(f->sub, CAT(src, f->off, char), v)) {
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
	case SCHEMA_INLINE: /* enc_fields does these */
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
		struct json_object *v;

		if (f->kind == SCHEMA_INLINE) {
			if (enc_fields(f->sub, CAT(src, f->off, char), o))
				return -ENOMEM;
			continue;
		}
		v = enc_value(f, src, &skip);

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
		case SCHEMA_INLINE:
			schema_free(f->sub, AT(target, f->off, char));
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
		} else if (f->kind == SCHEMA_OBJ || f->kind == SCHEMA_INLINE) {
			detach(f->sub, AT(t, f->off, char));
		}
	}
}

static int copy_fields(const struct schema_field *fields, void *dst, const void *src)
{
	for (const struct schema_field *f = fields; f->kind != SCHEMA_END; f++) {
		size_t i, n = 0;
		int rc;

		/* off2 means a count only for lists: elsewhere it is 0, and the
		 * start of an element (say, a 148-byte vm_nic) is not size_t-aligned. */
		if (f->kind == SCHEMA_KV || f->kind == SCHEMA_STRLIST || f->kind == SCHEMA_OBJLIST)
			n = *CAT(src, f->off2, size_t);
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
		case SCHEMA_INLINE:
			rc = copy_fields(f->sub, AT(dst, f->off, char), CAT(src, f->off, char));
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
