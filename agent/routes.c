/* The route table and its matcher (see routes.h). docs/api.md lists the
 * same rows; tests/unit/test_routes.c keeps the two in step. */
#include "agent/routes.h"

#include <stdio.h>
#include <string.h>

/* method, pattern, least role, handler, flags. Reading is for every role;
 * starting and cancelling migrations needs the migrator role (the product
 * rule: "only holders of the migrate role or administrators"); creating,
 * stopping and deleting VMs, cordoning and draining the node is for
 * administrators. */
const struct route route_table[] = {
	{"GET", "/v1/node", ROLE_VIEWER, api_node, ROUTE_FORWARD},
	{"GET", "/v1/whoami", ROLE_VIEWER, api_whoami, 0},
	{"POST", "/v1/cordon", ROLE_ADMIN, api_cordon, ROUTE_FORWARD},
	{"POST", "/v1/uncordon", ROLE_ADMIN, api_uncordon, ROUTE_FORWARD},
	{"POST", "/v1/drain", ROLE_ADMIN, api_drain_start, ROUTE_FORWARD},
	{"GET", "/v1/drain", ROLE_VIEWER, api_drain_get, ROUTE_FORWARD},
	{"DELETE", "/v1/drain", ROLE_ADMIN, api_drain_stop, ROUTE_FORWARD},
	{"GET", "/v1/vms", ROLE_VIEWER, api_vms, ROUTE_FORWARD},
	{"POST", "/v1/vms", ROLE_ADMIN, api_vm_create, 0},
	{"GET", "/v1/vms/{name}", ROLE_VIEWER, api_vm, ROUTE_FORWARD | ROUTE_OWNED_VM | ROUTE_DEPARTED_HERE},
	{"DELETE", "/v1/vms/{name}", ROLE_ADMIN, api_vm_delete, ROUTE_FORWARD | ROUTE_OWNED_VM | ROUTE_DEPARTED_HERE | ROUTE_NO_BODY},
	{"GET", "/v1/vms/{name}/candidates", ROLE_VIEWER, api_vm_candidates, ROUTE_FORWARD | ROUTE_OWNED_VM},
	{"POST", "/v1/vms/{name}/stop", ROLE_ADMIN, api_vm_stop, ROUTE_FORWARD | ROUTE_OWNED_VM | ROUTE_NO_BODY},
	{"POST", "/v1/vms/{name}/resume", ROLE_ADMIN, api_vm_resume, ROUTE_FORWARD | ROUTE_OWNED_VM | ROUTE_NO_BODY},
	{"GET", "/v1/migrations", ROLE_VIEWER, api_migrations, ROUTE_FORWARD},
	{"POST", "/v1/migrations", ROLE_MIGRATOR, api_migrate, ROUTE_FORWARD | ROUTE_OWNED_VM},
	{"GET", "/v1/migrations/{id}", ROLE_VIEWER, api_migration, ROUTE_FORWARD | ROUTE_OWNED_MIG},
	{"DELETE", "/v1/migrations/{id}", ROLE_MIGRATOR, api_migration_cancel, ROUTE_FORWARD | ROUTE_OWNED_MIG | ROUTE_NO_BODY},
	{"GET", "/v1/migrations/{id}/samples", ROLE_VIEWER, api_migration_samples, ROUTE_FORWARD | ROUTE_OWNED_MIG},
	{"GET", "/v1/migrations/{id}/events", ROLE_VIEWER, NULL, ROUTE_FORWARD | ROUTE_EVENTS | ROUTE_OWNED_MIG},
	{"GET", "/v1/cluster/vms", ROLE_VIEWER, api_cluster_vms, 0},
	{"GET", "/v1/cluster/nodes", ROLE_VIEWER, api_cluster_nodes, 0},
	{"GET", "/v1/cluster/migrations", ROLE_VIEWER, api_cluster_migrations, 0},
	{"GET", "/metrics", ROLE_VIEWER, api_metrics, 0},
};
const size_t route_count = sizeof(route_table) / sizeof(route_table[0]);

const char *route_role_name(enum route_role r)
{
	return r == ROLE_ADMIN ? "admin" : r == ROLE_MIGRATOR ? "migrator" : r == ROLE_VIEWER ? "viewer" : "none";
}

/* Walks pattern and path together: literal bytes must be equal, a
 * {param} takes the path up to the next '/' (at least one byte). */
int route_match_path(const char *pattern, const char *path, struct route_params *p)
{
	p->n = 0;
	while (*pattern) {
		if (*pattern == '{') {
			const char *close = strchr(pattern, '}');
			size_t n = strcspn(path, "/");

			if (!close || !n || n >= ROUTE_PARAM_MAX || p->n >= ROUTE_PARAMS_MAX)
				return 0;
			memcpy(p->v[p->n], path, n);
			p->v[p->n++][n] = '\0';
			pattern = close + 1;
			path += n;
		} else if (*pattern++ != *path++) {
			return 0;
		}
	}
	return *path == '\0';
}

const struct route *route_find(const char *method, const char *path, struct route_params *p,
			       unsigned *status, char *allow, size_t allowlen)
{
	struct route_params tmp;
	size_t used = 0;

	*status = 404;
	if (allowlen)
		allow[0] = '\0';
	for (size_t i = 0; i < route_count; i++) {
		const struct route *rt = &route_table[i];

		if (!route_match_path(rt->pattern, path, &tmp))
			continue;
		if (!strcmp(rt->method, method)) {
			*p = tmp;
			*status = 200;
			return rt;
		}
		*status = 405;
		if (used < allowlen) {
			int n = snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", rt->method);

			used += n > 0 ? (size_t)n : 0;
		}
	}
	return NULL;
}
