/* The cluster view and the API gateway to peers (see cluster.h).
 *
 * Every question to a peer is one authenticated link: connect, handshake,
 * one CONTROL request, its answer (or, for an event stream, a series of
 * answers), close. Peers are asked one after the other with short
 * deadlines, so an unreachable node costs the console at most a second and
 * shows up as "unreachable" instead of failing the whole page. */
#include "agent/cluster.h"

#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/routes.h"
#include "schema/check.h"
#include "transport/peer.h"
#include "util/log.h"

#define CLUSTER_CONNECT_MS 1000
/* A forwarded migrate judges the owner's peers before it answers. */
#define CLUSTER_REPLY_MS 30000
/* The peer sends a stream event every 500 ms; silence this long ends it. */
#define CLUSTER_STREAM_IDLE_MS 30000
#define STREAM_INTERVAL_MS 500

/* What the list needs of a VM and of its migration: the cluster answer
 * stays small (one peer message carries a whole node) and holds no local
 * paths of another host. */
static const char *const vm_keys[] = {"name", "node", "state", "liveMigratable", "notMigratableReason",
				      "memoryMiB", "lastMigration", NULL};
static const char *const mig_keys[] = {"id", "name", "role", "phase", "mode", "sourceNode", "targetNode",
				       "startTimestamp", "endTimestamp", "completed", "failed",
				       "abortRequested", "abortStatus", "failureReason", "ramTotal",
				       "ramRemaining", "ramTransferred", "totalMs", "pauseMs", NULL};

static struct json_object *pick(struct json_object *from, const char *const *keys)
{
	struct json_object *o = json_object_new_object(), *v;

	for (size_t i = 0; keys[i]; i++)
		if (json_object_object_get_ex(from, keys[i], &v))
			json_object_object_add(o, keys[i], json_object_get(v));
	return o;
}

static const char *jstr(struct json_object *o, const char *k)
{
	return json_object_get_string(json_object_object_get(o, k));
}

static int phase_final(const char *phase)
{
	return phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

/* This node's VMs, each with a summary of its last migration. */
static struct json_object *local_vms(struct agent *a)
{
	struct json_object *all = agent_vms_json(a), *out = json_object_new_array();

	for (size_t i = 0; i < json_object_array_length(all); i++) {
		const char *name = jstr(json_object_array_get_idx(all, i), "name");
		struct json_object *full = name ? agent_vm_json(a, name) : NULL, *o, *ms;

		if (!full)
			continue; /* deleted meanwhile */
		o = pick(full, vm_keys);
		if (json_object_object_get_ex(full, "migrationState", &ms))
			json_object_object_add(o, "migration", pick(ms, mig_keys));
		json_object_array_add(out, o);
		json_object_put(full);
	}
	json_object_put(all);
	return out;
}

/* ---- asking a peer --------------------------------------------------------- */

/* The one way the agent asks a peer: connect to node's configured address,
 * and go on only if the TLS handshake authenticates exactly that node
 * (peer_connect's expect), then send req. */
int cluster_peer_open(struct agent *a, const char *node, struct json_object *req, int timeout_ms,
		      struct peer_link **out, char *err, size_t errlen)
{
	const struct ferry_peer_cfg *pc = config_find_peer(a->cfg, node);
	struct peer_link *pl = NULL;
	char why[300];
	int r;

	if (!pc) {
		snprintf(err, errlen, "unknown node %s (not a peer of %s)", node, a->cfg->node);
		return -ENOENT;
	}
	r = peer_connect(a->env.ident, pc->host, pc->port, node, timeout_ms, &pl, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "node %s is unreachable: %s", node, why);
		return -EHOSTUNREACH;
	}
	r = peer_send_json(pl, req);
	if (r < 0) {
		snprintf(err, errlen, "node %s is unreachable: %s", node, strerror(-r));
		peer_link_close(pl);
		return -EHOSTUNREACH;
	}
	*out = pl;
	return 0;
}

/* One answer: {"ok":true,...} or the peer's error. A peer's refusal of an
 * unknown op comes as {"op":"error","reason":...} (an older ferryd). */
