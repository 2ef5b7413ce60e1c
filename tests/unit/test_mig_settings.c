/* Migration settings: precedence at each layer, 0 versus unset, ranges, the
 * request's decoder, and each combination refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "schema/mig_settings.h"

/* The documented agent defaults (docs/config.md). */
static void defaults(struct ferry_migration_defaults *d)
{
	d->progress_timeout_s = 150;
	d->completion_timeout_s_per_gib = 800;
	d->max_bandwidth_mibps = 0;
	d->downtime_limit_ms = 300;
	d->compress = 1;
	d->multifd_channels = 0;
	d->auto_converge = 0;
	d->post_copy = 0;
	d->downtime_step_ms = 0;
	d->downtime_max_ms = 2000;
	d->escalate_after_s = 30;
	d->page_cache_mib = 256;
}

struct layers {
	struct mset_request req;
	struct ferry_migration_defaults spec, policy, dflt;
};

static void layers_init(struct layers *l)
{
	memset(l, 0, sizeof(*l));
	ferry_migration_unset(&l->req.mig);
	ferry_migration_unset(&l->spec);
	ferry_migration_unset(&l->policy);
	defaults(&l->dflt);
}

static int resolve(const struct layers *l, struct mset *out, char *err, size_t errlen)
{
	err[0] = '\0';
	return mset_resolve(&l->req, &l->spec, &l->policy, &l->dflt, out, err, errlen);
}

static void test_table_complete(void **state)
{
	(void)state;
	for (int id = 0; id < MSET_COUNT; id++) {
		const struct mset_info *i = mset_info(id);

		assert_non_null(i);
		assert_non_null(i->key);
		assert_true(i->min <= i->max);
		assert_true(i->min > FERRY_UNSET);
	}
	assert_null(mset_info(MSET_COUNT));
}

/* Each setting: the request wins over the spec, the spec over the policy,
 * the policy over the defaults; each origin is recorded. */
static void test_precedence_each_level(void **state)
{
	struct layers l;
	struct mset s;
	char err[512];

	(void)state;
	for (int id = 0; id < MSET_COUNT; id++) {
		const struct mset_info *i = mset_info(id);
		int a = i->min, b = i->is_bool ? 1 : i->min + 1, c = i->is_bool ? 0 : i->min + 2;

		layers_init(&l);
		/* Keep the combination rules out of the way of this test. */
		l.dflt.downtime_max_ms = 2000000;
		l.dflt.progress_timeout_s = 86400;
		if (id == MSET_PROGRESS_TIMEOUT_S)
			l.dflt.escalate_after_s = 1;
		mset_set(&l.policy, id, a);
		assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
		assert_int_equal(mset_get(&s.v, id), a);
		assert_int_equal(s.from[id], MSET_FROM_POLICY);

		mset_set(&l.spec, id, b);
		assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
		assert_int_equal(mset_get(&s.v, id), b);
		assert_int_equal(s.from[id], MSET_FROM_SPEC);

		if (!i->api_key)
			continue; /* downtime_max_ms is not a request key */
		mset_set(&l.req.mig, id, c);
		assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
		assert_int_equal(mset_get(&s.v, id), c);
		assert_int_equal(s.from[id], MSET_FROM_REQUEST);
	}
}

/* Nothing set above the defaults: the defaults, from the defaults. NULL
 * layers are layers that name nothing. */
static void test_defaults_only(void **state)
{
	struct ferry_migration_defaults d;
	struct mset s;
	char err[256];

	(void)state;
	defaults(&d);
	assert_int_equal(mset_resolve(NULL, NULL, NULL, &d, &s, err, sizeof(err)), 0);
	assert_memory_equal(&s.v, &d, sizeof(d));
	for (int id = 0; id < MSET_COUNT; id++)
		assert_int_equal(s.from[id], MSET_FROM_DEFAULT);
	assert_int_equal(mset_max_bandwidth_bps(&s), 0);
	assert_int_equal(mset_progress_timeout_ms(&s), 150000);
	assert_int_equal(mset_completion_timeout_ms(&s, 2048), 1600000);
}

