/* ferryctl nodes: the cluster's nodes as the asked ferryd sees them
 * (GET /v1/cluster/nodes): reachable or why not, cordoned, VM count. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/nodes.h"

static void print_table(struct json_object *arr)
{
	printf("%-16s %-22s %-10s %-9s %-4s %s\n", "NAME", "ADDRESS", "REACHABLE", "CORDONED", "VMS", "VERSION");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *n = json_object_array_get_idx(arr, i);
		int up = json_object_get_boolean(json_object_object_get(n, "reachable"));
		char vms[16] = "-";

		if (json_object_object_get(n, "vms"))
			snprintf(vms, sizeof(vms), "%lld", (long long)jint(n, "vms"));
		printf("%-16s %-22s %-10s %-9s %-4s %s\n", jstr(n, "name"), jstr(n, "address"), up ? "yes" : "no",
		       json_object_get_boolean(json_object_object_get(n, "cordoned")) ? "yes" : "no", vms,
		       up ? jstr(n, "version") : "-");
		if (!up)
			printf("  %s: %s\n", jstr(n, "name"), jstr(n, "reason"));
	}
}

int cmd_nodes(struct ctl *c, int argc, char **argv)
{
	struct json_object *out = NULL;
	long st;
	int r = 0;

	if (argc > 0) {
		fprintf(stderr, "ferryctl nodes takes no arguments (got \"%s\")\n", argv[0]);
		return 2;
	}
	st = call(c, "GET", "/v1/cluster/nodes", NULL, &out);
	if (st != 200)
		r = api_failed(st, out);
	else if (ctl_document(c))
		print_json(out);
	else
		print_table(out);
	json_object_put(out);
	return r;
}
