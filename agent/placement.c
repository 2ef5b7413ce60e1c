/* Where a VM may go: each peer judged from its facts, the target picked
 * when none is named, and the outbound count across the cluster. */
#include "agent/agent_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "agent/cluster.h"
#include "engine/preflight.h"
#include "qmp/cpu_model.h"
#include "transport/peer.h"

static int json_array_has(struct json_object *arr, const char *v)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(arr, i)) ?: "", v))
			return 1;
	return 0;
}

/* A host-model VM fits a node whose CPU (its facts' cpuHostModel) has
 * every feature of the VM's recorded one; otherwise reason names those it
 * lacks. */
static int host_model_fits(const struct vm_spec *spec, struct json_object *host, char *reason,
			   size_t len)
{
	struct ferry_kv *kv;
	char missing[300];
	size_t n = 0, k;

	if (!json_object_is_type(host, json_type_object)) {
		snprintf(reason, len, "the node does not report its CPU, which a host-model VM needs");
		return 0;
	}
	kv = calloc((size_t)json_object_object_length(host) + 1, sizeof(*kv));
	if (!kv) {
		snprintf(reason, len, "out of memory");
		return 0;
	}
	json_object_object_foreach(host, key, val)
	{
		kv[n].key = key;
		kv[n++].value = (char *)(json_object_get_string(val) ?: "");
	}
	k = cpu_model_missing(spec->cpu_host_model, spec->n_cpu_host_model, kv, n, missing,
			      sizeof(missing));
	free(kv);
	if (k)
		snprintf(reason, len, "the node's CPU lacks %zu feature%s of the VM's host-model CPU: %s",
			 k, k == 1 ? "" : "s", missing);
	return k == 0;
}

/* Asks each peer for its facts over the authenticated link and judges it
 * as a target for spec: reachable, the VM's node selector matched by the
 * node's labels, enough free memory. Returns a JSON array of
 * {name, eligible, reason, freeMemoryMiB, migrationsInFlight}. */
struct json_object *judge_peers(struct agent *a, const struct vm_spec *spec)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const struct ferry_peer_cfg *pc = &a->cfg->peers[i];
		struct json_object *o = json_object_new_object(), *facts = NULL, *req;
		struct peer_link *pl = NULL;
		char reason[400] = "", err[320];
		int ok = 0;

		json_object_object_add(o, "name", json_object_new_string(pc->name));
		req = json_object_new_object();
		json_object_object_add(req, "op", json_object_new_string("facts"));
		if (cluster_peer_open(a, pc->name, req, 2000, &pl, err, sizeof(err)) < 0)
			snprintf(reason, sizeof(reason), "unreachable: %s", err);
		else if (peer_recv_json(pl, 3000, &facts, err, sizeof(err)) < 0)
			snprintf(reason, sizeof(reason), "no facts: %s", err);
		json_object_put(req);
		peer_link_close(pl);
		if (facts) {
			int64_t free_mib = json_object_get_int64(json_object_object_get(facts, "freeMemoryMiB"));
			struct json_object *labels = json_object_object_get(facts, "labels");

			json_object_object_add(o, "freeMemoryMiB", json_object_new_int64(free_mib));
			json_object_object_add(o, "migrationsInFlight", json_object_get(
				json_object_object_get(facts, "migrationsInFlight")));
			ok = !json_object_get_boolean(json_object_object_get(facts, "cordoned"));
			if (!ok)
				snprintf(reason, sizeof(reason), "cordoned");
			for (size_t k = 0; k < spec->n_node_selector && ok; k++) {
				const char *v = json_object_get_string(
					json_object_object_get(labels, spec->node_selector[k].key));

				if (!v || strcmp(v, spec->node_selector[k].value)) {
					snprintf(reason, sizeof(reason), "node selector %s=%s not matched",
						 spec->node_selector[k].key, spec->node_selector[k].value);
					ok = 0;
				}
			}
			/* Every network the VM's NICs need, and its CPU model
			 * ("host" = host-model: the node must offer it). */
			for (size_t k = 0; k < spec->n_nics && ok; k++)
				if (!json_array_has(json_object_object_get(facts, "networks"), spec->nics[k].network)) {
					snprintf(reason, sizeof(reason), "network %s (NIC %s) is not available on this node",
						 spec->nics[k].network, spec->nics[k].name);
					ok = 0;
				}
			if (ok && !strcmp(spec->cpu_model, VM_CPU_HOST_MODEL)) {
				if (!host_model_fits(spec, json_object_object_get(facts, "cpuHostModel"),
						     reason, sizeof(reason)))
					ok = 0;
			} else if (ok && !json_array_has(json_object_object_get(facts, "cpuModels"),
							spec->cpu_model)) {
				snprintf(reason, sizeof(reason), "CPU model %s is not supported on this node",
					 spec->cpu_model);
				ok = 0;
			}
			if (ok && free_mib < spec->memory_mib + 64) {
				snprintf(reason, sizeof(reason), "%lld MiB free, the VM needs %d MiB",
					 (long long)free_mib, spec->memory_mib + 64);
				ok = 0;
			}
			json_object_put(facts);
		}
		json_object_object_add(o, "eligible", json_object_new_boolean(ok));
		if (!ok)
			json_object_object_add(o, "reason", json_object_new_string(reason));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* "Automatically selected node": the eligible peer with the most free
 * memory, then the fewest migrations in flight. */
