/* The route table (agent/routes.c): its matcher, its role rule, and that
 * docs/api.md lists exactly its rows and its forwarded ones. Pure: no
 * agent, no HTTP. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/routes.h"

#define API_DOC FERRY_SOURCE_DIR "/docs/api.md"

/* Every row is well formed: a known method, params as whole segments, a
 * handler (or a stream), a role, and no two rows for one method+pattern. */
static void table_sane(void **state)
{
	(void)state;
	for (size_t i = 0; i < route_count; i++) {
		const struct route *rt = &route_table[i];
		unsigned params = 0;

		assert_true(!strcmp(rt->method, "GET") || !strcmp(rt->method, "POST") ||
			    !strcmp(rt->method, "DELETE"));
		assert_int_equal(rt->pattern[0], '/');
		for (const char *s = rt->pattern; *s; s++) {
			if (*s != '{')
				continue;
			assert_int_equal(s[-1], '/');
			s = strchr(s, '}');
			assert_non_null(s);
			assert_true(s[1] == '/' || s[1] == '\0');
			params++;
		}
		assert_true(params <= ROUTE_PARAMS_MAX);
		assert_true(rt->role >= ROLE_VIEWER);
		if (rt->flags & ROUTE_EVENTS)
			assert_true(params == 1 && !rt->fn && !strcmp(rt->method, "GET"));
		else
			assert_non_null(rt->fn);
		for (size_t j = 0; j < i; j++)
			assert_false(!strcmp(rt->method, route_table[j].method) &&
				     !strcmp(rt->pattern, route_table[j].pattern));
	}
}

/* The rule docs/api.md states: reading is for every role, starting and
 * cancelling migrations for migrators, changing VMs for admins. */
static void roles(void **state)
{
	(void)state;
	for (size_t i = 0; i < route_count; i++) {
		const struct route *rt = &route_table[i];
		enum route_role want = !strcmp(rt->method, "GET")                    ? ROLE_VIEWER
				       : !strncmp(rt->pattern, "/v1/migrations", 14) ? ROLE_MIGRATOR
										     : ROLE_ADMIN;

		assert_int_equal(rt->role, want);
	}
	assert_string_equal(route_role_name(ROLE_MIGRATOR), "migrator");
}

static void params_extracted(void **state)
{
	struct route_params p;
	char allow[64];
	unsigned st;
	const struct route *rt;

	(void)state;
	rt = route_find("GET", "/v1/vms/g1/candidates", &p, &st, allow, sizeof(allow));
	assert_non_null(rt);
	assert_int_equal(st, 200);
	assert_ptr_equal(rt->fn, api_vm_candidates);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.v[0], "g1");
	rt = route_find("GET", "/v1/migrations/0b7e-11/events", &p, &st, allow, sizeof(allow));
	assert_non_null(rt);
	assert_true(rt->flags & ROUTE_EVENTS);
	assert_string_equal(p.v[0], "0b7e-11");
	rt = route_find("DELETE", "/v1/migrations/g1", &p, &st, allow, sizeof(allow));
	assert_non_null(rt);
	assert_ptr_equal(rt->fn, api_migration_cancel);
	assert_string_equal(p.v[0], "g1");
	/* A VM may be called like a route's last segment. */
	rt = route_find("GET", "/v1/vms/candidates", &p, &st, allow, sizeof(allow));
	assert_ptr_equal(rt->fn, api_vm);
	assert_string_equal(p.v[0], "candidates");
	rt = route_find("GET", "/v1/node", &p, &st, allow, sizeof(allow));
	assert_ptr_equal(rt->fn, api_node);
	assert_int_equal(p.n, 0);
	assert_true(route_match_path("/a/{x}/b/{y}", "/a/1/b/22", &p));
	assert_int_equal(p.n, 2);
	assert_string_equal(p.v[1], "22");
}