static int peer_answer(const char *node, struct peer_link *pl, int timeout_ms, struct json_object **ans, char *err,
		       size_t errlen)
{
	struct json_object *m = NULL;
	char why[256];
	int r = peer_recv_json(pl, timeout_ms, &m, why, sizeof(why));

	*ans = NULL;
	if (r < 0) {
		snprintf(err, errlen, "node %s did not answer: %s", node, why);
		return -EHOSTUNREACH;
	}
	if (!json_object_get_boolean(json_object_object_get(m, "ok"))) {
		struct json_object *e = json_object_object_get(m, "err");

		r = e ? json_object_get_int(e) : -EHOSTUNREACH;
		if (r >= 0)
			r = -EIO;
		snprintf(err, errlen, "%s", jstr(m, "message") ?: jstr(m, "reason") ?: "the peer refused");
		json_object_put(m);
		return r;
	}
	*ans = m;
	return 0;
}

static int peer_ask(struct agent *a, const char *node, struct json_object *req, int timeout_ms,
		    struct json_object **ans, char *err, size_t errlen)
{
	struct peer_link *pl = NULL;
	int r = cluster_peer_open(a, node, req, CLUSTER_CONNECT_MS, &pl, err, errlen);

	if (r < 0)
		return r;
	r = peer_answer(node, pl, timeout_ms, ans, err, errlen);
	peer_link_close(pl);
	return r;
}

static struct json_object *api_request(const char *method, const char *path, const char *vm,
				       struct json_object *body, const char *who)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "op", json_object_new_string("api"));
	json_object_object_add(req, "method", json_object_new_string(method));
	json_object_object_add(req, "path", json_object_new_string(path));
	if (vm)
		json_object_object_add(req, "vm", json_object_new_string(vm));
	if (body)
		json_object_object_add(req, "body", json_object_get(body));
	if (who)
		json_object_object_add(req, "who", json_object_new_string(who));
	return req;
}

/* ---- the cluster view ------------------------------------------------------ */

/* Which of several entries for one name is the VM: where it lives beats
 * where it left (Departed) or is still arriving (Incoming); among live
 * entries an arrived target (Running) beats a source not yet told
 * (Migrating) in the moment both exist. */
static int rank(struct json_object *vm)
{
	static const char *const order[] = {"Departed", "Incoming", "Stopped", "Starting", "Migrating",
					    "Paused", "Running", NULL};
	const char *s = jstr(vm, "state") ?: "";

	for (int i = 0; order[i]; i++)
		if (!strcmp(s, order[i]))
			return i;
	return -1;
}

static void merge(struct json_object *best, struct json_object *names, struct json_object *vms)
{
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		struct json_object *v = json_object_array_get_idx(vms, i), *cur;
		const char *name = jstr(v, "name");

		if (!name)
			continue;
		if (!json_object_object_get_ex(best, name, &cur)) {
			json_object_array_add(names, json_object_new_string(name));
			json_object_object_add(best, name, json_object_get(v));
		} else if (rank(v) > rank(cur)) {
			json_object_object_add(best, name, json_object_get(v));
		}
	}
}

/* An entry that holds a QEMU (or is starting one) on the node that
 * reports it: two of these for one name are two guests. Stopped,
 * Incoming and Departed entries hold none. */
static int holds_guest(struct json_object *vm)
{
	static const char *const live[] = {"Running", "Paused", "Migrating", "Starting", NULL};
	const char *s = jstr(vm, "state") ?: "";

	for (int i = 0; live[i]; i++)
		if (!strcmp(s, live[i]))
			return 1;
	return 0;
}

/* x is migrating to y's node: in the switchover both run for a moment. */
static int migrating_to(struct json_object *x, struct json_object *y)
{
	struct json_object *m = json_object_object_get(x, "migration");

	return !strcmp(jstr(x, "state") ?: "", "Migrating") && m &&
	       !strcmp(jstr(m, "targetNode") ?: "", jstr(y, "node") ?: "");
}

/* Two entries of one name that are two guests on two nodes (a name
 * created on each, or kept through a partition): not one VM in flight. */
int cluster_vms_conflict(struct json_object *x, struct json_object *y)
{
	return holds_guest(x) && holds_guest(y) && strcmp(jstr(x, "node") ?: "", jstr(y, "node") ?: "") &&
	       !migrating_to(x, y) && !migrating_to(y, x);
}

/* Marks every entry of every that conflicts with another (conflict: true,
 * conflictWith: the other nodes); returns {name: [those entries]}. */
