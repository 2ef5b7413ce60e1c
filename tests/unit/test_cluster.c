/* The gateway's URL split (/v1/nodes/NODE/...), the name-conflict rule of
 * the cluster view and the console's embedded files: pure functions, no
 * agents needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "agent/cluster.h"
#include "agent/console.h"

static void split_ok(void **state)
{
	char node[64], path[512];

	(void)state;
	assert_int_equal(cluster_split_url("/v1/nodes/node-b/vms/g1/candidates", node, sizeof(node), path,
					   sizeof(path)), 0);
	assert_string_equal(node, "node-b");
	assert_string_equal(path, "/v1/vms/g1/candidates");
	assert_int_equal(cluster_split_url("/v1/nodes/n/migrations", node, sizeof(node), path, sizeof(path)), 0);
	assert_string_equal(node, "n");
	assert_string_equal(path, "/v1/migrations");
}

/* No node, no route, a nested gateway or cluster route, an overlong node:
 * refused, so a request cannot bounce between nodes. */
static void split_refused(void **state)
{
	char node[8], path[64];

	(void)state;
	assert_int_equal(cluster_split_url("/v1/vms/g1", node, sizeof(node), path, sizeof(path)), -EINVAL);
	assert_int_equal(cluster_split_url("/v1/nodes/node-b", node, sizeof(node), path, sizeof(path)), -EINVAL);
	assert_int_equal(cluster_split_url("/v1/nodes//vms", node, sizeof(node), path, sizeof(path)), -EINVAL);
	assert_int_equal(cluster_split_url("/v1/nodes/a/nodes/b/vms", node, sizeof(node), path, sizeof(path)), -EINVAL);
	assert_int_equal(cluster_split_url("/v1/nodes/a/cluster/vms", node, sizeof(node), path, sizeof(path)), -EINVAL);
	assert_int_equal(cluster_split_url("/v1/nodes/much-too-long/vms", node, sizeof(node), path, sizeof(path)),
			 -EINVAL);
}

/* An entry as op "vms" gives it: name g1 on node, in state, migrating to
 * target (or NULL). */
static struct json_object *entry(const char *node, const char *state, const char *target)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string("g1"));
	json_object_object_add(o, "node", json_object_new_string(node));
	json_object_object_add(o, "state", json_object_new_string(state));
	if (target) {
		struct json_object *m = json_object_new_object();

		json_object_object_add(m, "targetNode", json_object_new_string(target));
		json_object_object_add(o, "migration", m);
	}
	return o;
}

static int conflict(const char *xn, const char *xs, const char *xt, const char *yn, const char *ys,
		    const char *yt)
{
	struct json_object *x = entry(xn, xs, xt), *y = entry(yn, ys, yt);
	int r = cluster_vms_conflict(x, y);

	assert_int_equal(cluster_vms_conflict(y, x), r); /* symmetric */
	json_object_put(x);
	json_object_put(y);
	return r;
}

/* Two guests of one name on two nodes are a conflict; one VM in flight
 * (source Migrating to the target that runs or receives it), or an entry
 * that holds no guest (Departed, Incoming, Stopped), is not. */
static void conflicts(void **state)
{
	(void)state;
	assert_true(conflict("node-a", "Running", NULL, "node-b", "Running", NULL));
	assert_true(conflict("node-a", "Paused", NULL, "node-b", "Starting", NULL));
	assert_true(conflict("node-a", "Migrating", "node-c", "node-b", "Running", NULL));
	assert_false(conflict("node-a", "Migrating", "node-b", "node-b", "Running", NULL));
	assert_false(conflict("node-a", "Migrating", "node-b", "node-b", "Incoming", NULL));
	assert_false(conflict("node-a", "Departed", NULL, "node-b", "Running", NULL));
	assert_false(conflict("node-a", "Stopped", NULL, "node-b", "Running", NULL));
	assert_false(conflict("node-a", "Running", NULL, "node-a", "Running", NULL));
}

static const struct console_asset *asset(const char *path)
{
	for (size_t i = 0; i < console_n_assets; i++)
		if (!strcmp(console_assets[i].path, path))
			return &console_assets[i];
	return NULL;
}

/* The build embedded the console, byte for byte with a NUL after it, and
 * each file has the type a browser needs (module scripts demand a
 * JavaScript type under nosniff). */
static void assets_embedded(void **state)
{
	const struct console_asset *a;

	(void)state;
	a = asset("/console/index.html");
	assert_non_null(a);
	assert_string_equal(a->type, "text/html; charset=utf-8");
	assert_int_equal(a->data[a->len], 0);
	assert_non_null(strstr((const char *)a->data, "Virtual Machines"));
	a = asset("/console/console.js");
	assert_non_null(a);
	assert_string_equal(a->type, "text/javascript; charset=utf-8");
	assert_non_null(asset("/console/console.css"));
	assert_non_null(asset("/console/chart.js"));
	assert_non_null(asset("/console/api.js"));
	assert_string_equal(asset("/console/favicon.svg")->type, "image/svg+xml");
	assert_true(console_is_path("/"));
	assert_true(console_is_path("/console/x.js"));
	assert_false(console_is_path("/v1/vms"));
	assert_false(console_is_path("/consolex"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(split_ok),
		cmocka_unit_test(split_refused),
		cmocka_unit_test(conflicts),
		cmocka_unit_test(assets_embedded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
