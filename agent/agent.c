/* ferryd's VMs and migrations: what this host owns and what it is doing. */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema/mig_settings.h"
#include "engine/preflight.h"
#include "engine/qemu_confine.h"
#include "engine/storage.h"
#include "qmp/qmp.h"
#include "agent/cluster.h"
#include "transport/auth.h"
#include "transport/tls.h"
#include "transport/peer.h"
#include "transport/workers.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"

static const char *vm_state_name(enum vm_state s)
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

static struct agent_vm *find_vm(struct agent *a, const char *name)
{
	for (struct agent_vm *v = a->vms; v; v = v->next)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

static struct agent_vm *add_vm(struct agent *a, const char *name)
{
	struct agent_vm *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->next = a->vms;
	a->vms = v;
	return v;
}

/* ---- engine callbacks ---------------------------------------------------- */

static void on_target_failed(void *agent, const char *name)
{
	struct agent *a = agent;
	struct agent_vm *v;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->state == VM_INCOMING)
		v->state = v->departed_to[0] ? VM_DEPARTED : VM_STOPPED;
	pthread_mutex_unlock(&a->mu);
}

static void on_source_done(void *agent, struct migration *m, int succeeded)
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
			/* The VM lives on the target now; keep its name for history. */
			qemu_vm_free(v->q);
			v->q = NULL;
			v->state = VM_DEPARTED;
			snprintf(v->departed_to, sizeof(v->departed_to), "%s", st.target_node);
		} else {
			v->state = st.guest_paused_on_source ? VM_PAUSED : VM_RUNNING;
		}
	}
	pthread_mutex_unlock(&a->mu);
}

/* A name is free for a new VM or an arriving one only if nothing lives,
 * starts or arrives under it here. */
static int name_free(const struct agent_vm *v)
{
	return !v || v->state == VM_DEPARTED || v->state == VM_STOPPED;
}

static int on_target_arrived(void *agent, struct migration *m, struct qemu_vm *q)
{
	struct agent *a = agent;
	struct agent_vm *v;

	qemu_vm_incoming_done(q);
	qemu_vm_save_spec(q);
	pthread_mutex_lock(&a->mu);
	v = find_vm(a, q->spec->name);
	if (!v)
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
	v->departed_to[0] = '\0';
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

static int peers_outbound(struct agent *a);
static void release_slot(void *agent, struct migration *m);

/* limits.parallel_outbound on this node, limits.parallel_cluster across
 * the nodes this one knows (their outbound counts, from their facts): a
 * migration waits in Pending for both. The cluster count is advisory: two
 * nodes deciding at the same instant may both go. */
static int acquire_slot(void *agent, struct migration *m, char *why, size_t len)
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

static void release_slot(void *agent, struct migration *m)
{
	struct agent *a = agent;

	(void)m;
	pthread_mutex_lock(&a->mu);
	a->outbound--;
	pthread_cond_broadcast(&a->slot_cv);
	pthread_mutex_unlock(&a->mu);
}

static int target_admit(void *agent, const char *name, char *reason, size_t len)
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
	} else {
		if (!v)
			v = add_vm(a, name);
		if (v)
			v->state = VM_INCOMING; /* held until arrival or failure */
		else
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&a->mu);
	return r;
}

/* An earlier ferryd died during an incoming migration: its half-built QEMU
 * holds no guest the source lacks, so it goes. */
static void cleanup_stale_incoming(struct agent *a)
{
	char dir[512], path[800];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/vms", a->cfg->state_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		FILE *f;
		int pid = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/incoming", dir, de->d_name);
		if (access(path, F_OK) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/qemu.pid", dir, de->d_name);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%d", &pid) != 1 || pid <= 1)
				pid = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* The pid may have been reused by any process since: kill it
		 * only if it is this VM's QEMU. */
		if (pid > 0 && qemu_confine_is_vm_qemu(&a->env.qemu, pid, path)) {
			kill(pid, SIGKILL);
		} else if (pid > 0) {
			log_warn("agent", "event=stale_pid_spared vm=%s pid=%d reason=\"not this VM's QEMU\"",
				 de->d_name, pid);
			pid = 0;
		}
		log_warn("agent", "event=stale_incoming_removed vm=%s pid=%d", de->d_name, pid);
		qemu_run_dir_remove(path);
		/* Its half-copied disks too. */
		stor_remove_vm_images(a->cfg->state_dir, de->d_name);
	}
	closedir(d);
}

