/* Migration settings: ranges, precedence, combinations. See mig_settings.h. */
#include "schema/mig_settings.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define OFF(f) offsetof(struct ferry_migration_defaults, f)

/* The ranges are docs/config.md's. QEMU refuses a downtime-limit above
 * 2000 s; its multifd-channels is a uint8, and more than 64 links between
 * two agents buy nothing. */
static const struct {
	struct mset_info i;
	size_t off;
} table[MSET_COUNT] = {
	[MSET_PROGRESS_TIMEOUT_S] = {{"progress_timeout_s", "progressTimeoutS", 1, 86400, 0},
				     OFF(progress_timeout_s)},
	[MSET_COMPLETION_TIMEOUT_S_PER_GIB] = {{"completion_timeout_s_per_gib",
						"completionTimeoutSPerGiB", 1, 86400, 0},
					       OFF(completion_timeout_s_per_gib)},
	[MSET_MAX_BANDWIDTH_MIBPS] = {{"max_bandwidth_mibps", "maxBandwidthMiBps", 0, 1048576, 0},
				      OFF(max_bandwidth_mibps)},
	[MSET_DOWNTIME_LIMIT_MS] = {{"downtime_limit_ms", "downtimeLimitMs", 1, 2000000, 0},
				    OFF(downtime_limit_ms)},
	[MSET_COMPRESS] = {{"compress", "compress", 0, 1, 1}, OFF(compress)},
	[MSET_MULTIFD_CHANNELS] = {{"multifd_channels", "multifdChannels", 0, 64, 0},
				   OFF(multifd_channels)},
	[MSET_AUTO_CONVERGE] = {{"auto_converge", "autoConverge", 0, 1, 1}, OFF(auto_converge)},
	[MSET_POST_COPY] = {{"post_copy", "postCopy", 0, 1, 1}, OFF(post_copy)},
	[MSET_DOWNTIME_STEP_MS] = {{"downtime_step_ms", "downtimeStepMs", 0, 2000000, 0},
				   OFF(downtime_step_ms)},
	[MSET_DOWNTIME_MAX_MS] = {{"downtime_max_ms", NULL, 1, 2000000, 0}, OFF(downtime_max_ms)},
	[MSET_ESCALATE_AFTER_S] = {{"escalate_after_s", "escalateAfterS", 1, 86400, 0},
				   OFF(escalate_after_s)},
	[MSET_PAGE_CACHE_MIB] = {{"page_cache_mib", "pageCacheMiB", 0, 65536, 0}, OFF(page_cache_mib)},
};

/* Every field of the struct is a setting in the table, and no more. */
_Static_assert(sizeof(struct ferry_migration_defaults) == MSET_COUNT * sizeof(int),
	       "struct ferry_migration_defaults and the settings table disagree");

const struct mset_info *mset_info(enum mset_id id)
{
	return (unsigned)id < MSET_COUNT ? &table[id].i : NULL;
}

const char *mset_origin_name(enum mset_origin o)
{
	switch (o) {
	case MSET_FROM_REQUEST: return "request";
	case MSET_FROM_SPEC: return "VM spec";
	case MSET_FROM_POLICY: return "policy";
	case MSET_FROM_DEFAULT: return "agent default";
	}
	return "?";
}

int mset_get(const struct ferry_migration_defaults *l, enum mset_id id)
{
	return *(const int *)((const char *)l + table[id].off);
}

void mset_set(struct ferry_migration_defaults *l, enum mset_id id, int v)
{
	*(int *)((char *)l + table[id].off) = v;
}

/* "prefix.key" or "key"; the request's keys are its own (camelCase). */
static void key_name(enum mset_id id, const char *prefix, int api, char *buf, size_t len)
{
	const char *k = api && table[id].i.api_key ? table[id].i.api_key : table[id].i.key;

	if (prefix && prefix[0])
		snprintf(buf, len, "%s.%s", prefix, k);
	else
		snprintf(buf, len, "%s", k);
}