/* No prefix, no trailing slash or garbage, no empty, overlong or
 * multi-segment parameter: 404. */
static void unknown_paths(void **state)
{
	static const char *const bad[] = {
		"/v1/vmsX", "/v1/vms/", "/v1/vms/g1/", "/v1/vms/a/b", "/v1/vms//stop", "/v1/vms/g1/stopX",
		"/v1/nodeX", "/v1/node/", "/v1", "", "/", "v1/node", "/v1/migrations/id/events/x",
		"/v1/cluster", "/metricsX", "/v1/metrics", "/v1/nodes/a/vms",
		"/v1/vms/0123456789012345678901234567890123456789012345678901234567890123",
	};
	struct route_params p;
	char allow[64];
	unsigned st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(route_find("GET", bad[i], &p, &st, allow, sizeof(allow)));
		assert_int_equal(st, 404);
		assert_null(route_find("POST", bad[i], &p, &st, allow, sizeof(allow)));
		assert_int_equal(st, 404);
	}
	/* 63 bytes is the longest name. */
	assert_non_null(route_find("GET", "/v1/vms/012345678901234567890123456789012345678901234567890123456789012", &p,
			     &st, allow, sizeof(allow)));
}

/* A known path asked with another method: 405 and what it takes. */
static void wrong_method(void **state)
{
	struct route_params p;
	char allow[64];
	unsigned st;

	(void)state;
	assert_null(route_find("POST", "/v1/vms/g1", &p, &st, allow, sizeof(allow)));
	assert_int_equal(st, 405);
	assert_string_equal(allow, "GET, DELETE");
	assert_null(route_find("GET", "/v1/vms/g1/stop", &p, &st, allow, sizeof(allow)));
	assert_int_equal(st, 405);
	assert_string_equal(allow, "POST");
	assert_null(route_find("DELETE", "/v1/vms", &p, &st, allow, sizeof(allow)));
	assert_string_equal(allow, "GET, POST");
	assert_null(route_find("PUT", "/metrics", &p, &st, allow, sizeof(allow)));
	assert_int_equal(st, 405);
	assert_string_equal(allow, "GET");
	assert_null(route_find("HEAD", "/v1/node", &p, &st, NULL, 0));
	assert_int_equal(st, 405);
}

/* ---- docs/api.md --------------------------------------------------------- */

/* "/v1/vms/NAME/stop" and "/v1/vms/{name}/stop" both become
 * "/v1/vms/{}/stop": the doc writes a parameter in capitals. */
static void normalize(const char *path, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 3 < outlen;) {
		if (path[i] == '{' || (path[i] >= 'A' && path[i] <= 'Z' && i && path[i - 1] == '/')) {
			while (i < len && path[i] != '/')
				i++;
			out[o++] = '{';
			out[o++] = '}';
		} else {
			out[o++] = path[i++];
		}
	}
	out[o] = '\0';
}

struct doc_route {
	char method[8];
	char path[128];
	int seen;
};

/* "GET/POST /v1/x/NAME[?vm=]" into one entry per method. */
static size_t parse_span(const char *s, size_t len, struct doc_route *out, size_t max, size_t n)
{
	const char *sp = memchr(s, ' ', len), *m = s;
	size_t plen;

	if (!sp || sp + 1 >= s + len || sp[1] != '/')
		return n;
	plen = (size_t)(s + len - sp - 1);
	if (memchr(sp + 1, '[', plen))
		plen = (size_t)((const char *)memchr(sp + 1, '[', plen) - sp - 1);
	while (m < sp && n < max) {
		size_t ml = strcspn(m, "/ ");

		if (ml >= sizeof(out[n].method) || ml == 0)
			return n;
		for (size_t k = 0; k < ml; k++)
			if (m[k] < 'A' || m[k] > 'Z')
				return n;
		snprintf(out[n].method, sizeof(out[n].method), "%.*s", (int)ml, m);
		normalize(sp + 1, plen, out[n].path, sizeof(out[n].path));
		out[n++].seen = 0;
		m += ml + (m[ml] == '/');
	}
	return n;
}