int pick_node(struct agent *a, const struct vm_spec *spec, char *node, size_t len,
	      char *err, size_t errlen)
{
	struct json_object *arr = judge_peers(a, spec);
	int64_t best_free = -1, best_load = 0;
	size_t used = 0;

	node[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);
		int64_t f = json_object_get_int64(json_object_object_get(o, "freeMemoryMiB"));
		int64_t l = json_object_get_int64(json_object_object_get(o, "migrationsInFlight"));

		if (!json_object_get_boolean(json_object_object_get(o, "eligible"))) {
			int n = snprintf(err + used, used < errlen ? errlen - used : 0, "%s%s: %s",
					 used ? "; " : "", json_object_get_string(json_object_object_get(o, "name")),
					 json_object_get_string(json_object_object_get(o, "reason")));
			used += n > 0 ? (size_t)n : 0;
			continue;
		}
		if (f > best_free || (f == best_free && l < best_load)) {
			best_free = f;
			best_load = l;
			snprintf(node, len, "%s", json_object_get_string(json_object_object_get(o, "name")));
		}
	}
	json_object_put(arr);
	if (!node[0]) {
		char tmp[600];

		snprintf(tmp, sizeof(tmp), "%s", used ? err : "no peers configured");
		snprintf(err, errlen, "no eligible target node: %s", tmp);
		return -ENOENT;
	}
	return 0;
}

/* Outbound migrations on the peers, from their facts (unreachable peers
 * count as none). */
int peers_outbound(struct agent *a)
{
	int sum = 0;

	for (size_t i = 0; i < a->cfg->n_peers; i++) {
		const struct ferry_peer_cfg *pc = &a->cfg->peers[i];
		struct json_object *req, *facts = NULL;
		struct peer_link *pl = NULL;
		char err[320];

		req = json_object_new_object();
		json_object_object_add(req, "op", json_object_new_string("facts"));
		if (cluster_peer_open(a, pc->name, req, 1000, &pl, err, sizeof(err)) == 0 &&
		    peer_recv_json(pl, 2000, &facts, err, sizeof(err)) == 0)
			sum += json_object_get_int(json_object_object_get(facts, "outbound"));
		json_object_put(req);
		json_object_put(facts);
		peer_link_close(pl);
	}
	return sum;
}

/* What keeps the VM from moving to any node (a stopped VM, a preflight
 * blocker such as a CD-ROM with media) into why; 0 when nothing does. */
static int vm_blocked(const struct vm_spec *spec, int stopped, char *why, size_t len)
{
	if (stopped) {
		snprintf(why, len, "VM %s is stopped", spec->name);
		return 1;
	}
	return preflight_vm(spec, why, len) < 0;
}

/* Each peer judged as a target; a VM that cannot live-migrate at all has
 * no eligible peer, each giving the VM's blocker as its reason (the
 * peer's facts stay). */
struct json_object *agent_vm_candidates_json(struct agent *a, const char *name)
{
	struct vm_spec *spec = NULL;
	struct agent_vm *v;
	struct json_object *arr;
	char why[900];
	int stopped = 0;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->q)
		spec = vmspec_dup(v->q->spec);
	else if (v && v->state == VM_STOPPED && v->spec)
		spec = vmspec_dup(v->spec);
	stopped = spec && v && !v->q;
	pthread_mutex_unlock(&a->mu);
	if (!spec)
		return NULL;
	arr = judge_peers(a, spec);
	if (vm_blocked(spec, stopped, why, sizeof(why)))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *o = json_object_array_get_idx(arr, i);
			const char *own = json_object_get_string(json_object_object_get(o, "reason"));
			char both[1400];

			snprintf(both, sizeof(both), "%s%s%s", why, own ? "; " : "", own ?: "");
			json_object_object_add(o, "eligible", json_object_new_boolean(0));
			json_object_object_add(o, "reason", json_object_new_string(both));
		}
	vmspec_free(spec);
	return arr;
}