static struct json_object *find_conflicts(struct json_object *every)
{
	struct json_object *by_name = json_object_new_object();
	size_t n = json_object_array_length(every);

	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(every, i), *with = NULL, *list;

		for (size_t j = 0; j < n; j++) {
			struct json_object *y = json_object_array_get_idx(every, j);

			if (i == j || strcmp(jstr(x, "name") ?: "", jstr(y, "name") ?: "") ||
			    !cluster_vms_conflict(x, y))
				continue;
			if (!with)
				with = json_object_new_array();
			json_object_array_add(with, json_object_new_string(jstr(y, "node")));
		}
		if (!with)
			continue;
		json_object_object_add(x, "conflict", json_object_new_boolean(1));
		json_object_object_add(x, "conflictWith", with);
		if (!json_object_object_get_ex(by_name, jstr(x, "name"), &list)) {
			list = json_object_new_array();
			json_object_object_add(by_name, jstr(x, "name"), list);
		}
		json_object_array_add(list, json_object_get(x));
	}
	return by_name;
}

static void add_node(struct json_object *nodes, const char *name, int reachable, const char *reason)
{
	struct json_object *n = json_object_new_object();

	json_object_object_add(n, "name", json_object_new_string(name));
	json_object_object_add(n, "reachable", json_object_new_boolean(reachable));
	if (reason)
		json_object_object_add(n, "reason", json_object_new_string(reason));
	json_object_array_add(nodes, n);
}

/* A peer's answer to op "vms" ({node, vms, version, cordoned}), or
 * -errno with why it could not be asked. */
static int peer_vms(struct agent *a, const char *peer, struct json_object **ans, char *err, size_t errlen)
{
	struct json_object *req = json_object_new_object();
	int r;

	json_object_object_add(req, "op", json_object_new_string("vms"));
	r = peer_ask(a, peer, req, CLUSTER_CONNECT_MS * 5, ans, err, errlen);
	json_object_put(req);
	return r;
}

static void append_all(struct json_object *to, struct json_object *from)
{
	for (size_t i = 0; i < json_object_array_length(from); i++)
		json_object_array_add(to, json_object_get(json_object_array_get_idx(from, i)));
}

struct json_object *cluster_vms_json(struct agent *a)
{
	struct json_object *o = json_object_new_object(), *nodes = json_object_new_array();
	struct json_object *best = json_object_new_object(), *names = json_object_new_array();
	struct json_object *vms = json_object_new_array(), *every = local_vms(a), *conflicts;

	add_node(nodes, a->cfg->node, 1, NULL);
	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const char *peer = a->cfg->peers[i].name;
		struct json_object *ans = NULL;
		char err[400];

		if (peer_vms(a, peer, &ans, err, sizeof(err)) < 0) {
			add_node(nodes, peer, 0, err);
		} else {
			add_node(nodes, peer, 1, NULL);
			append_all(every, json_object_object_get(ans, "vms"));
		}
		json_object_put(ans);
	}
	merge(best, names, every);
	/* Two guests of one name are both shown, each naming the other's
	 * node: hiding one would hide two QEMUs on one disk. */
	conflicts = find_conflicts(every);
	for (size_t i = 0; i < json_object_array_length(names); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(names, i));
		struct json_object *list;

		if (json_object_object_get_ex(conflicts, name, &list))
			append_all(vms, list);
		else
			json_object_array_add(vms, json_object_get(json_object_object_get(best, name)));
	}
	json_object_put(conflicts);
	json_object_put(every);
	json_object_put(best);
	json_object_put(names);
	json_object_object_add(o, "node", json_object_new_string(a->cfg->node));
	json_object_object_add(o, "nodes", nodes);
	json_object_object_add(o, "vms", vms);
	return o;
}

/* ---- nodes ----------------------------------------------------------------- */

static int count_here(struct json_object *vms)
{
	int n = 0;

	for (size_t i = 0; i < json_object_array_length(vms); i++)
		n += strcmp(jstr(json_object_array_get_idx(vms, i), "state") ?: "", "Departed") != 0;
	return n;
}

