/* The engine's callbacks into the agent (struct mig_env): a migration
 * that ends or arrives updates the VM table, and the limits on
 * migrations in flight (outbound slots, the cluster count, inbound). */
#include "agent/agent_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"

void on_target_failed(void *agent, const char *name)
{
	struct agent *a = agent;
	struct agent_vm *v;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	/* Nothing arrived: not listed (nor counted) as a VM here. */
	if (v && v->state == VM_INCOMING)
		release_name(a, v);
	pthread_mutex_unlock(&a->mu);
}

void on_source_done(void *agent, struct migration *m, int succeeded)
{
	struct agent *a = agent;
	struct mig_status st;
	struct agent_vm *v;

	mig_get_status(m, &st);
	pthread_mutex_lock(&a->mu);
	v = find_vm(a, st.vm);
	if (v && v->active == m) {
		v->active = NULL;
		if (succeeded) {
			/* The VM lives on the target now: its row goes, its
			 * history stays in the records. */
			remove_vm(a, v);
		} else {
			v->state = st.guest_paused_on_source ? VM_PAUSED : VM_RUNNING;
		}
	}
	pthread_mutex_unlock(&a->mu);
}

int on_target_arrived(void *agent, struct migration *m, struct qemu_vm *q)
{
	struct agent *a = agent;
	struct agent_vm *v;

	qemu_vm_incoming_done(q);
	qemu_vm_save_spec(q);
	pthread_mutex_lock(&a->mu);
	v = find_vm(a, q->spec->name);
	if (!v) /* held by target_admit: not gone unless a bug */
		v = add_vm(a, q->spec->name);
	if (!v) {
		pthread_mutex_unlock(&a->mu);
		return -ENOMEM;
	}
	qemu_vm_free(v->q);
	v->q = q;
	{
		struct mig_status st;

		mig_get_status(m, &st);
		v->state = st.guest_paused_on_source || st.left_paused ? VM_PAUSED : VM_RUNNING;
	}
	v->fresh = 0;
	snprintf(v->last_mig, sizeof(v->last_mig), "%s", mig_id(m));
	pthread_mutex_unlock(&a->mu);
	log_info("agent", "event=vm_arrived vm=%s", q->spec->name);
	return 0;
}

int agent_inbound_full(struct agent *a, char *why, size_t len)
{
	int inbound = 0;

	pthread_mutex_lock(&a->mu);
	for (struct agent_vm *w = a->vms; w; w = w->next)
		inbound += w->state == VM_INCOMING;
	pthread_mutex_unlock(&a->mu);
	if (inbound < a->cfg->parallel_inbound)
		return 0;
	snprintf(why, len, "node %s is at its inbound limit (%d migrations)", a->cfg->node,
		 a->cfg->parallel_inbound);
	return 1;
}

/* limits.parallel_outbound on this node, limits.parallel_cluster across
 * the nodes this one knows (their outbound counts, from their facts): a
 * migration waits in Pending for both. The cluster count is advisory: two
 * nodes deciding at the same instant may both go. */
int acquire_slot(void *agent, struct migration *m, char *why, size_t len)
{
	struct agent *a = agent;
	uint64_t deadline = time_mono_ms() + (uint64_t)a->cfg->pending_timeout_s * 1000ull;
	char wait_for[200] = "";
	int r = 0;

	for (;;) {
		int mine = -1;

		pthread_mutex_lock(&a->mu);
		if (a->outbound < a->cfg->parallel_outbound)
			mine = ++a->outbound; /* reserved while the cluster is asked */
		pthread_mutex_unlock(&a->mu);
		if (mine > 0) {
			int total = mine + peers_outbound(a);

			if (total <= a->cfg->parallel_cluster)
				return 0;
			release_slot(a, m);
			snprintf(wait_for, sizeof(wait_for), "a cluster slot (%d outbound migrations, limit %d)",
				 total - 1, a->cfg->parallel_cluster);
		} else {
			snprintf(wait_for, sizeof(wait_for), "an outbound slot (limit %d on node %s)",
				 a->cfg->parallel_outbound, a->cfg->node);
		}
		if (mig_cancel_requested(m)) {
			snprintf(why, len, "cancelled while Pending");
			r = -ECANCELED;
			break;
		}
		if (time_mono_ms() >= deadline) {
			snprintf(why, len, "waited %d s in Pending for %s", a->cfg->pending_timeout_s, wait_for);
			r = -ETIMEDOUT;
			break;
		}
		pthread_mutex_lock(&a->mu);
		{
			struct timespec ts = time_cond_deadline(300);

			pthread_cond_timedwait(&a->slot_cv, &a->mu, &ts);
		}
		pthread_mutex_unlock(&a->mu);
	}
	return r;
}

void release_slot(void *agent, struct migration *m)
{
	struct agent *a = agent;

	(void)m;
	pthread_mutex_lock(&a->mu);
	a->outbound--;
	pthread_cond_broadcast(&a->slot_cv);
	pthread_mutex_unlock(&a->mu);
}

int target_admit(void *agent, const char *name, char *reason, size_t len)
{
	struct agent *a = agent;
	struct agent_vm *v;
	int r = 0;

	/* limits.parallel_inbound (peers.c checks it first; this closes the
	 * race of two prepares at once): the source waits in Pending. */
	if (agent_inbound_full(a, reason, len))
		return -EBUSY;
	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (!name_free(v)) {
		snprintf(reason, len, "a VM named %s already exists on node %s", name, a->cfg->node);
		r = -EEXIST;
	} else if (!hold_name(a, name, VM_INCOMING)) { /* held until arrival or failure */
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&a->mu);
	return r;
}
