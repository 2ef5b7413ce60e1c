/* The schema library on its own, with a small made-up table: YAML line
 * numbers, strict decoding and its messages, encode/copy/free of every
 * kind, and the shared checks. The VM spec and the config have their own
 * tests (test_vmspec, test_config). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "schema/check.h"
#include "schema/input.h"
#include "schema/migration.h"
#include "schema/schema.h"
#include "schema/yaml.h"

struct item {
	char name[16];
	int size;
};

struct inner {
	int count;
	int flag;
};

struct doc {
	char title[8];
	struct inner in; /* decoded through SCHEMA_OBJ at an offset */
	struct ferry_kv *labels;
	size_t n_labels;
	char **tags;
	size_t n_tags;
	struct item *items;
	size_t n_items;
	char host[64];
	int port;
	int opt; /* FERRY_UNSET when absent, then left out of the JSON */
};

#define DOFF(m) offsetof(struct doc, m)
#define IOFF(m) offsetof(struct inner, m)

static void item_init(void *p)
{
	((struct item *)p)->size = 7;
}

static const struct schema_field inner_fields[] = {
	{"count", SCHEMA_INT, IOFF(count), 0, 0, NULL, NULL, 0},
	{"flag", SCHEMA_BOOL, IOFF(flag), 0, 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field item_fields[] = {
	{"name", SCHEMA_STR, offsetof(struct item, name), 16, 0, NULL, NULL, 0},
	{"size", SCHEMA_INT, offsetof(struct item, size), 0, 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field doc_fields[] = {
	{"title", SCHEMA_STR, DOFF(title), sizeof(((struct doc *)0)->title), 0, NULL, NULL, 0},
	{"inner", SCHEMA_OBJ, DOFF(in), 0, 0, inner_fields, NULL, 0},
	{"labels", SCHEMA_KV, DOFF(labels), 0, DOFF(n_labels), NULL, NULL, 0},
	{"tags", SCHEMA_STRLIST, DOFF(tags), 0, DOFF(n_tags), NULL, NULL, 0},
	{"items", SCHEMA_OBJLIST, DOFF(items), sizeof(struct item), DOFF(n_items), item_fields,
	 item_init, 0},
	{"addr", SCHEMA_HOSTPORT, DOFF(host), sizeof(((struct doc *)0)->host), DOFF(port), NULL,
	 NULL, 0},
	{"opt", SCHEMA_INT, DOFF(opt), 0, 0, NULL, NULL, SCHEMA_F_UNSET_OMIT},
	{"later", SCHEMA_RESERVED, 0, 0, 0, NULL, NULL, 0},
	{0},
};

static const char text[] =
	"title: '007'\n"            /* 1 */
	"inner:\n"                  /* 2 */
	"  count: 3\n"              /* 3 */
	"  flag: true\n"            /* 4 */
	"labels: {zone: a}\n"       /* 5 */
	"tags: [x, 42]\n"           /* 6 */
	"items:\n"                  /* 7 */
	"  - name: one\n"           /* 8 */
	"  - name: 2\n"             /* 9 */
	"    size:\n"               /* 10: null, keeps the element default */
	"addr: '[::1]:7700'\n"      /* 11 */
	"later: []\n";              /* 12 */

static struct json_object *yaml(const char *s)
{
	struct json_object *root = NULL;
	char err[256] = "";

	assert_int_equal(schema_yaml_to_json(s, strlen(s), "t.yaml", &root, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	return root;
}

/* Decode s into a fresh doc; returns the rc, message in err. */
static int decode(const char *s, struct doc *d, char *err, size_t errlen)
{
	struct json_object *root = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	d->opt = FERRY_UNSET;
	rc = schema_yaml_to_json(s, strlen(s), "t.yaml", &root, err, errlen);
	if (!rc)
		rc = schema_decode(root, doc_fields, d, "t.yaml", err, errlen);
	json_object_put(root);
	return rc;
}

static const char *decode_fail(const char *s)
{
	static char err[512];
	struct doc d;

	err[0] = '\0';
	assert_int_equal(decode(s, &d, err, sizeof(err)), -EINVAL);
	schema_free(doc_fields, &d);
	return err;
}

static void test_lines(void **state)
{
	struct json_object *root = yaml(text), *j = NULL;
	char err[256];

	(void)state;
	assert_int_equal(schema_line(root, ""), 1);
	assert_int_equal(schema_line(root, "title"), 1);
	assert_int_equal(schema_line(root, "inner.flag"), 4);
	assert_int_equal(schema_line(root, "labels.zone"), 5);
	assert_int_equal(schema_line(root, "tags[1]"), 6);
	assert_int_equal(schema_line(root, "items[1].name"), 9);
	/* A null value has no node of its own: the line of its key. */
	assert_int_equal(schema_line(root, "items[1].size"), 10);
	/* Missing parts: the deepest ancestor that exists. A block list or
	 * mapping node starts at its first entry, not at its key. */
	assert_int_equal(schema_line(root, "items[1].nope"), 9);
	assert_int_equal(schema_line(root, "items[5].name"), 8);
	assert_int_equal(schema_line(root, "inner"), 3);
	json_object_put(root);

	/* JSON trees have no lines. */
	assert_int_equal(schema_json_parse("{\"a\": 1}", 8, "t.json", &j, err, sizeof(err)), 0);
	assert_int_equal(schema_line(j, "a"), 0);
	json_object_put(j);
}

static void test_yaml_errors(void **state)
{
	struct json_object *root = NULL;
	char err[256];
	const char *dup = "a: 1\nb: 2\na: 3\n", *two = "a: 1\n---\nb: 2\n";

	(void)state;
	assert_int_equal(schema_yaml_to_json(dup, strlen(dup), "t.yaml", &root, err, sizeof(err)),
			 -EINVAL);
	assert_null(root);
	assert_string_equal(err, "t.yaml:3: duplicate key \"a\"");
	assert_int_equal(schema_yaml_to_json(two, strlen(two), "t.yaml", &root, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.yaml:3: more than one YAML document");
	assert_int_equal(schema_yaml_to_json("a: [1\n", 6, "t.yaml", &root, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "t.yaml:2: invalid YAML: "));
	assert_int_equal(schema_json_parse("{\n\"a\": }", 8, "t.json", &root, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "t.json:2: invalid JSON: "));
}

static void test_decode(void **state)
{
	char err[256] = "";
	struct doc d;

	(void)state;
	assert_int_equal(decode(text, &d, err, sizeof(err)), 0);
	assert_string_equal(d.title, "007");
	assert_int_equal(d.in.count, 3);
	assert_int_equal(d.in.flag, 1);
	assert_int_equal(d.n_labels, 1);
	assert_string_equal(d.labels[0].key, "zone");
	assert_string_equal(d.labels[0].value, "a");
	assert_int_equal(d.n_tags, 2);
	assert_string_equal(d.tags[1], "42"); /* a number where a string goes keeps its text */
	assert_int_equal(d.n_items, 2);
	assert_string_equal(d.items[1].name, "2");
	assert_int_equal(d.items[0].size, 7);
	assert_int_equal(d.items[1].size, 7);
	assert_string_equal(d.host, "::1");
	assert_int_equal(d.port, 7700);
	assert_int_equal(d.opt, FERRY_UNSET);
	schema_free(doc_fields, &d);
	assert_null(d.items);
	assert_int_equal(d.n_items, 0);
}

static void test_decode_errors(void **state)
{
	(void)state;
	/* Unknown keys name the whole path, at the key's own line. */
	assert_string_equal(decode_fail("title: a\ninner:\n  count: 1\n  cuont: 2\n"),
			    "t.yaml:4: unknown key \"inner.cuont\"");
	assert_string_equal(decode_fail("items:\n  - name: a\n    colour: red\n"),
			    "t.yaml:3: unknown key \"items[0].colour\"");
	assert_string_equal(decode_fail("inner: {count: '3'}\n"),
			    "t.yaml:1: inner.count must be an integer, not a string");
	assert_string_equal(decode_fail("\ninner: {flag: yes}\n"),
			    "t.yaml:2: inner.flag must be true or false, not a string");
	assert_string_equal(decode_fail("title: abcdefgh\n"),
			    "t.yaml:1: title is too long (max 7 characters)");
	assert_string_equal(decode_fail("tags: {a: b}\n"),
			    "t.yaml:1: tags must be a list, not a mapping");
	assert_string_equal(decode_fail("addr: nowhere\n"),
			    "t.yaml:1: addr must be host:port with a port in 1..65535 (got \"nowhere\")");
	assert_string_equal(decode_fail("later: [x]\n"),
			    "t.yaml:1: later is not supported yet (must be empty)");
	assert_string_equal(decode_fail("- a\n"), "t.yaml:1: expected a mapping, not a list");
}

/* JSON writes a value's type out: a number or a boolean where a string
 * belongs is refused (YAML's plain `007` is text and keeps it, above), and
 * so is every other mismatch, naming the key. */
static void test_json_strict(void **state)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
		{"{\"title\": 5}", "title must be a string, not an integer"},
		{"{\"title\": true}", "title must be a string, not a boolean"},
		{"{\"title\": 1.5}", "title must be a string, not a number"},
		{"{\"tags\": [\"a\", 7]}", "tags[1] must be a string, not an integer"},
		{"{\"labels\": {\"zone\": 1}}", "labels.zone must be a string, not an integer"},
		{"{\"items\": [{\"name\": 2}]}", "items[0].name must be a string, not an integer"},
		{"{\"inner\": {\"count\": \"3\"}}", "inner.count must be an integer, not a string"},
		{"{\"inner\": {\"count\": 3.0}}", "inner.count must be an integer, not a number"},
		{"{\"inner\": {\"count\": 4294967296}}", "inner.count is out of range (got 4294967296)"},
		{"{\"inner\": {\"flag\": 1}}", "inner.flag must be true or false, not an integer"},
		{"{\"inner\": 1}", "inner must be a mapping, not an integer"},
		{"{\"titel\": \"a\"}", "unknown key \"titel\""},
	};
	char err[256];
	struct doc d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = json_tokener_parse(cases[i].json);

		assert_non_null(o);
		memset(&d, 0, sizeof(d));
		err[0] = '\0';
		assert_int_equal(schema_decode(o, doc_fields, &d, NULL, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, cases[i].err);
		schema_free(doc_fields, &d);
		json_object_put(o);
	}
}

/* SCHEMA_INLINE: a table embedded in another (a request and its settings)
 * shares the object's keys; decode, encode, copy and free go through it. */
struct outer {
	char name[8];
	struct doc embedded;
};

static const struct schema_field outer_fields[] = {
	{"name", SCHEMA_STR, offsetof(struct outer, name), 8, 0, NULL, NULL, 0},
	{NULL, SCHEMA_INLINE, offsetof(struct outer, embedded), 0, 0, doc_fields, NULL, 0},
	{0},
};

static void test_inline(void **state)
{
	struct json_object *o = json_tokener_parse(
		"{\"name\": \"n\", \"title\": \"t\", \"inner\": {\"count\": 2}, \"tags\": [\"x\"]}");
	struct json_object *enc;
	struct outer x = {0}, y;
	char err[256] = "";

	(void)state;
	x.embedded.opt = FERRY_UNSET;
	assert_int_equal(schema_decode(o, outer_fields, &x, NULL, err, sizeof(err)), 0);
	assert_string_equal(x.name, "n");
	assert_string_equal(x.embedded.title, "t");
	assert_int_equal(x.embedded.in.count, 2);
	assert_int_equal(x.embedded.n_tags, 1);
	enc = schema_encode(outer_fields, &x);
	assert_string_equal(json_object_get_string(json_object_object_get(enc, "title")), "t");
	assert_string_equal(json_object_get_string(json_object_object_get(enc, "name")), "n");
	json_object_put(enc);
	memcpy(&y, &x, sizeof(y));
	assert_int_equal(schema_copy(outer_fields, &y, &x), 0);
	assert_ptr_not_equal(y.embedded.tags, x.embedded.tags);
	assert_string_equal(y.embedded.tags[0], "x");
	schema_free(outer_fields, &x);
	assert_null(x.embedded.tags);
	schema_free(outer_fields, &y);
	json_object_put(o);
	o = json_tokener_parse("{\"name\": \"n\", \"nmae\": 1}");
	assert_int_equal(schema_decode(o, outer_fields, &x, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown key \"nmae\"");
	json_object_put(o);
}

static void test_encode_copy(void **state)
{
	char err[256] = "";
	struct doc d, c;
	struct json_object *o, *o2, *v = NULL;

	(void)state;
	assert_int_equal(decode(text, &d, err, sizeof(err)), 0);
	o = schema_encode(doc_fields, &d);
	assert_non_null(o);
	assert_false(json_object_object_get_ex(o, "opt", NULL)); /* FERRY_UNSET left out */
	assert_true(json_object_object_get_ex(o, "inner", &v));
	assert_int_equal(json_object_get_int(json_object_object_get(v, "count")), 3);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "addr")),
			    "[::1]:7700");

	memcpy(&c, &d, sizeof(c));
	assert_int_equal(schema_copy(doc_fields, &c, &d), 0);
	assert_ptr_not_equal(c.items, d.items);
	assert_ptr_not_equal(c.labels[0].key, d.labels[0].key);
	schema_free(doc_fields, &d);
	c.opt = 5;
	o2 = schema_encode(doc_fields, &c);
	assert_int_equal(json_object_get_int(json_object_object_get(o2, "opt")), 5);
	json_object_object_del(o2, "opt");
	assert_true(json_object_equal(o, o2));
	schema_free(doc_fields, &c);
	json_object_put(o);
	json_object_put(o2);
}

static void test_report(void **state)
{
	struct json_object *root = yaml(text);
	struct schema_err e;
	char err[256];

	(void)state;
	assert_int_equal(schema_fail(&e, "items[1].name", "%s is %d", "x", 1), -EINVAL);
	schema_report(&e, root, "t.yaml", err, sizeof(err));
	assert_string_equal(err, "t.yaml:9: x is 1");
	schema_report(&e, NULL, "t.json", err, sizeof(err));
	assert_string_equal(err, "t.json: x is 1");
	schema_report(&e, NULL, NULL, err, sizeof(err));
	assert_string_equal(err, "x is 1");
	json_object_put(root);
}

static void test_checks(void **state)
{
	static const char *const set[] = {"a", "b", NULL};
	struct ferry_kv good[] = {{"k8s.io/zone", "eu-1"}}, dup[] = {{"a", "1"}, {"a", "2"}};
	struct ferry_migration_defaults m;
	struct schema_err e;
	char host[16];
	int port;

	(void)state;
	assert_int_equal(schema_check_name(&e, "name", "vm-1", 63), 0);
	assert_int_equal(schema_check_name(&e, "name", "VM", 63), -EINVAL);
	assert_string_equal(e.path, "name");
	assert_int_equal(schema_check_name(&e, "name", "", 63), -EINVAL);
	assert_string_equal(e.msg, "name is required");
	/* DNS-1123 labels, the names of VMs and migrations. */
	{
		static const char *const ok[] = {"a", "g1", "0a", "vm-1", "a-b-c", "9"};
		static const char *const bad[] = {"Bad_Name", "-a", "a-", "A", "a.b", "a b", "-",
						  "a_b", "\xc3\xa9"};
		char long_ok[64], too_long[65];

		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			assert_int_equal(schema_check_dns_label(&e, "vm", ok[i]), 0);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(schema_check_dns_label(&e, "vm", bad[i]), -EINVAL);
			assert_string_equal(e.path, "vm");
			assert_non_null(strstr(e.msg, "DNS-1123 label"));
		}
		memset(long_ok, 'a', 63);
		long_ok[63] = '\0';
		assert_int_equal(schema_check_dns_label(&e, "vm", long_ok), 0);
		memset(too_long, 'a', 64);
		too_long[64] = '\0';
		assert_int_equal(schema_check_dns_label(&e, "vm", too_long), -EINVAL);
		assert_int_equal(schema_check_dns_label(&e, "vm", ""), -EINVAL);
		assert_string_equal(e.msg, "vm is required");
		assert_int_equal(schema_check_dns_label(&e, "metadata.name", "Bad_Name"), -EINVAL);
		assert_string_equal(e.msg, "metadata.name: \"Bad_Name\" is not a valid name: a DNS-1123 "
					   "label is at most 63 characters of lowercase a-z, 0-9 and '-', "
					   "starting and ending with a letter or digit");
	}
	assert_int_equal(schema_check_labels(&e, "labels", good, 1), 0);
	assert_int_equal(schema_check_labels(&e, "labels", dup, 2), -EINVAL);
	assert_string_equal(e.msg, "labels: duplicate key \"a\"");
	assert_int_equal(schema_check_enum(&e, "x", "b", set, "a, b"), 0);
	assert_int_equal(schema_check_enum(&e, "x", "c", set, "a, b"), -EINVAL);
	assert_string_equal(e.msg, "x must be one of a, b (got \"c\")");
	assert_int_equal(schema_check_abs_path(&e, "p", "rel"), -EINVAL);
	assert_string_equal(e.msg, "p must be an absolute path (got \"rel\")");

	assert_int_equal(schema_parse_hostport("h:1", host, sizeof(host), &port), 0);
	assert_string_equal(host, "h");
	assert_int_equal(port, 1);
	assert_int_equal(schema_parse_hostport("[fe80::1]:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::1");
	assert_int_equal(schema_parse_hostport("fe80::1:80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(schema_parse_hostport("h:0", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(schema_parse_hostport("h:+80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(schema_parse_hostport(":80", host, sizeof(host), &port), -EINVAL);

	ferry_migration_unset(&m);
	assert_int_equal(m.escalate_after_s, FERRY_UNSET);
	assert_int_equal(m.page_cache_mib, FERRY_UNSET);
	assert_int_equal(ferry_migration_check(&e, "migration", &m, 1), 0);
	assert_int_equal(ferry_migration_check(&e, "migration", &m, 0), -EINVAL);
	m.multifd_channels = 65;
	assert_int_equal(ferry_migration_check(&e, "policies[0].migration", &m, 1), -EINVAL);
	assert_string_equal(e.path, "policies[0].migration.multifd_channels");
	assert_string_equal(e.msg,
			    "policies[0].migration.multifd_channels must be between 0 and 64 (got 65)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_json_strict),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_encode_copy),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