static void range_msg(enum mset_id id, const char *name, long long v, char *err, size_t errlen)
{
	const struct mset_info *i = &table[id].i;

	if (i->is_bool)
		snprintf(err, errlen, "%s must be true or false (got %lld)", name, v);
	else
		snprintf(err, errlen, "%s must be between %d and %d (got %lld)", name, i->min,
			 i->max, v);
}

static int check_layer(const struct ferry_migration_defaults *l, int allow_unset,
		       const char *prefix, int api, enum mset_id *bad, char *err, size_t errlen)
{
	char name[192];

	for (int id = 0; id < MSET_COUNT; id++) {
		int v = mset_get(l, id);

		if (allow_unset && v == FERRY_UNSET)
			continue;
		if (v >= table[id].i.min && v <= table[id].i.max)
			continue;
		key_name(id, prefix, api, name, sizeof(name));
		if (v == FERRY_UNSET)
			snprintf(err, errlen, "%s has no value", name);
		else
			range_msg(id, name, v, err, errlen);
		if (bad)
			*bad = id;
		return -EINVAL;
	}
	return 0;
}

int mset_check_layer(const struct ferry_migration_defaults *l, int allow_unset,
		     const char *prefix, enum mset_id *bad, char *err, size_t errlen)
{
	return check_layer(l, allow_unset, prefix, 0, bad, err, errlen);
}

int ferry_migration_check(struct schema_err *e, const char *path,
			  const struct ferry_migration_defaults *m, int allow_unset)
{
	char msg[sizeof(e->msg)], p[192];
	enum mset_id bad;

	if (check_layer(m, allow_unset, path, 0, &bad, msg, sizeof(msg)) == 0)
		return 0;
	key_name(bad, path, 0, p, sizeof(p));
	return schema_fail(e, p, "%s", msg);
}

/* ---- the request ---------------------------------------------------------- */

#define ROFF(f) offsetof(struct mset_request, mig.f)
#define RINT(k, f) {k, SCHEMA_INT, ROFF(f), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT}
#define RBOOL(k, f) {k, SCHEMA_BOOL, ROFF(f), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT}

/* The table's api_key of each setting, in the table's order (test_mig_settings
 * checks that the two agree). */
const struct schema_field mset_request_fields[] = {
	RINT("progressTimeoutS", progress_timeout_s),
	RINT("completionTimeoutSPerGiB", completion_timeout_s_per_gib),
	RINT("maxBandwidthMiBps", max_bandwidth_mibps),
	RINT("downtimeLimitMs", downtime_limit_ms),
	RBOOL("compress", compress),
	RINT("multifdChannels", multifd_channels),
	RBOOL("autoConverge", auto_converge),
	RBOOL("postCopy", post_copy),
	RINT("downtimeStepMs", downtime_step_ms),
	RINT("escalateAfterS", escalate_after_s),
	RINT("pageCacheMiB", page_cache_mib),
	{"postCopyNow", SCHEMA_BOOL, offsetof(struct mset_request, post_copy_now), 0, 0, NULL, NULL, 0},
	{0},
};

void mset_request_init(struct mset_request *r)
{
	memset(r, 0, sizeof(*r));
	ferry_migration_unset(&r->mig);
}

int mset_request_check(const struct mset_request *r, char *err, size_t errlen)
{
	return check_layer(&r->mig, 1, NULL, 1, NULL, err, errlen);
}

/* ---- resolution ----------------------------------------------------------- */

static int check_input(const struct ferry_migration_defaults *l, int allow_unset,
		       enum mset_origin o, char *err, size_t errlen)
{
	char msg[384];

	if (!l || check_layer(l, allow_unset, NULL, o == MSET_FROM_REQUEST, NULL, msg,
			      sizeof(msg)) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", o == MSET_FROM_DEFAULT ? "agent defaults"
					: mset_origin_name(o), msg);
	return -EINVAL;
}

