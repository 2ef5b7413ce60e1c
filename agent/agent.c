/* ferryd's VMs and migrations: what this host owns and what it is doing.
 * Here: the tables and the agent's start and end; the engine glue,
 * recovery, VM operations, migrations, placement and presentation live
 * in their own files (agent_int.h). */
#include "agent/agent_int.h"
#include "agent/drain.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/qemu_confine.h"
#include "transport/auth.h"
#include "transport/tls.h"
#include "transport/workers.h"
#include "util/log.h"

const char *vm_state_name(enum vm_state s)
{
	switch (s) {
	case VM_RUNNING: return "Running";
	case VM_MIGRATING: return "Migrating";
	case VM_DEPARTED: return "Departed";
	case VM_STARTING: return "Starting";
	case VM_INCOMING: return "Incoming";
	case VM_PAUSED: return "Paused";
	default: return "Stopped";
	}
}

struct agent_vm *find_vm(struct agent *a, const char *name)
{
	for (struct agent_vm *v = a->vms; v; v = v->next)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

struct agent_vm *add_vm(struct agent *a, const char *name)
{
	struct agent_vm *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->next = a->vms;
	a->vms = v;
	return v;
}

/* A name is free for a new VM or an arriving one only if nothing lives,
 * starts or arrives under it here. */
int name_free(const struct agent_vm *v)
{
	return !v || v->state == VM_DEPARTED || v->state == VM_STOPPED;
}

struct agent_vm *hold_name(struct agent *a, const char *name, enum vm_state state)
{
	struct agent_vm *v = find_vm(a, name);
	int fresh = !v;