/* 0 is a value, never "unset": a request's 0 bandwidth (unlimited) wins
 * over a spec's cap, and a spec's 0 channels over a policy's 4. */
static void test_zero_is_a_value(void **state)
{
	struct layers l;
	struct mset s;
	char err[256];

	(void)state;
	layers_init(&l);
	l.spec.max_bandwidth_mibps = 16;
	l.req.mig.max_bandwidth_mibps = 0;
	l.policy.multifd_channels = 4;
	l.spec.multifd_channels = 0;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	assert_int_equal(s.v.max_bandwidth_mibps, 0);
	assert_int_equal(s.from[MSET_MAX_BANDWIDTH_MIBPS], MSET_FROM_REQUEST);
	assert_int_equal(mset_max_bandwidth_bps(&s), 0);
	assert_int_equal(s.v.multifd_channels, 0);
	assert_int_equal(s.from[MSET_MULTIFD_CHANNELS], MSET_FROM_SPEC);
	l.req.mig.max_bandwidth_mibps = 8;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	assert_int_equal(mset_max_bandwidth_bps(&s), 8ull << 20);
}

/* The progress timeout can never be turned off: 0 is refused at every
 * layer, with the setting's name. */
static void test_progress_timeout_zero_refused(void **state)
{
	struct layers l;
	struct mset s;
	char err[256];

	(void)state;
	layers_init(&l);
	l.req.mig.progress_timeout_s = 0;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "request: progressTimeoutS must be between 1 and 86400 (got 0)");
	layers_init(&l);
	l.spec.completion_timeout_s_per_gib = 0;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "VM spec: completion_timeout_s_per_gib must be between 1 and 86400 (got 0)");
	layers_init(&l);
	l.policy.progress_timeout_s = 0;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "policy: progress_timeout_s must be between 1"));
}

/* Negatives are refused, -1 included (it once meant "unset"); a negative
 * bandwidth no longer means "unlimited". */
static void test_negatives_refused(void **state)
{
	struct layers l;
	struct mset s;
	char err[256];

	(void)state;
	for (int id = 0; id < MSET_COUNT; id++) {
		layers_init(&l);
		mset_set(&l.spec, id, -1);
		assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, mset_info(id)->key));
		layers_init(&l);
		mset_set(&l.req.mig, id, -5);
		assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, mset_info(id)->api_key ?: mset_info(id)->key));
	}
	layers_init(&l);
	l.req.mig.max_bandwidth_mibps = -5;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "request: maxBandwidthMiBps must be between 0 and 1048576 (got -5)");
}

/* The defaults must set everything. */
static void test_defaults_incomplete(void **state)
{
	struct ferry_migration_defaults d;
	struct mset s;
	char err[256];

	(void)state;
	defaults(&d);
	d.escalate_after_s = FERRY_UNSET;
	assert_int_equal(mset_resolve(NULL, NULL, NULL, &d, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "agent defaults: escalate_after_s has no value");
	assert_int_equal(mset_resolve(NULL, NULL, NULL, NULL, &s, err, sizeof(err)), -EINVAL);
}

/* Combination: a downtime step needs room between the limit and its max. */
static void test_combination_downtime_step(void **state)
{
	struct layers l;
	struct mset s;
	char err[512];

	(void)state;
	layers_init(&l);
	l.req.mig.downtime_step_ms = 500;
	l.spec.downtime_limit_ms = 3000;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "downtime_max_ms (2000, agent default) must be above "
				 "downtime_limit_ms (3000, VM spec) while downtime_step_ms (500, "
				 "request) is on: a step could not raise the limit");
	/* Equal is no room either; without a step the pair does not matter. */
	l.spec.downtime_limit_ms = 2000;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	l.req.mig.downtime_step_ms = 0;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	/* A policy raising the max makes it work. */
	l.req.mig.downtime_step_ms = 500;
	l.policy.downtime_max_ms = 5000;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
}