static struct json_object *node_entry(const char *name, const char *host, int port, struct json_object *info,
				      const char *reason)
{
	struct json_object *n = json_object_new_object();
	char addr[300];

	snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	json_object_object_add(n, "name", json_object_new_string(name));
	json_object_object_add(n, "address", json_object_new_string(addr));
	json_object_object_add(n, "reachable", json_object_new_boolean(info != NULL));
	if (reason)
		json_object_object_add(n, "reason", json_object_new_string(reason));
	json_object_object_add(n, "cordoned", json_object_new_boolean(
		info && json_object_get_boolean(json_object_object_get(info, "cordoned"))));
	if (info) {
		json_object_object_add(n, "vms", json_object_new_int(count_here(json_object_object_get(info, "vms"))));
		json_object_object_add(n, "version",
				       json_object_new_string(jstr(info, "version") ?: "unknown"));
	}
	return n;
}

/* This node's answer to op "vms": its VMs, its version, its cordon. */
static struct json_object *vms_answer(struct agent *a)
{
	struct json_object *ans = json_object_new_object(), *node = agent_node_json(a), *c;

	json_object_object_add(ans, "ok", json_object_new_boolean(1));
	json_object_object_add(ans, "node", json_object_new_string(a->cfg->node));
	json_object_object_add(ans, "version", json_object_new_string(FERRY_VERSION));
	json_object_object_add(ans, "cordoned", json_object_new_boolean(
		json_object_object_get_ex(node, "cordoned", &c) && json_object_get_boolean(c)));
	json_object_object_add(ans, "vms", local_vms(a));
	json_object_put(node);
	return ans;
}

struct json_object *cluster_nodes_json(struct agent *a)
{
	struct json_object *arr = json_object_new_array(), *mine = vms_answer(a);

	json_object_array_add(arr, node_entry(a->cfg->node, a->cfg->listen_host, a->cfg->listen_port, mine, NULL));
	json_object_put(mine);
	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const struct ferry_peer_cfg *pc = &a->cfg->peers[i];
		struct json_object *ans = NULL;
		char err[400];

		if (peer_vms(a, pc->name, &ans, err, sizeof(err)) < 0)
			json_object_array_add(arr, node_entry(pc->name, pc->host, pc->port, NULL, err));
		else
			json_object_array_add(arr, node_entry(pc->name, pc->host, pc->port, ans, NULL));
		json_object_put(ans);
	}
	return arr;
}

/* ---- who has a name -------------------------------------------------------- */

struct asked {
	char asked[400];       /* "node-a, node-b" */
	char unreachable[600]; /* "node-c (why)" */
	size_t na, nu;
};

/* Appends ", peer" (or "peer" first), with " (why)" when why is given. */
static void note(char *buf, size_t len, size_t *used, const char *peer, const char *why)
{
	int n;

	if (*used >= len)
		return;
	n = snprintf(buf + *used, len - *used, "%s%s%s%s%s", *used ? ", " : "", peer, why ? " (" : "",
		     why ?: "", why ? ")" : "");
	*used += n > 0 ? (size_t)n : 0;
}

/* Each peer's entry for VM name that is not Departed: into owners as
 * {node: entry}; who was asked and who could not be into k. */
static void peers_with_vm(struct agent *a, const char *name, const char *skip, struct json_object *owners,
			  struct asked *k)
{
	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const char *peer = a->cfg->peers[i].name;
		struct json_object *ans = NULL, *vms;
		char err[300];

		if (skip && !strcmp(peer, skip))
			continue;
		if (peer_vms(a, peer, &ans, err, sizeof(err)) < 0) {
			note(k->unreachable, sizeof(k->unreachable), &k->nu, peer, err);
			continue;
		}
		note(k->asked, sizeof(k->asked), &k->na, peer, NULL);
		vms = json_object_object_get(ans, "vms");
		for (size_t j = 0; j < json_object_array_length(vms); j++) {
			struct json_object *v = json_object_array_get_idx(vms, j);

			if (!strcmp(jstr(v, "name") ?: "", name) && strcmp(jstr(v, "state") ?: "", "Departed"))
				json_object_object_add(owners, peer, json_object_get(v));
		}
		json_object_put(ans);
	}
}

