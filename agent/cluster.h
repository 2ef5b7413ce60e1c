/* The cluster as one ferryd sees it: this node and its configured peers.
 *
 * The web console signs in to one ferryd and shows and acts on every VM of
 * every node. Instead of the browser holding a token per node, the ferryd
 * it talks to is a gateway: it asks its peers over the authenticated peer
 * link (the cluster key, as for migrations) and forwards the API calls
 * the route table marks ROUTE_FORWARD (agent/routes.c) to the node that
 * owns a VM. The caller's role is checked once, on the gateway, against
 * the row; a peer trusts the cluster key, as it does for prepare.
 *
 *   GET /v1/cluster/vms                 every VM of every node, one entry per VM
 *                                       (per node for a name in conflict)
 *   GET /v1/cluster/nodes               each node: reachable or why not, its VMs
 *   GET /v1/cluster/migrations[?vm=N]   every node's source records
 *   ANY /v1/nodes/NODE/<route>          <route> as if asked on NODE
 * Peer ops (docs/protocol.md): "vms" and "api". */
#ifndef FERRY_AGENT_CLUSTER_H
#define FERRY_AGENT_CLUSTER_H

#include <stddef.h>

struct agent;
struct peer_link;
struct json_object;
struct MHD_Response;

/* {"node": this node, "nodes": [{name, reachable, reason?}], "vms": [...]}:
 * one entry per name, or, when two nodes each hold a guest of that name
 * (a conflict), each of those entries with conflict: true and
 * conflictWith: [the other nodes]. */
struct json_object *cluster_vms_json(struct agent *a);
/* Nonzero when entries x and y of one name (as op "vms" gives them, with
 * "node", "state" and "migration") are two guests on two nodes, not one VM
 * migrating between them. Pure. */
int cluster_vms_conflict(struct json_object *x, struct json_object *y);
/* [{name, address, reachable, reason?, cordoned, vms?, version?}]: this
 * node, then each peer as asked now. */
struct json_object *cluster_nodes_json(struct agent *a);
/* 0 when no peer (but except, may be NULL) reports a VM name (other than
 * Departed); -EEXIST with "VM g1 already exists on node node-b"; or, when
 * a peer cannot be asked and !force, -EHOSTUNREACH naming it. */
int cluster_name_taken(struct agent *a, const char *name, const char *except, int force, char *err,
		       size_t errlen);
/* For a row marked ROUTE_OWNED_VM or ROUTE_OWNED_MIG asked on this node
 * without a /v1/nodes/NODE/ prefix: node "" when this node owns what the
 * call names (or the row names nothing), else the peer that does; or
 * -ENOENT "no VM named g1 on any node; nodes asked: ...; unreachable:
 * ...", -EBUSY when two nodes hold a guest of that name. */
struct route;
struct route_params;
int cluster_locate(struct agent *a, const struct route *rt, const struct route_params *p,
		   struct json_object *body, char *node, size_t nodelen, char *err, size_t errlen);
/* The migrations of vm (NULL: all) as their source nodes recorded them,
 * newest first, from this node and every reachable peer. */
struct json_object *cluster_migrations_json(struct agent *a, const char *vm);

/* "/v1/nodes/NODE/REST": NODE into node and "/v1/REST" into path; -EINVAL
 * when url is not of that form (or nests another /nodes/). */
int cluster_split_url(const char *url, char *node, size_t nodelen, char *path, size_t pathlen);
/* Runs method+path (a ROUTE_FORWARD row) on peer node for who (the
 * caller as records name them, "alice (migrator) via node-a"); 0 with
 * the HTTP status and answer, or -errno with a message (the peer's own
 * error, or -EHOSTUNREACH when it cannot be asked). */
int cluster_forward(struct agent *a, const char *node, const char *method, const char *path,
		    const char *vm, struct json_object *body, const char *who, unsigned *status,
		    struct json_object **out, char *err, size_t errlen);
/* The server-sent event stream of migration id on peer node, relayed. */
int cluster_events(struct agent *a, const char *node, const char *id, struct MHD_Response **out,
		   char *err, size_t errlen);

/* Peer side: answers op "vms" or "api" (a ROUTE_FORWARD row, else
 * not_found) on an accepted, authenticated link. Does not close it. */
void cluster_peer_serve(struct agent *a, struct peer_link *pl, const char *op,
			struct json_object *msg);

/* The agent's one way to ask a peer: a link to node's configured address
 * that the handshake proved is node (any other name is refused), with req
 * sent on it. 0, or -ENOENT (not in peers:), -EHOSTUNREACH with err. */
int cluster_peer_open(struct agent *a, const char *node, struct json_object *req, int timeout_ms,
		      struct peer_link **out, char *err, size_t errlen);

#endif