/* Records left by an earlier run. One still in a non-final phase was cut
 * off by the agent's end: it failed, and the record says so. */
static void load_records(struct agent *a)
{
	char dir[512], path[800];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/records", a->cfg->state_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct agent_record *rec;
		struct json_object *j;
		const char *phase;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		j = json_object_from_file(path);
		if (!j || !json_object_is_type(j, json_type_object)) {
			log_warn("agent", "event=record_unreadable path=%s", path);
			json_object_put(j);
			continue;
		}
		phase = json_object_get_string(json_object_object_get(j, "phase"));
		if (!phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))) {
			char ts[40];

			json_object_object_add(j, "phase", json_object_new_string("Failed"));
			json_object_object_add(j, "failed", json_object_new_boolean(1));
			json_object_object_add(j, "failureReason", json_object_new_string(
				"ferryd stopped during the migration; QEMU cancels a migration whose channels close, so the guest kept running on the source"));
			time_format_rfc3339(time_real_us(), ts, sizeof(ts));
			json_object_object_add(j, "endTimestamp", json_object_new_string(ts));
			json_object_to_file_ext(path, j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		}
		rec = calloc(1, sizeof(*rec));
		if (!rec) {
			json_object_put(j);
			break;
		}
		snprintf(rec->id, sizeof(rec->id), "%s", json_object_get_string(json_object_object_get(j, "id")) ?: "");
		snprintf(rec->vm, sizeof(rec->vm), "%s", json_object_get_string(json_object_object_get(j, "vm")) ?: "");
		rec->j = j;
		rec->next = a->records;
		a->records = rec;
		n++;
	}
	closedir(d);
	/* An adopted VM's last migration is the newest record naming it. */
	for (struct agent_vm *v = a->vms; v; v = v->next) {
		const char *best = NULL;

		for (struct agent_record *rec = a->records; rec; rec = rec->next) {
			const char *ts = json_object_get_string(json_object_object_get(rec->j, "startTimestamp"));

			if (strcmp(rec->vm, v->name) || !ts)
				continue;
			if (!best || strcmp(ts, best) >= 0) {
				best = ts;
				snprintf(v->last_mig, sizeof(v->last_mig), "%s", rec->id);
			}
		}
	}
	log_info("agent", "event=records_loaded count=%u", n);
}

/* QEMUs keep running when ferryd stops; the next ferryd takes them back
 * from their run dirs (after stale incoming ones were removed). */
static void adopt_vms(struct agent *a)
{
	char dir[512], run[800], err[256];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/vms", a->cfg->state_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct qemu_vm *q = NULL;
		struct agent_vm *v;

		if (de->d_name[0] == '.')
			continue;
		snprintf(run, sizeof(run), "%s/%s", dir, de->d_name);
		if (qemu_vm_adopt(run, &q, err, sizeof(err)) < 0) {
			log_warn("agent", "event=vm_not_adopted run_dir=%s reason=\"%s\"", run, log_q(err));
			continue;
		}
		v = add_vm(a, q->spec->name);
		if (!v) {
			qemu_vm_free(q);
			continue;
		}
		v->q = q;
		v->state = VM_RUNNING;
		log_info("agent", "event=vm_adopted vm=%s pid=%d", q->spec->name, q->pid);
	}
	closedir(d);
}

/* ---- lifecycle ------------------------------------------------------------ */

/* How QEMU runs here: binary, accel, the directories VM files may be in,
 * its user and sandbox (engine/qemu_confine.h). */
static int qemu_setup(struct agent *a, const struct ferry_config *cfg, char *err, size_t errlen)
{
	struct qemu_env *q = &a->env.qemu;

	q->binary = cfg->qemu_binary;
	q->accel = cfg->accel;
	snprintf(q->disks_dir, sizeof(q->disks_dir), "%s/disks", cfg->state_dir);
	a->allowed_dirs = calloc(cfg->n_allowed_paths + 2, sizeof(*a->allowed_dirs));
	if (!a->allowed_dirs)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_allowed_paths; i++)
		a->allowed_dirs[i] = cfg->allowed_paths[i];
	a->allowed_dirs[cfg->n_allowed_paths] = q->disks_dir; /* ferry's own images */
	q->allowed_dirs = a->allowed_dirs;
	q->n_allowed_dirs = cfg->n_allowed_paths + 1;
	return qemu_confine_init(q, cfg->qemu_user, err, errlen);
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
	a->peer_fd = a->api_fd = a->api_tcp_fd = -1;
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
	r = peers_start(a, err, errlen);
	if (r < 0)
		return r;
	return api_start(a, err, errlen);
}