int cluster_name_taken(struct agent *a, const char *name, const char *except, int force, char *err,
		       size_t errlen)
{
	struct json_object *owners = json_object_new_object();
	struct asked k = {.na = 0};
	int r = 0;

	peers_with_vm(a, name, except, owners, &k);
	json_object_object_foreach(owners, node, v) {
		snprintf(err, errlen, "VM %s already exists on node %s (%s there)", name, node,
			 jstr(v, "state") ?: "?");
		r = -EEXIST;
		break;
	}
	if (!r && k.nu && !force) {
		snprintf(err, errlen,
			 "cannot tell whether VM %s exists elsewhere: unreachable: %s (create it anyway with force)",
			 name, k.unreachable);
		r = -EHOSTUNREACH;
	}
	json_object_put(owners);
	return r;
}

/* The node whose entry is the VM: the best ranked; two guests of one name
 * are a conflict the caller must resolve by naming the node. */
static int pick_owner(const char *name, struct json_object *owners, char *node, size_t nodelen, char *err,
		      size_t errlen)
{
	struct json_object *best = NULL;
	const char *best_node = NULL;

	json_object_object_foreach(owners, n, v) {
		if (!best || rank(v) > rank(best)) {
			best = v;
			best_node = n;
		}
	}
	json_object_object_foreach(owners, other, w) {
		if (w != best && cluster_vms_conflict(best, w)) {
			snprintf(err, errlen,
				 "VM %s exists on node %s and on node %s (a name conflict): ask one of them "
				 "through /v1/nodes/NODE/",
				 name, best_node, other);
			return -EBUSY;
		}
	}
	snprintf(node, nodelen, "%s", best_node ?: "");
	return 0;
}

static int locate_vm(struct agent *a, const struct route *rt, const char *name, char *node, size_t nodelen,
		     char *err, size_t errlen)
{
	struct json_object *here = agent_vm_json(a, name), *owners;
	int known = here != NULL, departed = here && !strcmp(jstr(here, "state") ?: "", "Departed"), r;
	struct asked k = {.na = 0};

	json_object_put(here);
	if (known && (!departed || (rt->flags & ROUTE_DEPARTED_HERE)))
		return 0;
	owners = json_object_new_object();
	peers_with_vm(a, name, NULL, owners, &k);
	r = pick_owner(name, owners, node, nodelen, err, errlen);
	json_object_put(owners);
	if (r < 0 || node[0] || known)
		return r; /* a Departed VM no peer has: this node says why */
	snprintf(err, errlen, "no VM named %s on any node; nodes asked: %s%s%s%s", name, a->cfg->node,
		 k.na ? ", " : "", k.asked, k.nu ? "; unreachable: " : "");
	if (k.nu)
		snprintf(err + strlen(err), errlen - strlen(err), "%s", k.unreachable);
	return -ENOENT;
}

/* Migration m is the one key names: its id, or for a cancel also its
 * VMIM name or its VM while it runs (agent_migration_cancel's rule). */
static int mig_is(struct json_object *m, const char *key, int cancel)
{
	if (!strcmp(jstr(m, "id") ?: "", key))
		return 1;
	return cancel && (!strcmp(jstr(m, "name") ?: "", key) ||
			  (!strcmp(jstr(m, "vm") ?: "", key) && !phase_final(jstr(m, "phase"))));
}

static int has_mig(struct json_object *list, const char *key, int cancel, const char **role)
{
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *m = json_object_array_get_idx(list, i);

		if (mig_is(m, key, cancel)) {
			*role = jstr(m, "role") ?: "";
			return 1;
		}
	}
	return 0;
}

static int locate_mig(struct agent *a, const struct route *rt, const char *key, char *node, size_t nodelen,
		      char *err, size_t errlen)
{
	int cancel = !strcmp(rt->method, "DELETE"), found;
	struct json_object *mine = agent_migrations_json(a, NULL);
	struct asked k = {.na = 0};
	const char *role = "";

	found = has_mig(mine, key, cancel, &role);
	json_object_put(mine);
	if (found)
		return 0;
	/* Source and target both know a migration: the source's answer. */
	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const char *peer = a->cfg->peers[i].name;
		struct json_object *req = api_request("GET", "/v1/migrations", NULL, NULL, NULL), *ans = NULL;
		char why[300];

		if (peer_ask(a, peer, req, CLUSTER_CONNECT_MS * 5, &ans, why, sizeof(why)) < 0) {
			note(k.unreachable, sizeof(k.unreachable), &k.nu, peer, why);
		} else {
			note(k.asked, sizeof(k.asked), &k.na, peer, NULL);
			if (has_mig(json_object_object_get(ans, "body"), key, cancel, &role) &&
			    (!node[0] || !strcmp(role, "source")))
				snprintf(node, nodelen, "%s", peer);
		}
		json_object_put(req);
		json_object_put(ans);
	}
	if (node[0])
		return 0;
	snprintf(err, errlen, "no migration %s on any node; nodes asked: %s%s%s%s", key, a->cfg->node,
		 k.na ? ", " : "", k.asked, k.nu ? "; unreachable: " : "");
	if (k.nu)
		snprintf(err + strlen(err), errlen - strlen(err), "%s", k.unreachable);
	return -ENOENT;
}