/* Combination: a stepped escalation must come before the progress timeout. */
static void test_combination_escalate_after(void **state)
{
	struct layers l;
	struct mset s;
	char err[512];

	(void)state;
	layers_init(&l);
	l.req.mig.post_copy = 1;
	l.req.mig.progress_timeout_s = 20;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "escalate_after_s (30, agent default) must be below "
				 "progress_timeout_s (20, request) while post_copy (1, request) is "
				 "on: the progress timeout would abort before the first escalation");
	l.req.mig.escalate_after_s = 20; /* equal: the timeout still comes first */
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	l.req.mig.escalate_after_s = 19;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	/* The downtime step is an escalation too. */
	layers_init(&l);
	l.spec.downtime_step_ms = 100;
	l.spec.progress_timeout_s = 30;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "downtime_step_ms (100, VM spec)"));
	/* Auto-converge is not stepped: no constraint. */
	layers_init(&l);
	l.req.mig.auto_converge = 1;
	l.req.mig.progress_timeout_s = 4;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	/* Nor is post-copy right away. */
	layers_init(&l);
	l.req.post_copy_now = 1;
	l.req.mig.progress_timeout_s = 4;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
}

/* postCopyNow turns post_copy on over every layer, but not over the
 * request's own "off"; post_copy forces one channel. */