void agent_shutdown(struct agent *a)
{
	api_stop(a);
	peers_stop(a);
	/* Migrations in flight end first (their threads use the loop). */
	for (struct agent_mig *am = a->migs; am; am = am->next)
		mig_cancel(am->m, "ferryd is shutting down");
	while (a->migs) {
		struct agent_mig *am = a->migs;

		a->migs = am->next;
		mig_free(am->m);
		free(am);
	}
	workers_free(a->w);
	free(a->allowed_dirs);
	a->allowed_dirs = NULL;
	loop_free(a->lp);
	tls_ident_free(a->env.ident);
	a->env.ident = NULL;
	if (a->peer_fd >= 0)
		close(a->peer_fd);
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
		free(v);
	}
	pthread_cond_destroy(&a->slot_cv);
	pthread_mutex_destroy(&a->mu);
}

/* ---- VMs ------------------------------------------------------------------ */

int agent_vm_create(struct agent *a, struct vm_spec *spec, char *err, size_t errlen)
{
	struct qemu_vm *q = NULL;
	struct agent_vm *v;
	char run_dir[512];
	int r;

	/* Its files must be where this node allows VM files, before the name
	 * is taken (qemu_vm_start checks again). */
	if (qemu_confine_spec(&a->env.qemu, spec, err, errlen) < 0) {
		log_warn("agent", "event=vm_refused vm=%s reason=\"%s\"", spec->name, log_q(err));
		vmspec_free(spec);
		return -EINVAL;
	}

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, spec->name);
	if (!name_free(v)) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s already exists on node %s", spec->name, a->cfg->node);
		vmspec_free(spec);
		return -EEXIST;
	}
	if (!v)
		v = add_vm(a, spec->name);
	if (!v) {
		pthread_mutex_unlock(&a->mu);
		vmspec_free(spec);
		return -ENOMEM;
	}
	/* Reserve the name while QEMU starts. */
	v->state = VM_STARTING;
	v->departed_to[0] = '\0';
	pthread_mutex_unlock(&a->mu);

	snprintf(run_dir, sizeof(run_dir), "%s/vms/%s", a->cfg->state_dir, spec->name);
	r = qemu_vm_start(&a->env.qemu, spec, run_dir, 0, 0, &q, err, errlen);
	pthread_mutex_lock(&a->mu);
	if (r == 0) {
		v->q = q;
		v->state = VM_RUNNING;
	} else {
		v->state = VM_STOPPED;
	}
	pthread_mutex_unlock(&a->mu);
	if (r == 0) {
		qemu_vm_save_spec(q);
		log_info("agent", "event=vm_created vm=%s pid=%d", q->spec->name, q->pid);
	}
	return r;
}

int agent_vm_stop(struct agent *a, const char *name, char *err, size_t errlen)
{
	struct agent_vm *v;
	struct qemu_vm *q;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (!v || !v->q) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "no VM named %s runs on node %s", name, a->cfg->node);
		return -ENOENT;
	}
	if (v->state != VM_RUNNING && v->state != VM_PAUSED) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is %s; wait or cancel first", name, vm_state_name(v->state));
		return -EBUSY;
	}
	q = v->q;
	v->q = NULL;
	v->state = VM_STOPPED;
	pthread_mutex_unlock(&a->mu);
	qemu_vm_stop(q, 10000);
	qemu_vm_remove_files(q);
	qemu_vm_free(q);
	log_info("agent", "event=vm_stopped vm=%s", name);
	return 0;
}