int cluster_locate(struct agent *a, const struct route *rt, const struct route_params *p,
		   struct json_object *body, char *node, size_t nodelen, char *err, size_t errlen)
{
	struct json_object *vm;

	node[0] = '\0';
	if ((rt->flags & ROUTE_OWNED_VM) && p->n)
		return locate_vm(a, rt, p->v[0], node, nodelen, err, errlen);
	/* A body's "vm" that is not a name (not a string, not a DNS label): the
	 * handler here refuses it, naming the key, without asking anyone. */
	if ((rt->flags & ROUTE_OWNED_VM) && json_object_object_get_ex(body, "vm", &vm) &&
	    json_object_is_type(vm, json_type_string) &&
	    schema_check_dns_label(&(struct schema_err){0}, "vm", json_object_get_string(vm)) == 0)
		return locate_vm(a, rt, json_object_get_string(vm), node, nodelen, err, errlen);
	if ((rt->flags & ROUTE_OWNED_MIG) && p->n)
		return locate_mig(a, rt, p->v[0], node, nodelen, err, errlen);
	return 0;
}

/* Each migration once: its source's record, or the target's while the
 * source cannot be asked. */
static void collect_migrations(struct json_object *by_id, struct json_object *ids, struct json_object *arr)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *m = json_object_array_get_idx(arr, i), *cur;
		const char *id = jstr(m, "id");

		if (!id)
			continue;
		if (!json_object_object_get_ex(by_id, id, &cur)) {
			json_object_array_add(ids, json_object_new_string(id));
			json_object_object_add(by_id, id, json_object_get(m));
		} else if (!strcmp(jstr(m, "role") ?: "", "source")) {
			json_object_object_add(by_id, id, json_object_get(m));
		}
	}
}

static int newest_first(const void *x, const void *y)
{
	struct json_object *a = *(struct json_object *const *)x, *b = *(struct json_object *const *)y;

	return strcmp(jstr(b, "startTimestamp") ?: "", jstr(a, "startTimestamp") ?: "");
}

struct json_object *cluster_migrations_json(struct agent *a, const char *vm)
{
	struct json_object *by_id = json_object_new_object(), *ids = json_object_new_array();
	struct json_object *out = json_object_new_array(), *mine = agent_migrations_json(a, vm);

	collect_migrations(by_id, ids, mine);
	json_object_put(mine);
	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		struct json_object *req = api_request("GET", "/v1/migrations", vm, NULL, NULL), *ans = NULL;
		char err[400];

		if (peer_ask(a, a->cfg->peers[i].name, req, CLUSTER_CONNECT_MS * 5, &ans, err, sizeof(err)) == 0)
			collect_migrations(by_id, ids, json_object_object_get(ans, "body"));
		json_object_put(req);
		json_object_put(ans);
	}
	for (size_t i = 0; i < json_object_array_length(ids); i++)
		json_object_array_add(out, json_object_get(json_object_object_get(
			by_id, json_object_get_string(json_object_array_get_idx(ids, i)))));
	json_object_array_sort(out, newest_first);
	json_object_put(by_id);
	json_object_put(ids);
	return out;
}

/* ---- gateway: forwarding to the owner -------------------------------------- */

