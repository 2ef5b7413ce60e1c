/* The REST API's routes: one table (routes.c) that the HTTP router
 * (api.c), the cluster gateway and the peer op "api" (cluster.c) and the
 * role checks all read; tests/unit/test_routes.c checks docs/api.md
 * against it.
 *
 * A pattern is literal text and {param} segments, "/v1/vms/{name}/stop".
 * A parameter is one whole segment: 1 to ROUTE_PARAM_MAX - 1 bytes, no
 * '/'. Nothing else matches: no prefix ("/v1/vmsX"), no trailing slash,
 * no extra segment.
 *
 * The gateway, "/v1/nodes/NODE/REST", is not a row: it runs the row that
 * "/v1/REST" matches, with that row's role, here when NODE is this node
 * and on NODE over the peer link when the row is ROUTE_FORWARD. A row
 * marked ROUTE_OWNED_VM or ROUTE_OWNED_MIG asked plainly goes the same
 * way to the node that owns its VM or migration, when that is not this
 * one. */
#ifndef FERRY_AGENT_ROUTES_H
#define FERRY_AGENT_ROUTES_H

#include <stddef.h>

struct agent;
struct json_object;

/* Who may call a route: ordered, each role may do what the lower ones may. */
enum route_role { ROLE_NONE, ROLE_VIEWER, ROLE_MIGRATOR, ROLE_ADMIN };

const char *route_role_name(enum route_role r);

#define ROUTE_PARAMS_MAX 2
#define ROUTE_PARAM_MAX 64

/* The {param}s of a matched path, in pattern order, each NUL-terminated. */
struct route_params {
	unsigned n;
	char v[ROUTE_PARAMS_MAX][ROUTE_PARAM_MAX];
};

/* One call of a route, whoever transports it (HTTP here, the peer op "api"). */
struct route_call {
	struct agent *a;
	const struct route_params *p;
	const char *vm;           /* the ?vm= query, or NULL */
	struct json_object *body; /* the request body (a JSON object), or NULL */
	enum route_role role;     /* the caller's (on a peer: the row's, checked by the gateway) */
	const char *who;          /* the caller for the records: "root@unix (admin)", through a
				     gateway "alice (migrator) via node-a"; NULL: not told */
	const char *where;        /* "this node" or "node NAME", for messages */
	int force;                /* ?force=true (POST /v1/vms: create over an unreachable peer) */
};

/* A handler's answer: status and body (the caller owns it; NULL is
 * answered as JSON null here and as not found over the peer link), or
 * text of type instead (malloc'ed; this node only). */
struct route_reply {
	unsigned status;
	struct json_object *body;
	char *text;
	const char *type;
};

/* 0 with out filled (out->status is 200 unless the handler says else), or
 * -errno with a message in err (api.c maps it to the HTTP status). */
typedef int route_fn(const struct route_call *c, struct route_reply *out, char *err, size_t errlen);

#define ROUTE_FORWARD 1u /* the gateway may run it on the node that owns the VM */
#define ROUTE_EVENTS 2u  /* a server-sent event stream of migration {id}: no fn,
			    the transport streams it (api.c here, cluster.c relayed) */
/* Asked without /v1/nodes/NODE/ on a node that does not own what the call
 * names, the gateway finds the node that does and forwards it there
 * (cluster_locate): */
#define ROUTE_OWNED_VM 4u      /* {name}, or the body's "vm", names a VM */
#define ROUTE_OWNED_MIG 8u     /* {id} names a migration (id, or for DELETE its name or VM) */
#define ROUTE_DEPARTED_HERE 16u /* a VM Departed from here is still answered here */
#define ROUTE_NO_BODY 32u      /* takes no body: one with a key is refused before any forwarding */

struct route {
	const char *method;   /* "GET", "POST", "DELETE" */
	const char *pattern;
	enum route_role role; /* the least role that may call it */
	route_fn *fn;         /* NULL for ROUTE_EVENTS */
	unsigned flags;
};

extern const struct route route_table[];
extern const size_t route_count;

/* Nonzero when path matches pattern, with its {param}s in p. Pure. */
int route_match_path(const char *pattern, const char *path, struct route_params *p);

/* The row for method and path, with its params in p (*status 200); or
 * NULL with *status 404 (no row has this path) or 405 (rows have it, for
 * other methods: allow lists them, "GET, DELETE"). Pure. */
const struct route *route_find(const char *method, const char *path, struct route_params *p,
			       unsigned *status, char *allow, size_t allowlen);

/* The handlers (api.c). */
route_fn api_node, api_vms, api_vm_create, api_vm, api_vm_delete, api_vm_candidates, api_vm_stop,
	api_vm_resume, api_migrations, api_migrate, api_migration, api_migration_cancel,
	api_migration_samples, api_whoami, api_metrics, api_cluster_vms, api_cluster_nodes,
	api_cluster_migrations;
/* The cordon and the drain (drain.c). */
route_fn api_cordon, api_uncordon, api_drain_start, api_drain_get, api_drain_stop;

#endif