int mset_resolve(const struct mset_request *req, const struct ferry_migration_defaults *spec,
		 const struct ferry_migration_defaults *policy,
		 const struct ferry_migration_defaults *defaults, struct mset *out, char *err,
		 size_t errlen)
{
	const struct ferry_migration_defaults *layer[] = {req ? &req->mig : NULL, spec, policy,
							  defaults};
	const enum mset_origin origin[] = {MSET_FROM_REQUEST, MSET_FROM_SPEC, MSET_FROM_POLICY,
					   MSET_FROM_DEFAULT};
	int r;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < 4; i++)
		if ((r = check_input(layer[i], layer[i] != defaults, origin[i], err, errlen)) < 0)
			return r;
	if (!defaults) {
		snprintf(err, errlen, "agent defaults: missing");
		return -EINVAL;
	}
	for (int id = 0; id < MSET_COUNT; id++) {
		for (size_t i = 0; i < 4; i++) {
			if (!layer[i] || mset_get(layer[i], id) == FERRY_UNSET)
				continue;
			mset_set(&out->v, id, mset_get(layer[i], id));
			out->from[id] = origin[i];
			break;
		}
	}
	if (req && req->post_copy_now) {
		if (req->mig.post_copy == 0) {
			snprintf(err, errlen,
				 "postCopyNow needs post-copy, which the request turns off (postCopy false)");
			return -EINVAL;
		}
		out->post_copy_now = 1;
		out->v.post_copy = 1;
		out->from[MSET_POST_COPY] = MSET_FROM_REQUEST;
	}
	if (out->v.post_copy && out->v.multifd_channels) {
		/* Documented: post-copy forces one channel. */
		out->v.multifd_channels = 0;
		out->from[MSET_MULTIFD_CHANNELS] = out->from[MSET_POST_COPY];
	}
	return mset_check(out, err, errlen);
}

/* "downtime_max_ms (2000, agent default)" */
static const char *said(const struct mset *s, enum mset_id id, char *buf, size_t len)
{
	snprintf(buf, len, "%s (%d, %s)", table[id].i.key, mset_get(&s->v, id),
		 mset_origin_name(s->from[id]));
	return buf;
}

int mset_check(const struct mset *s, char *err, size_t errlen)
{
	const struct ferry_migration_defaults *v = &s->v;
	char a[128], b[128], c[128];
	int r;

	if ((r = check_layer(v, 0, NULL, 0, NULL, err, errlen)) < 0)
		return r;
	if (s->post_copy_now && !v->post_copy) {
		snprintf(err, errlen, "postCopyNow needs %s to be on",
			 said(s, MSET_POST_COPY, a, sizeof(a)));
		return -EINVAL;
	}
	if (v->downtime_step_ms > 0 && v->downtime_max_ms <= v->downtime_limit_ms) {
		snprintf(err, errlen,
			 "%s must be above %s while %s is on: a step could not raise the limit",
			 said(s, MSET_DOWNTIME_MAX_MS, a, sizeof(a)),
			 said(s, MSET_DOWNTIME_LIMIT_MS, b, sizeof(b)),
			 said(s, MSET_DOWNTIME_STEP_MS, c, sizeof(c)));
		return -EINVAL;
	}
	if ((v->downtime_step_ms > 0 || (v->post_copy && !s->post_copy_now)) &&
	    v->escalate_after_s >= v->progress_timeout_s) {
		snprintf(err, errlen,
			 "%s must be below %s while %s is on: the progress timeout would abort "
			 "before the first escalation",
			 said(s, MSET_ESCALATE_AFTER_S, a, sizeof(a)),
			 said(s, MSET_PROGRESS_TIMEOUT_S, b, sizeof(b)),
			 said(s, v->downtime_step_ms > 0 ? MSET_DOWNTIME_STEP_MS : MSET_POST_COPY, c,
			      sizeof(c)));
		return -EINVAL;
	}
	return 0;
}

/* ---- accessors ------------------------------------------------------------ */

uint64_t mset_max_bandwidth_bps(const struct mset *s)
{
	return s->v.max_bandwidth_mibps > 0 ? (uint64_t)s->v.max_bandwidth_mibps << 20 : 0;
}

uint64_t mset_progress_timeout_ms(const struct mset *s)
{
	return (uint64_t)s->v.progress_timeout_s * 1000ull;
}

uint64_t mset_completion_timeout_ms(const struct mset *s, uint64_t mib)
{
	return (uint64_t)s->v.completion_timeout_s_per_gib * 1000ull * mib / 1024ull;
}