static char *read_doc(void)
{
	FILE *f = fopen(API_DOC, "r");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* The route rows of the doc's tables: a row whose first cell is one
 * code span "METHOD[/METHOD] /path". */
static size_t doc_routes(const char *doc, struct doc_route *out, size_t max)
{
	size_t n = 0;

	for (const char *l = doc; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *end;

		if (strncmp(l, "| `", 3))
			continue;
		end = strstr(l + 3, "` |");
		if (!end || memchr(l + 3, '`', (size_t)(end - l - 3)) || memchr(l, '\n', (size_t)(end - l)))
			continue;
		n = parse_span(l + 3, (size_t)(end - l - 3), out, max, n);
	}
	return n;
}

/* The code spans after "Forwarded routes:" up to the end of that sentence. */
static size_t doc_forwarded(const char *doc, struct doc_route *out, size_t max)
{
	const char *s = strstr(doc, "Forwarded routes:"), *end;
	size_t n = 0;

	assert_non_null(s);
	end = strstr(s, ". ");
	assert_non_null(end);
	while ((s = memchr(s, '`', (size_t)(end - s))) != NULL) {
		const char *close = memchr(s + 1, '`', (size_t)(end - s - 1));

		assert_non_null(close);
		n = parse_span(s + 1, (size_t)(close - s - 1), out, max, n);
		s = close + 1;
	}
	return n;
}

static int doc_has(struct doc_route *d, size_t n, const struct route *rt)
{
	char pat[128];
	int hit = 0;

	normalize(rt->pattern, strlen(rt->pattern), pat, sizeof(pat));
	for (size_t i = 0; i < n; i++)
		if (!strcmp(d[i].method, rt->method) && !strcmp(d[i].path, pat)) {
			d[i].seen = 1;
			hit = 1;
		}
	return hit;
}

/* Each row is documented, and each documented route (but the gateway's
 * own /v1/nodes/NODE/ROUTE) is a row. */
static void doc_lists_the_table(void **state)
{
	struct doc_route d[64];
	char *doc = read_doc();
	size_t n = doc_routes(doc, d, 64);

	(void)state;
	assert_true(n >= route_count);
	for (size_t i = 0; i < route_count; i++)
		if (!doc_has(d, n, &route_table[i]))
			fail_msg("%s %s is not in docs/api.md", route_table[i].method, route_table[i].pattern);
	for (size_t i = 0; i < n; i++)
		if (!d[i].seen && strncmp(d[i].path, "/v1/nodes/", 10))
			fail_msg("docs/api.md lists %s %s, which is no route", d[i].method, d[i].path);
	free(doc);
}

/* The doc's list of forwarded routes is the ROUTE_FORWARD rows. */
static void doc_lists_the_forwarded(void **state)
{
	struct doc_route d[64];
	char *doc = read_doc();
	size_t n = doc_forwarded(doc, d, 64);

	(void)state;
	assert_true(n > 0);
	for (size_t i = 0; i < route_count; i++) {
		const struct route *rt = &route_table[i];

		if (doc_has(d, n, rt) != !!(rt->flags & ROUTE_FORWARD))
			fail_msg("%s %s: docs/api.md's forwarded list disagrees", rt->method, rt->pattern);
	}
	for (size_t i = 0; i < n; i++)
		if (!d[i].seen)
			fail_msg("docs/api.md forwards %s %s, which is no route", d[i].method, d[i].path);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_sane),
		cmocka_unit_test(roles),
		cmocka_unit_test(params_extracted),
		cmocka_unit_test(unknown_paths),
		cmocka_unit_test(wrong_method),
		cmocka_unit_test(doc_lists_the_table),
		cmocka_unit_test(doc_lists_the_forwarded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