static void test_combination_post_copy(void **state)
{
	struct layers l;
	struct mset s;
	char err[512];

	(void)state;
	layers_init(&l);
	l.req.post_copy_now = 1;
	l.spec.post_copy = 0;
	l.policy.multifd_channels = 4;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	assert_int_equal(s.v.post_copy, 1);
	assert_int_equal(s.from[MSET_POST_COPY], MSET_FROM_REQUEST);
	assert_true(s.post_copy_now);
	assert_int_equal(s.v.multifd_channels, 0);
	l.req.mig.post_copy = 0;
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "postCopyNow needs post-copy, which the request turns off (postCopy false)");
	/* mset_check on a hand-built set. */
	layers_init(&l);
	assert_int_equal(resolve(&l, &s, err, sizeof(err)), 0);
	s.post_copy_now = 1;
	assert_int_equal(mset_check(&s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "postCopyNow needs post_copy (0, agent default) to be on");
	s.post_copy_now = 0;
	s.v.multifd_channels = 65;
	assert_int_equal(mset_check(&s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "multifd_channels must be between 0 and 64 (got 65)");
}

/* A request's settings through the schema decoder (mset_request_fields,
 * as the REST body embeds them), then mset_request_check. */
static int from_json(const char *text, struct mset_request *r, char *err, size_t errlen)
{
	struct json_object *o = json_tokener_parse(text);
	int rc;

	assert_non_null(o);
	err[0] = '\0';
	mset_request_init(r);
	rc = schema_decode(o, mset_request_fields, r, NULL, err, errlen);
	if (rc == 0)
		rc = mset_request_check(r, err, errlen);
	json_object_put(o);
	return rc;
}

/* The request's keys: present keys set, absent and null ones do not,
 * unknown keys, types and ranges are refused with the request's key names. */
static void test_request_json(void **state)
{
	struct mset_request r;
	char err[256];

	(void)state;
	mset_request_init(&r);
	for (int id = 0; id < MSET_COUNT; id++)
		assert_int_equal(mset_get(&r.mig, id), FERRY_UNSET);
	assert_int_equal(r.post_copy_now, 0);
	assert_int_equal(from_json("{\"maxBandwidthMiBps\":0,\"compress\":false,"
				   "\"postCopyNow\":true,\"progressTimeoutS\":null}",
				   &r, err, sizeof(err)),
			 0);
	assert_int_equal(r.mig.max_bandwidth_mibps, 0);
	assert_int_equal(r.mig.compress, 0);
	assert_int_equal(r.mig.progress_timeout_s, FERRY_UNSET);
	assert_int_equal(r.mig.multifd_channels, FERRY_UNSET);
	assert_true(r.post_copy_now);

	assert_int_equal(from_json("{\"progressTimeoutS\":0}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "progressTimeoutS must be between 1 and 86400 (got 0)");
	assert_int_equal(from_json("{\"maxBandwidthMiBps\":-1}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "maxBandwidthMiBps must be between 0 and 1048576 (got -1)");
	assert_int_equal(from_json("{\"multifdChannels\":99999999999}", &r, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "multifdChannels is out of range (got 99999999999)");
	assert_int_equal(from_json("{\"downtimeLimitMs\":\"300\"}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "downtimeLimitMs must be an integer, not a string");
	assert_int_equal(from_json("{\"escalateAfterS\":1.5}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "escalateAfterS must be an integer, not a number");
	assert_int_equal(from_json("{\"compress\":1}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "compress must be true or false, not an integer");
	assert_int_equal(from_json("{\"postCopyNow\":\"yes\"}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "postCopyNow must be true or false, not a string");
	assert_int_equal(from_json("{\"progressTimeouts\":30}", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown key \"progressTimeouts\"");
	assert_int_equal(from_json("[1]", &r, err, sizeof(err)), -EINVAL);
}

/* Every setting settable per request has its api_key in the request's
 * field table, at its offset, and no other key is there but postCopyNow. */
static void test_request_fields_match_table(void **state)
{
	size_t n = 0;

	(void)state;
	for (int id = 0; id < MSET_COUNT; id++) {
		const struct mset_info *i = mset_info(id);
		const struct schema_field *f;
		struct mset_request r;

		if (!i->api_key)
			continue;
		n++;
		for (f = mset_request_fields; f->kind != SCHEMA_END; f++)
			if (!strcmp(f->key, i->api_key))
				break;
		assert_int_equal(f->kind, i->is_bool ? SCHEMA_BOOL : SCHEMA_INT);
		mset_request_init(&r);
		mset_set(&r.mig, id, 12345);
		assert_int_equal(*(int *)((char *)&r + f->off), 12345);
	}
	for (const struct schema_field *f = mset_request_fields; f->kind != SCHEMA_END; f++)
		n -= strcmp(f->key, "postCopyNow") != 0;
	assert_int_equal(n, 0);
}

/* The schema check used by ferryd.yaml and VM specs. */
static void test_schema_check(void **state)
{
	struct ferry_migration_defaults m;
	struct schema_err e;

	(void)state;
	ferry_migration_unset(&m);
	assert_int_equal(ferry_migration_check(&e, "migration", &m, 1), 0);
	assert_int_equal(ferry_migration_check(&e, "migration", &m, 0), -EINVAL);
	assert_string_equal(e.msg, "migration.progress_timeout_s has no value");
	m.downtime_step_ms = -1;
	assert_int_equal(ferry_migration_check(&e, "policies[0].migration", &m, 1), -EINVAL);
	assert_string_equal(e.path, "policies[0].migration.downtime_step_ms");
	assert_string_equal(e.msg, "policies[0].migration.downtime_step_ms must be between 0 and "
				   "2000000 (got -1)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_precedence_each_level),
		cmocka_unit_test(test_defaults_only),
		cmocka_unit_test(test_zero_is_a_value),
		cmocka_unit_test(test_progress_timeout_zero_refused),
		cmocka_unit_test(test_negatives_refused),
		cmocka_unit_test(test_defaults_incomplete),
		cmocka_unit_test(test_combination_downtime_step),
		cmocka_unit_test(test_combination_escalate_after),
		cmocka_unit_test(test_combination_post_copy),
		cmocka_unit_test(test_request_json),
		cmocka_unit_test(test_request_fields_match_table),
		cmocka_unit_test(test_schema_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