int agent_vm_resume(struct agent *a, const char *name, char *err, size_t errlen)
{
	struct agent_vm *v;
	struct qmp *q = NULL;
	struct qmp_error qe;
	char path[420];
	int r;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (!v || !v->q || v->state != VM_PAUSED) {
		snprintf(err, errlen, "no paused VM named %s on node %s", name, a->cfg->node);
		pthread_mutex_unlock(&a->mu);
		return v && v->q ? -EBUSY : -ENOENT;
	}
	snprintf(path, sizeof(path), "%s", v->q->qmp_path);
	pthread_mutex_unlock(&a->mu);
	r = qmp_connect(path, 10000, &q, &qe);
	if (r == 0)
		r = qmp_call(q, "cont", NULL, NULL, 10000, err, errlen);
	else
		snprintf(err, errlen, "cannot reach the VM's QEMU: %s", qe.desc);
	qmp_close(q);
	if (r < 0)
		return r;
	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->state == VM_PAUSED)
		v->state = VM_RUNNING;
	pthread_mutex_unlock(&a->mu);
	log_info("agent", "event=vm_resumed vm=%s", name);
	return 0;
}

int agent_vm_delete(struct agent *a, const char *name, char *err, size_t errlen)
{
	struct agent_vm *v, **pp;
	struct qemu_vm *q;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (!v) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "no VM named %s on node %s", name, a->cfg->node);
		return -ENOENT;
	}
	if (v->state == VM_MIGRATING || v->state == VM_STARTING || v->state == VM_INCOMING) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is %s; wait or cancel first", name, vm_state_name(v->state));
		return -EBUSY;
	}
	for (pp = &a->vms; *pp != v; pp = &(*pp)->next)
		;
	*pp = v->next;
	q = v->q;
	pthread_mutex_unlock(&a->mu);
	if (q) {
		qemu_vm_stop(q, 10000);
		qemu_vm_remove_files(q);
		qemu_vm_free(q);
	}
	/* Disk copies ferry made for this VM go with it. */
	stor_remove_vm_images(a->cfg->state_dir, name);
	free(v);
	log_info("agent", "event=vm_deleted vm=%s", name);
	return 0;
}

static struct json_object *vm_to_json(struct agent *a, struct agent_vm *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "node", json_object_new_string(
		v->state == VM_DEPARTED ? v->departed_to : a->cfg->node));
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(v->state)));
	if (v->q) {
		char why[900];
		int ok = preflight_vm(v->q->spec, why, sizeof(why)) == 0;

		json_object_object_add(o, "liveMigratable", json_object_new_boolean(ok));
		if (!ok)
			json_object_object_add(o, "notMigratableReason", json_object_new_string(why));
		json_object_object_add(o, "pid", json_object_new_int(v->q->pid));
		json_object_object_add(o, "uuid", json_object_new_string(v->q->spec->uuid));
		json_object_object_add(o, "memoryMiB", json_object_new_int(v->q->spec->memory_mib));
		json_object_object_add(o, "qmpSocket", json_object_new_string(v->q->qmp_path));
		/* Where each disk lives on this node: a local disk that arrived
		 * by storage migration sits under the state dir here. */
		{
			struct json_object *disks = json_object_new_array();

			for (size_t i = 0; i < v->q->spec->n_disks; i++) {
				const struct vm_disk *d = &v->q->spec->disks[i];
				struct json_object *dj = json_object_new_object();

				json_object_object_add(dj, "name", json_object_new_string(d->name));
				json_object_object_add(dj, "path", json_object_new_string(d->path));
				json_object_object_add(dj, "format", json_object_new_string(d->format));
				json_object_object_add(dj, "type", json_object_new_string(d->type));
				json_object_object_add(dj, "storage", json_object_new_string(d->storage));
				json_object_array_add(disks, dj);
			}
			json_object_object_add(o, "disks", disks);
		}
		if (v->q->serial_path[0]) {
			json_object_object_add(o, "serialSocket", json_object_new_string(v->q->serial_path));
			json_object_object_add(o, "serialLog", json_object_new_string(v->q->serial_log));
		}
	}
	if (v->last_mig[0])
		json_object_object_add(o, "lastMigration", json_object_new_string(v->last_mig));
	return o;
}

struct json_object *agent_vm_json(struct agent *a, const char *name)
{
	struct json_object *o = NULL;
	struct agent_vm *v;
	char last[40] = "";

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v) {
		o = vm_to_json(a, v);
		snprintf(last, sizeof(last), "%s", v->last_mig);
	}
	pthread_mutex_unlock(&a->mu);
	if (o && last[0]) {
		struct json_object *ms = agent_migration_json(a, last);

		if (ms)
			json_object_object_add(o, "migrationState", ms);
	}
	return o;
}