int cluster_split_url(const char *url, char *node, size_t nodelen, char *path, size_t pathlen)
{
	const char *n = url + 10, *rest;

	if (strncmp(url, "/v1/nodes/", 10))
		return -EINVAL;
	rest = strchr(n, '/');
	if (!rest || rest == n || (size_t)(rest - n) >= nodelen || !strncmp(rest, "/nodes/", 7) ||
	    !strncmp(rest, "/cluster/", 9))
		return -EINVAL;
	snprintf(node, nodelen, "%.*s", (int)(rest - n), n);
	if ((size_t)snprintf(path, pathlen, "/v1%s", rest) >= pathlen)
		return -EINVAL;
	return 0;
}

int cluster_forward(struct agent *a, const char *node, const char *method, const char *path,
		    const char *vm, struct json_object *body, const char *who, unsigned *status,
		    struct json_object **out, char *err, size_t errlen)
{
	struct json_object *req = api_request(method, path, vm, body, who), *ans = NULL;
	int r = peer_ask(a, node, req, CLUSTER_REPLY_MS, &ans, err, errlen);

	json_object_put(req);
	*out = NULL;
	if (r < 0)
		return r;
	*status = (unsigned)json_object_get_int(json_object_object_get(ans, "status"));
	*out = json_object_get(json_object_object_get(ans, "body"));
	if (!*out)
		*out = json_object_new_object();
	json_object_put(ans);
	log_debug("cluster", "event=forwarded node=%s method=%s path=%s status=%u", node, method, path, *status);
	return 0;
}

/* The relayed stream: each peer answer becomes one event. */
struct relay_sse {
	struct peer_link *pl;
	char node[64];
	char *pending;
	size_t len, off;
	int done;
};

static int sse_format(struct relay_sse *e, struct json_object *ans)
{
	struct json_object *m = json_object_object_get(ans, "body");

	free(e->pending);
	e->pending = agent_migration_event(m, &e->done);
	if (!e->pending)
		return -ENOMEM;
	e->len = strlen(e->pending);
	e->off = 0;
	return 0;
}

static ssize_t relay_sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct relay_sse *e = cls;

	(void)pos;
	while (e->off >= e->len) {
		struct json_object *ans = NULL;
		char err[300];
		int r;

		if (e->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (peer_answer(e->node, e->pl, CLUSTER_STREAM_IDLE_MS, &ans, err, sizeof(err)) < 0)
			return MHD_CONTENT_READER_END_OF_STREAM; /* the peer ended it */
		r = sse_format(e, ans);
		json_object_put(ans);
		if (r < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	if (max > e->len - e->off)
		max = e->len - e->off;
	memcpy(buf, e->pending + e->off, max);
	e->off += max;
	return (ssize_t)max;
}

static void relay_sse_free(void *cls)
{
	struct relay_sse *e = cls;

	peer_link_close(e->pl); /* the peer sees it and stops streaming */
	free(e->pending);
	free(e);
}

int cluster_events(struct agent *a, const char *node, const char *id, struct MHD_Response **out,
		   char *err, size_t errlen)
{
	char path[120];
	struct json_object *req, *first = NULL;
	struct relay_sse *e;
	struct peer_link *pl = NULL;
	int r;

	*out = NULL;
	snprintf(path, sizeof(path), "/v1/migrations/%s/events", id);
	req = api_request("GET", path, NULL, NULL, NULL);
	r = cluster_peer_open(a, node, req, CLUSTER_CONNECT_MS, &pl, err, errlen);
	json_object_put(req);
	if (r < 0)
		return r;
	/* The first answer says whether the migration exists there. */
	r = peer_answer(node, pl, CLUSTER_REPLY_MS, &first, err, errlen);
	if (r < 0)
		goto fail;
	e = calloc(1, sizeof(*e));
	if (!e) {
		r = -ENOMEM;
		goto fail;
	}
	e->pl = pl;
	snprintf(e->node, sizeof(e->node), "%s", node);
	if (sse_format(e, first) < 0 ||
	    !(*out = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, relay_sse_read, e,
						       relay_sse_free))) {
		free(e->pending);
		free(e);
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	json_object_put(first);
	return 0;
fail:
	json_object_put(first);
	peer_link_close(pl);
	return r;
}

/* ---- peer side ------------------------------------------------------------- */

static void send_error(struct peer_link *pl, int r, const char *msg);

static void send_answer(struct peer_link *pl, struct json_object *ans)
{
	const char *s = json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);

	if (n > PEER_MSG_MAX)
		send_error(pl, -EMSGSIZE, "the answer is too large for the peer link");
	else
		(void)peer_send_msg(pl, FRAME_CONTROL, s, n, 5000);
}

static void send_error(struct peer_link *pl, int r, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "err", json_object_new_int(r));
	json_object_object_add(o, "message", json_object_new_string(msg));
	send_answer(pl, o);
	json_object_put(o);
}

