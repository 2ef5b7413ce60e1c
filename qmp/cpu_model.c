/* cpu_model: see cpu_model.h. */
#include "cpu_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qmp.h"

#define QUERY_TIMEOUT_MS 10000

void cpu_model_free(struct ferry_kv *kv, size_t n)
{
	if (!kv)
		return;
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ferry_kv *)a)->key, ((const struct ferry_kv *)b)->key);
}

/* A property's value as ferry writes it; NULL for a feature that is off
 * (or a value of no kind QEMU takes on -cpu). */
static const char *prop_text(struct json_object *v, char *buf, size_t len)
{
	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return json_object_get_boolean(v) ? "on" : NULL;
	case json_type_int:
		snprintf(buf, len, "%lld", (long long)json_object_get_int64(v));
		return buf;
	case json_type_string:
		return json_object_get_string(v);
	default:
		return NULL;
	}
}

int cpu_model_parse(struct json_object *ret, struct ferry_kv **out, size_t *n)
{
	struct json_object *model = json_object_object_get(ret, "model");
	struct json_object *name = json_object_object_get(model, "name");
	struct json_object *props = json_object_object_get(model, "props");
	struct ferry_kv *kv;
	size_t k = 0;
	char num[32];

	*out = NULL;
	*n = 0;
	if (!json_object_is_type(name, json_type_string) ||
	    strcmp(json_object_get_string(name), "base") ||
	    !json_object_is_type(props, json_type_object))
		return -EPROTO;
	if (json_object_object_length(props) > CPU_MODEL_PROPS_MAX)
		return -E2BIG;
	kv = calloc((size_t)json_object_object_length(props) + 1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	json_object_object_foreach(props, key, val)
	{
		const char *t = prop_text(val, num, sizeof(num));

		if (!t)
			continue;
		kv[k].key = strdup(key);
		kv[k].value = strdup(t);
		if (!kv[k].key || !kv[k].value) {
			cpu_model_free(kv, k + 1);
			return -ENOMEM;
		}
		k++;
	}
	qsort(kv, k, sizeof(*kv), kv_cmp);
	*out = kv;
	*n = k;
	return 0;
}

static const char *lookup(const struct ferry_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return kv[i].value;
	return NULL;
}

size_t cpu_model_missing(const struct ferry_kv *vm, size_t n_vm, const struct ferry_kv *host,
			 size_t n_host, char *buf, size_t len)
{
	size_t missing = 0, used = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < n_vm; i++) {
		const char *h;
		int w;

		if (strcmp(vm[i].value, "on"))
			continue; /* family, vendor, ...: QEMU sets them on any host */
		h = lookup(host, n_host, vm[i].key);
		if (h && !strcmp(h, "on"))
			continue;
		missing++;
		if (used < len) {
			w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", vm[i].key);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	return missing;
}

int cpu_model_query(struct qmp *q, const char *model, struct ferry_kv **out, size_t *n,
		    char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object(), *m = json_object_new_object();
	struct json_object *ret = NULL;
	int r;

	json_object_object_add(m, "name", json_object_new_string(model));
	json_object_object_add(args, "type", json_object_new_string("static"));
	json_object_object_add(args, "model", m);
	r = qmp_call(q, "query-cpu-model-expansion", args, &ret, QUERY_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	if (r == 0) {
		r = cpu_model_parse(ret, out, n);
		if (r < 0)
			snprintf(err, errlen, "query-cpu-model-expansion of %s: not a static expansion (%s)",
				 model, strerror(-r));
	}
	json_object_put(ret);
	return r;
}