struct json_object *agent_vms_json(struct agent *a)
{
	struct json_object *arr = json_object_new_array();

	pthread_mutex_lock(&a->mu);
	for (struct agent_vm *v = a->vms; v; v = v->next)
		json_object_array_add(arr, vm_to_json(a, v));
	pthread_mutex_unlock(&a->mu);
	return arr;
}

char *agent_metrics_text(struct agent *a)
{
	static const char *phases[] = {"Pending", "Scheduling", "Scheduled", "PreparingTarget",
				       "TargetReady", "Running", "Succeeded", "Failed"};
	unsigned long long by[2][8] = {{0}}, raw = 0, wire = 0, vms[7] = {0};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct mig_status st;

	if (!f)
		return strdup("");
	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am; am = am->next) {
		int src;

		mig_get_status(am->m, &st);
		src = !strcmp(st.role, "source");
		if ((unsigned)st.phase < 8)
			by[src][st.phase]++;
		if (src) {
			raw += st.raw_bytes;
			wire += st.wire_bytes;
		}
	}
	for (struct agent_vm *v = a->vms; v; v = v->next)
		if ((unsigned)v->state < 7)
			vms[v->state]++;
	pthread_mutex_unlock(&a->mu);
	fprintf(f, "# HELP ferry_migrations Migrations this agent took part in since it started, by role and phase.\n");
	fprintf(f, "# TYPE ferry_migrations gauge\n");
	for (int r = 0; r < 2; r++)
		for (int p = 0; p < 8; p++)
			fprintf(f, "ferry_migrations{node=\"%s\",role=\"%s\",phase=\"%s\"} %llu\n", a->cfg->node,
				r ? "source" : "target", phases[p], by[r][p]);
	fprintf(f, "# HELP ferry_migration_bytes_total Guest bytes read from source QEMUs (raw) and sent on links (wire).\n");
	fprintf(f, "# TYPE ferry_migration_bytes_total counter\n");
	fprintf(f, "ferry_migration_bytes_total{node=\"%s\",kind=\"raw\"} %llu\n", a->cfg->node, raw);
	fprintf(f, "ferry_migration_bytes_total{node=\"%s\",kind=\"wire\"} %llu\n", a->cfg->node, wire);
	fprintf(f, "# HELP ferry_vms VMs this agent knows, by state.\n# TYPE ferry_vms gauge\n");
	for (int i = 0; i < 7; i++)
		fprintf(f, "ferry_vms{node=\"%s\",state=\"%s\"} %llu\n", a->cfg->node,
			vm_state_name((enum vm_state)i), vms[i]);
	fclose(f);
	return out;
}

struct json_object *agent_node_json(struct agent *a)
{
	struct json_object *o = json_object_new_object(), *peers = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(a->cfg->node));
	json_object_object_add(o, "listen", json_object_new_string(a->cfg->listen_host));
	json_object_object_add(o, "port", json_object_new_int(a->cfg->listen_port));
	for (size_t i = 0; i < a->cfg->n_peers; i++)
		json_object_array_add(peers, json_object_new_string(a->cfg->peers[i].name));
	json_object_object_add(o, "peers", peers);
	{
		struct json_object *labels = json_object_new_object();
		long long avail_kib = 0;
		char line[256];
		int inflight = 0;
		FILE *f = fopen("/proc/meminfo", "r");

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %lld kB", &avail_kib) == 1)
				break;
		if (f)
			fclose(f);
		json_object_object_add(o, "freeMemoryMiB", json_object_new_int64(avail_kib / 1024));
		pthread_mutex_lock(&a->mu);
		for (struct agent_mig *am = a->migs; am; am = am->next)
			inflight += !mig_finished(am->m);
		pthread_mutex_unlock(&a->mu);
		json_object_object_add(o, "migrationsInFlight", json_object_new_int(inflight));
		pthread_mutex_lock(&a->mu);
		json_object_object_add(o, "outbound", json_object_new_int(a->outbound));
		pthread_mutex_unlock(&a->mu);
		for (size_t i = 0; i < a->cfg->n_labels; i++)
			json_object_object_add(labels, a->cfg->labels[i].key,
					       json_object_new_string(a->cfg->labels[i].value));
		json_object_object_add(o, "labels", labels);
		{
			struct json_object *nets = json_object_new_array(), *cpus = json_object_new_array();

			for (size_t i = 0; i < a->cfg->n_networks; i++)
				json_object_array_add(nets, json_object_new_string(a->cfg->networks[i]));
			for (size_t i = 0; i < a->cfg->n_cpu_models; i++)
				json_object_array_add(cpus, json_object_new_string(a->cfg->cpu_models[i]));
			json_object_object_add(o, "networks", nets);
			json_object_object_add(o, "cpuModels", cpus);
		}
	}
	return o;
}