/* A forwarded row (routes.c, ROUTE_FORWARD) run here for a gateway, with
 * this node's name in its messages. The gateway checked the caller's
 * role; this node trusts the cluster key, as it does for prepare. */
static int exec_api(struct agent *a, const struct route *rt, const struct route_params *p, const char *vm,
		    struct json_object *body, const char *who, unsigned *status, struct json_object **out,
		    char *err, size_t errlen)
{
	char where[80];
	struct route_call call = {.a = a, .p = p, .vm = vm, .body = body, .role = rt->role, .who = who,
				  .where = where};
	struct route_reply rep = {.status = 200};
	int r;

	snprintf(where, sizeof(where), "node %s", a->cfg->node);
	r = rt->fn(&call, &rep, err, errlen);
	free(rep.text); /* no forwarded row answers text */
	*status = rep.status;
	*out = rep.body;
	if (r < 0) {
		json_object_put(rep.body);
		*out = NULL;
		return r;
	}
	return *out ? 0 : -ENOENT;
}

/* A migration's status every STREAM_INTERVAL_MS until it ends or the
 * gateway hangs up (its side readable: closed). */
static void stream_events(struct agent *a, struct peer_link *pl, const char *id)
{
	for (int n = 0;; n++) {
		struct json_object *m = agent_migration_json(a, id), *ans;
		struct pollfd p = {.fd = pl->fd, .events = POLLIN};
		int done;

		if (!m) {
			if (!n)
				send_error(pl, -ENOENT, "no such migration on this node");
			return;
		}
		done = phase_final(jstr(m, "phase"));
		ans = json_object_new_object();
		json_object_object_add(ans, "ok", json_object_new_boolean(1));
		json_object_object_add(ans, "status", json_object_new_int(200));
		json_object_object_add(ans, "body", m);
		send_answer(pl, ans);
		json_object_put(ans);
		if (done || poll(&p, 1, STREAM_INTERVAL_MS) != 0)
			return;
	}
}

void cluster_peer_serve(struct agent *a, struct peer_link *pl, const char *op, struct json_object *msg)
{
	struct json_object *ans = json_object_new_object(), *out = NULL;
	const char *method = jstr(msg, "method"), *path = jstr(msg, "path");
	const struct route *rt;
	struct route_params p;
	char err[600] = "";
	unsigned status = 0;
	int r;

	if (!strcmp(op, "vms")) {
		struct json_object *v = vms_answer(a);

		send_answer(pl, v);
		json_object_put(v);
		goto out;
	}
	if (!method || !path) {
		send_error(pl, -EINVAL, "an api request needs method and path");
		goto out;
	}
	/* Changes are worth a line; the console's polling is not. */
	if (strcmp(method, "GET"))
		log_info("cluster", "event=peer_api peer=%s method=%s path=%s", pl->peer, method, path);
	else
		log_debug("cluster", "event=peer_api peer=%s method=%s path=%s", pl->peer, method, path);
	rt = route_find(method, path, &p, &status, NULL, 0);
	if (!rt || !(rt->flags & ROUTE_FORWARD)) {
		snprintf(err, sizeof(err), "%s %s is not a route peers forward (docs/api.md)", method, path);
		send_error(pl, -ENOENT, err);
		goto out;
	}
	if (rt->flags & ROUTE_EVENTS) {
		stream_events(a, pl, p.v[0]);
		goto out;
	}
	r = exec_api(a, rt, &p, jstr(msg, "vm"), json_object_object_get(msg, "body"), jstr(msg, "who"), &status,
		     &out, err, sizeof(err));
	if (r < 0) {
		send_error(pl, r, err[0] ? err : strerror(-r));
		goto out;
	}
	json_object_object_add(ans, "ok", json_object_new_boolean(1));
	json_object_object_add(ans, "status", json_object_new_int((int)status));
	json_object_object_add(ans, "body", out);
	send_answer(pl, ans);
out:
	json_object_put(ans);
}