	if (!v)
		v = add_vm(a, name);
	if (!v)
		return NULL;
	v->state = state;
	v->fresh = fresh;
	return v;
}

void release_name(struct agent *a, struct agent_vm *v)
{
	if (v->fresh)
		remove_vm(a, v);
	else
		v->state = VM_STOPPED;
}

void remove_vm(struct agent *a, struct agent_vm *v)
{
	struct agent_vm **pp;

	for (pp = &a->vms; *pp && *pp != v; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = v->next;
	qemu_vm_free(v->q);
	free(v);
}

/* ---- lifecycle ------------------------------------------------------------ */

/* How QEMU runs here: binary, accel, the directories VM files may be in,
 * its user and sandbox (engine/qemu_confine.h). */
static int qemu_setup(struct agent *a, const struct ferry_config *cfg, char *err, size_t errlen)
{
	struct qemu_env *q = &a->env.qemu;
	char perr[256];
	int r;

	q->binary = cfg->qemu_binary;
	q->accel = cfg->accel;
	snprintf(q->disks_dir, sizeof(q->disks_dir), "%s/disks", cfg->state_dir);
	a->allowed_dirs = calloc(cfg->n_allowed_paths + 2, sizeof(*a->allowed_dirs));
	if (!a->allowed_dirs)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_allowed_paths; i++)
		a->allowed_dirs[i] = cfg->allowed_paths[i];
	/* ferry's own images are allowed per VM, by qemu_confine_spec: a spec
	 * may name its own copies under disks_dir/NAME/, never another VM's. */
	q->allowed_dirs = a->allowed_dirs;
	q->n_allowed_dirs = cfg->n_allowed_paths;
	r = qemu_confine_init(q, cfg->qemu_user, err, errlen);
	if (r < 0)
		return r;
	/* What a host-model VM gets here; without it only those are refused. */
	if (qemu_probe_host_cpu(q, perr, sizeof(perr)) < 0)
		log_warn("agent", "event=host_cpu_unknown reason=\"%s\"", log_q(perr));
	return 0;
}

/* The state dir and the dirs QEMU passes through (run dirs, migration
 * dirs, images) belong to root; the QEMU user's group may traverse them. */
static int mkdirs(struct agent *a, const char *base)
{
	char p[512];
	int r;
	const char *subs[] = {"", "/vms", "/migrations", "/disks"};

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", base, subs[i]);
		for (char *c = p + 1; *c; c++) {
			if (*c != '/')
				continue;
			*c = '\0';
			mkdir(p, 0755);
			*c = '/';
		}
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		r = qemu_confine_share_dir(&a->env.qemu, p);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Our node identity for peer links, from the config: certificate mode
 * with a tls: section, else the cluster key as a pre-shared key. The
 * configured peers are the only names a link may come from or go to. */
static int agent_ident_new(const struct ferry_config *cfg, struct tls_ident **out, char *reason,
			   size_t len)
{
	struct tls_ident_cfg ic = {.node = cfg->node, .insecure = cfg->insecure_transport};
	const char **names = calloc(cfg->n_peers + 1, sizeof(*names));
	uint8_t key[AUTH_KEY_MAX];
	size_t key_len = sizeof(key);
	int r;

	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_peers; i++)
		names[i] = cfg->peers[i].name;
	ic.peers = names;
	ic.npeers = cfg->n_peers;
	if (cfg->tls_cert[0]) {
		ic.ca = cfg->tls_ca;
		ic.cert = cfg->tls_cert;
		ic.key = cfg->tls_key;
	} else {
		r = auth_load_key(cfg->cluster_key, key, &key_len, reason, len);
		if (r < 0)
			goto out_free_names;
		ic.psk = key;
		ic.psk_len = key_len;
	}
	r = tls_ident_new(&ic, out, reason, len);
	if (cfg->insecure_transport && r == 0)
		log_warn("agent", "event=insecure_transport listen=%s note=\"frames between agents are not encrypted\"",
			 cfg->listen_host);
	tls_probe_ktls();
out_free_names:
	OPENSSL_cleanse(key, sizeof(key));
	free(names);
	return r;
}

int agent_reload_tls(struct agent *a)
{
	char reason[400];
	int r = tls_ident_reload(a->env.ident, reason, sizeof(reason));

	if (r < 0)
		log_error("agent", "event=tls_reload_failed reason=\"%s\" note=\"keeping the old certificate\"",
			  log_q(reason));
	else
		log_info("agent", "event=tls_reloaded mode=%s", tls_ident_cert_mode(a->env.ident) ? "certificate" : "psk");
	return r;
}

int agent_init(struct agent *a, struct ferry_config *cfg, char *err, size_t errlen)
{
	char reason[256];
	int r;

	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->slot_cv, NULL);
	r = qemu_setup(a, cfg, err, errlen);
	if (r < 0)
		return r;
	r = mkdirs(a, cfg->state_dir);
	if (r < 0) {
		snprintf(err, errlen, "cannot create state dir %s: %s", cfg->state_dir, strerror(-r));
		return r;
	}
	r = agent_ident_new(cfg, &a->env.ident, reason, sizeof(reason));
	if (r < 0) {
		snprintf(err, errlen, "%s", reason);
		return r;
	}
	snprintf(a->env.node, sizeof(a->env.node), "%s", cfg->node);
	snprintf(a->env.state_dir, sizeof(a->env.state_dir), "%s", cfg->state_dir);
	a->env.agent = a;
	a->env.on_source_done = on_source_done;
	a->env.on_target_arrived = on_target_arrived;
	a->env.target_admit = target_admit;
	a->env.on_target_failed = on_target_failed;
	a->env.acquire_slot = acquire_slot;
	a->env.release_slot = release_slot;
	a->env.pending_timeout_s = cfg->pending_timeout_s;
	a->env.page_cache_budget = (uint64_t)cfg->mig.page_cache_mib << 20;
	r = drain_init(a);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the cordon: %s", strerror(-r));
		return r;
	}
	cleanup_stale_incoming(a);
	adopt_vms(a);
	load_records(a);
	r = loop_new(&a->lp);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the io_uring loop: %s", strerror(-r));
		return r;
	}
	r = workers_new(a->lp, 0, &a->w);
	if (r < 0) {
		snprintf(err, errlen, "cannot start workers: %s", strerror(-r));
		return r;
	}
	a->env.lp = a->lp;
	a->env.w = a->w;
	return 0;
}

void agent_shutdown(struct agent *a)
{
	/* A drain stops starting migrations first; then migrations in
	 * flight end (their threads use the loop). */
	drain_shutdown(a);
	for (struct agent_mig *am = a->migs; am; am = am->next)
		mig_cancel(am->m, "ferryd is shutting down", "ferryd shutdown");
	while (a->migs) {
		struct agent_mig *am = a->migs;

		a->migs = am->next;
		mig_free(am->m);
		free(am);
	}
	workers_free(a->w);
	free(a->allowed_dirs);
	a->allowed_dirs = NULL;
	qemu_env_free_host_cpu(&a->env.qemu);
	loop_free(a->lp);
	tls_ident_free(a->env.ident);
	a->env.ident = NULL;
	while (a->records) {
		struct agent_record *rec = a->records;

		a->records = rec->next;
		json_object_put(rec->j);
		free(rec);
	}
	/* VMs keep running: an agent restart must not take guests down. */
	while (a->vms) {
		struct agent_vm *v = a->vms;

		a->vms = v->next;
		qemu_vm_free(v->q);
		vmspec_free(v->spec);
		free(v);
	}
	pthread_cond_destroy(&a->slot_cv);
	pthread_mutex_destroy(&a->mu);
}