static int json_array_has(struct json_object *arr, const char *v)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(arr, i)) ?: "", v))
			return 1;
	return 0;
}

/* Asks each peer for its facts over the authenticated link and judges it
 * as a target for spec: reachable, the VM's node selector matched by the
 * node's labels, enough free memory. Returns a JSON array of
 * {name, eligible, reason, freeMemoryMiB, migrationsInFlight}. */
static struct json_object *judge_peers(struct agent *a, const struct vm_spec *spec)
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
			ok = 1;
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
			if (ok && !json_array_has(json_object_object_get(facts, "cpuModels"), spec->cpu_model)) {
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
static int pick_node(struct agent *a, const struct vm_spec *spec, char *node, size_t len,
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
static int peers_outbound(struct agent *a)
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

struct json_object *agent_vm_candidates_json(struct agent *a, const char *name)
{
	struct vm_spec *spec = NULL;
	struct agent_vm *v;
	struct json_object *arr;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->q)
		spec = vmspec_dup(v->q->spec);
	pthread_mutex_unlock(&a->mu);
	if (!spec)
		return NULL;
	arr = judge_peers(a, spec);
	vmspec_free(spec);
	return arr;
}

/* ---- migrations ------------------------------------------------------------ */

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
		pthread_mutex_unlock(&a->mu);
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

int agent_migration_cancel(struct agent *a, const char *id_or_vm, char *err, size_t errlen)
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
	r = mig_cancel(m, "cancelled by request");
	if (r == -EBUSY)
		snprintf(err, errlen, "migration %s is past the switchover and cannot be cancelled", mig_id(m));
	else if (r == -EALREADY)
		snprintf(err, errlen, "migration %s has already finished", mig_id(m));
	return r;
}

struct json_object *agent_migration_json(struct agent *a, const char *id)
{
	struct migration *m = agent_find_migration(a, id);
	struct mig_status st;

	if (!m) {
		struct json_object *o = NULL;

		pthread_mutex_lock(&a->mu);
		for (struct agent_record *rec = a->records; rec && !o; rec = rec->next)
			if (!strcmp(rec->id, id))
				o = json_object_get(rec->j);
		pthread_mutex_unlock(&a->mu);
		return o;
	}
	mig_get_status(m, &st);
	return mig_status_to_json(&st);
}

struct json_object *agent_migration_samples_json(struct agent *a, const char *id)
{
	struct migration *m = agent_find_migration(a, id);
	char path[600];

	if (m)
		return mig_samples_json(m);
	/* An earlier run's migration: its series was saved with its record. */
	if (!uuid_valid(id))
		return NULL;
	snprintf(path, sizeof(path), "%s/records/%s.samples", a->cfg->state_dir, id);
	return json_object_from_file(path);
}

struct json_object *agent_migrations_json(struct agent *a, const char *vm)
{
	struct json_object *arr = json_object_new_array();
	struct mig_status st;

	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am; am = am->next) {
		if (vm && strcmp(am->vm, vm))
			continue;
		mig_get_status(am->m, &st);
		json_object_array_add(arr, mig_status_to_json(&st));
	}
	/* History from earlier runs, oldest last. */
	for (struct agent_record *rec = a->records; rec; rec = rec->next)
		if (!vm || !strcmp(rec->vm, vm))
			json_object_array_add(arr, json_object_get(rec->j));
	pthread_mutex_unlock(&a->mu);
	return arr;
}

char *agent_migration_event(struct json_object *m, int *final)
{
	const char *phase = json_object_get_string(json_object_object_get(m, "phase"));
	char *text = NULL;

	*final = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
	if (asprintf(&text, "event: migration\ndata: %s\n\n",
		     json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN)) < 0)
		return NULL;
	return text;
}
