/* Migrations this agent takes part in: starting one from here, the
 * table of them, and cancelling. */
#include "agent/agent_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/mig_settings.h"
#include "engine/preflight.h"
#include "util/log.h"
#include "util/uuid.h"

/* A migration asked for without a name gets one, as `virtctl migrate`
 * gives its VirtualMachineInstanceMigration one (generateName): the VM's
 * name and 5 characters of the id, a DNS-1123 label of at most 63 bytes
 * that get vmim, describe and a cancel by name can use. */
static void default_name(struct mig_request *req)
{
	snprintf(req->name, sizeof(req->name), "migrate-%.48s-%.5s", req->vm, req->id);
	for (char *c = req->name; *c; c++) {
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
		else if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9'))
			*c = '-';
	}
}

int agent_migrate(struct agent *a, const struct mig_request *in, const struct mset_request *rset,
		  char *id_out, size_t idlen, char *err, size_t errlen)
{
	const char *vm = in->vm, *node = in->target_node;
	const struct ferry_peer_cfg *peer;
	struct mig_request req = *in;
	struct agent_mig *am = NULL;
	struct migration *m = NULL;
	struct agent_vm *v;
	char picked[64];
	int r = 0;

	if (!node || !node[0]) {
		struct vm_spec *spec = NULL;

		pthread_mutex_lock(&a->mu);
		v = find_vm(a, vm);
		if (v && v->q)
			spec = vmspec_dup(v->q->spec);
		r = v && v->state == VM_STOPPED;
		pthread_mutex_unlock(&a->mu);
		if (r) {
			snprintf(err, errlen, "VM %s is stopped", vm);
			return -EBUSY;
		}
		if (!spec) {
			snprintf(err, errlen, "no VM named %s runs on node %s", vm, a->cfg->node);
			return -ENOENT;
		}
		r = pick_node(a, spec, picked, sizeof(picked), err, errlen);
		vmspec_free(spec);
		if (r < 0)
			return r;
		node = picked;
		log_info("agent", "event=target_selected vm=%s node=%s", vm, node);
	}
	if (!strcmp(node, a->cfg->node)) {
		snprintf(err, errlen, "VM %s already runs on node %s", vm, node);
		return -EINVAL;
	}
	if (node != picked) {
		/* A specific node must be eligible too; say why not. */
		struct vm_spec *spec = NULL;
		struct json_object *arr;

		pthread_mutex_lock(&a->mu);
		v = find_vm(a, vm);
		if (v && v->q)
			spec = vmspec_dup(v->q->spec);
		pthread_mutex_unlock(&a->mu);
		if (spec && config_find_peer(a->cfg, node)) {
			arr = judge_peers(a, spec);
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				struct json_object *o = json_object_array_get_idx(arr, i);

				if (strcmp(json_object_get_string(json_object_object_get(o, "name")), node) ||
				    json_object_get_boolean(json_object_object_get(o, "eligible")))
					continue;
				snprintf(err, errlen, "node %s cannot take VM %s: %s", node, vm,
					 json_object_get_string(json_object_object_get(o, "reason")));
				r = -EPERM;
			}
			json_object_put(arr);
		}
		vmspec_free(spec);
		if (r < 0)
			return r;
	}
	peer = config_find_peer(a->cfg, node);
	if (!peer) {
		snprintf(err, errlen, "unknown node %s (not a peer of %s)", node, a->cfg->node);
		return -ENOENT;
	}
	snprintf(req.target_node, sizeof(req.target_node), "%s", node);
	snprintf(req.target_host, sizeof(req.target_host), "%s", peer->host);
	req.target_port = peer->port;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, vm);
	if (v && v->state == VM_STOPPED) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is stopped", vm);
		return -EBUSY;
	}
	if (!v || v->state == VM_DEPARTED || !v->q) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "no VM named %s runs on node %s", vm, a->cfg->node);
		return -ENOENT;
	}
	if (v->state != VM_RUNNING) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is %s, not Running", vm, vm_state_name(v->state));
		return -EBUSY;
	}
	if (!qemu_vm_alive(v->q)) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s's QEMU is not running", vm);
		return -ESRCH;
	}
	{
		char why[900];

		if (preflight_vm(v->q->spec, why, sizeof(why)) < 0) {
			pthread_mutex_unlock(&a->mu);
			snprintf(err, errlen, "VM %s is not live-migratable: %s", vm, why);
			return -EPERM;
		}
	}
	{
		/* Request, then the VM's spec, then the first matching named
		 * policy, then the agent defaults. */
		const struct ferry_policy_cfg *pl =
			config_match_policy(a->cfg, v->q->spec->labels, v->q->spec->n_labels);

		r = mset_resolve(rset, &v->q->spec->mig, pl ? &pl->mig : NULL, &a->cfg->mig,
				 &req.set, err, errlen);
		if (r < 0) {
			pthread_mutex_unlock(&a->mu);
			return r;
		}
		if (pl)
			snprintf(req.policy, sizeof(req.policy), "%s", pl->name);
	}
	uuid_v4(req.id);
	if (!req.name[0])
		default_name(&req);
	am = calloc(1, sizeof(*am));
	r = am ? mig_source_start(&a->env, &req, v->q, &m) : -ENOMEM;
	if (r < 0) {
		pthread_mutex_unlock(&a->mu);
		free(am);
		snprintf(err, errlen, "cannot start the migration: %s", strerror(-r));
		return r;
	}
	v->state = VM_MIGRATING;
	v->active = m;
	snprintf(v->last_mig, sizeof(v->last_mig), "%s", req.id);
	am->m = m;
	snprintf(am->vm, sizeof(am->vm), "%s", vm);
	am->next = a->migs;
	a->migs = am;
	pthread_mutex_unlock(&a->mu);
	snprintf(id_out, idlen, "%s", req.id);
	return 0;
}

void agent_add_migration(struct agent *a, struct migration *m, const char *vm)
{
	struct agent_mig *am = calloc(1, sizeof(*am));

	if (!am)
		return;
	am->m = m;
	snprintf(am->vm, sizeof(am->vm), "%s", vm);
	pthread_mutex_lock(&a->mu);
	am->next = a->migs;
	a->migs = am;
	pthread_mutex_unlock(&a->mu);
}

struct migration *agent_find_migration(struct agent *a, const char *id)
{
	struct migration *m = NULL;

	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am && !m; am = am->next)
		if (!strcmp(mig_id(am->m), id))
			m = am->m;
	pthread_mutex_unlock(&a->mu);
	return m;
}

int agent_migration_cancel(struct agent *a, const char *id_or_vm, const char *by, char *err,
			   size_t errlen)
{
	struct migration *m = NULL;
	int r;

	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am; am = am->next) {
		if (!strcmp(mig_id(am->m), id_or_vm) || !strcmp(mig_name(am->m), id_or_vm) ||
		    (!strcmp(am->vm, id_or_vm) && !mig_finished(am->m))) {
			m = am->m;
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (!m) {
		snprintf(err, errlen, "no migration %s in progress on node %s", id_or_vm, a->cfg->node);
		return -ENOENT;
	}
	r = mig_cancel(m, "cancelled by request", by);
	if (r == -EBUSY)
		snprintf(err, errlen, "migration %s is past the switchover and cannot be cancelled", mig_id(m));
	else if (r == -EALREADY)
		snprintf(err, errlen, "migration %s has already finished", mig_id(m));
	return r;
}
