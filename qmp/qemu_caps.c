/* qemu_caps: see qemu_caps.h. */
#include "qemu_caps.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "qmp.h"

#define PROBE_TIMEOUT_MS 5000

static int array_has_name(struct json_object *arr, const char *key, const char *name)
{
	if (!arr || !json_object_is_type(arr, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_object_get(json_object_array_get_idx(arr, i), key);
		const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

		if (s && !strcmp(s, name))
			return 1;
	}
	return 0;
}

static int version_part(struct json_object *qemu, const char *k, int *out)
{
	struct json_object *v = json_object_object_get(qemu, k);

	if (!json_object_is_type(v, json_type_int))
		return -EPROTO;
	*out = json_object_get_int(v);
	return *out < 0 ? -EPROTO : 0;
}

static int at_least(const struct qemu_caps *c, int major, int minor)
{
	return c->major > major || (c->major == major && c->minor >= minor);
}

int qcaps_parse(struct json_object *version, struct json_object *commands,
		struct json_object *mig_caps, struct json_object *mig_params,
		struct qemu_caps *out)
{
	struct json_object *qemu = json_object_object_get(version, "qemu");

	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(qemu, json_type_object) || version_part(qemu, "major", &out->major) ||
	    version_part(qemu, "minor", &out->minor) || version_part(qemu, "micro", &out->micro))
		return -EPROTO;
	/* block-job-change and the actively-synced field of query-block-jobs
	 * came in the same QEMU (8.2): the command stands for both. */
	if (array_has_name(commands, "name", "block-job-change"))
		out->features |= QCAP_BLOCK_JOB_CHANGE | QCAP_ACTIVELY_SYNCED;
	if (array_has_name(mig_caps, "capability", "postcopy-preempt"))
		out->features |= QCAP_POSTCOPY_PREEMPT;
	if (json_object_is_type(mig_params, json_type_object) &&
	    json_object_object_get_ex(mig_params, "zero-page-detection", NULL))
		out->features |= QCAP_ZERO_PAGE_DETECTION;
	/* A fix in the dirty-bitmap sync, invisible over QMP: by version. */
	if (at_least(out, 9, 0))
		out->features |= QCAP_TCG_DIRTY_COHERENT;
	return 0;
}

int qcaps_probe(struct qmp *q, struct qemu_caps *out, char *err, size_t errlen)
{
	static const char *const queries[] = {"query-version", "query-commands",
					      "query-migrate-capabilities", "query-migrate-parameters"};
	struct json_object *ret[4] = {0};
	int r = 0;

	for (size_t i = 0; i < 4 && r == 0; i++) {
		char e[256];

		r = qmp_call(q, queries[i], NULL, &ret[i], PROBE_TIMEOUT_MS, e, sizeof(e));
		if (r < 0)
			snprintf(err, errlen, "%s: %s", queries[i], e);
	}
	if (r == 0) {
		r = qcaps_parse(ret[0], ret[1], ret[2], ret[3], out);
		if (r < 0)
			snprintf(err, errlen, "query-version: not a version reply");
	}
	for (size_t i = 0; i < 4; i++)
		json_object_put(ret[i]);
	return r;
}

int qcaps_supported(const struct qemu_caps *c)
{
	return at_least(c, QCAPS_MIN_MAJOR, QCAPS_MIN_MINOR);
}

const char *qcaps_describe(const struct qemu_caps *c, char *buf, size_t len)
{
	static const struct {
		enum qcap f;
		const char *name;
	} names[] = {
		{QCAP_BLOCK_JOB_CHANGE, "block-job-change"},
		{QCAP_ACTIVELY_SYNCED, "actively-synced"},
		{QCAP_ZERO_PAGE_DETECTION, "zero-page-detection"},
		{QCAP_POSTCOPY_PREEMPT, "postcopy-preempt"},
		{QCAP_TCG_DIRTY_COHERENT, "tcg-dirty-coherent"},
	};
	size_t used;
	const char *sep = " ";

	if (!len)
		return buf;
	used = (size_t)snprintf(buf, len, "%d.%d.%d", c->major, c->minor, c->micro);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && used < len; i++) {
		if (!qcaps_has(c, names[i].f))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, names[i].name);
		sep = ",";
	}
	return buf;
}
