/* Cordon and drain (see drain.h): the cordon and its file, the drain's
 * thread, its pure decisions, and the API rows that drive them.
 *
 * Locking: drain.mu guards the cordon flag and the run. It is a leaf: no
 * one takes agent.mu (or asks a peer) while holding it. The drain thread
 * decides under drain.mu, lets go for the I/O (placement, starting a
 * migration, reading its status), and takes it again to record the
 * result; it is the only writer of the run's VMs. */
#include "agent/drain.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/routes.h"
#include "engine/preflight.h"
#include "schema/mig_settings.h"
#include "schema/migration.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#define DRAIN_TICK_MS 500

struct drain {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* an interrupt, or shutdown */
	int cordoned;
	struct drain_run *run; /* the current or last drain, or NULL */
	pthread_t th;
	int th_live; /* th has been started and not joined */
	int stopping;
};

/* ---- pure decisions -------------------------------------------------------- */

const char *drain_vm_state_name(enum drain_vm_state s)
{
	switch (s) {
	case DV_PENDING: return "Pending";
	case DV_MIGRATING: return "Migrating";
	case DV_MOVED: return "Moved";
	case DV_NOT_MOVABLE: return "NotMovable";
	default: return "Failed";
	}
}

const char *drain_state_name(enum drain_state s)
{
	switch (s) {
	case DS_RUNNING: return "Running";
	case DS_COMPLETED: return "Completed";
	case DS_INTERRUPTED: return "Interrupted";
	default: return "Failed";
	}
}

int drain_slots(int outbound_limit, int cluster_limit, int here_out, int peers_out)
{
	int mine = outbound_limit - here_out, cluster = cluster_limit - here_out - peers_out;
	int n = mine < cluster ? mine : cluster;

	return n > 0 ? n : 0;
}

int drain_next(const struct drain_run *r)
{
	if (r->interrupted)
		return -1;
	for (size_t i = 0; i < r->n; i++)
		if (r->vms[i].state == DV_PENDING)
			return (int)i;
	return -1;
}

int drain_place(const struct drain_run *r, size_t i)
{
	int place = 0;

	if (i >= r->n || r->vms[i].state != DV_PENDING || r->interrupted)
		return 0;
	for (size_t k = 0; k <= i; k++)
		place += r->vms[k].state == DV_PENDING;
	return place;
}

static int tried(const struct drain_vm *v, const char *node)
{
	for (int i = 0; i < v->n_tried; i++)
		if (!strcmp(v->tried[i], node))
			return 1;
	return 0;
}

int drain_pick(const struct drain_vm *v, const struct drain_cand *c, size_t n, char *why, size_t len)
{
	size_t used = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		const char *no = !c[i].eligible ? c[i].reason : tried(v, c[i].name) ? "its migration there failed" : NULL;

		if (no) {
			int w = snprintf(why + used, used < len ? len - used : 0, "%s%s: %s", used ? "; " : "",
					 c[i].name, no);

			used += w > 0 ? (size_t)w : 0;
			continue;
		}
		if (best < 0 || c[i].free_mib > c[best].free_mib ||
		    (c[i].free_mib == c[best].free_mib && c[i].load < c[best].load))
			best = (int)i;
	}
	if (best < 0) {
		char tmp[1024];

		snprintf(tmp, sizeof(tmp), "%s", used ? why : "no peers configured");
		snprintf(why, len, "no eligible node: %s", tmp);
	}
	return best;
}

void drain_reserve(const struct drain_run *r, struct drain_cand *c, size_t n)
{
	for (size_t i = 0; i < r->n; i++)
		for (size_t k = 0; k < n && r->vms[i].state == DV_MIGRATING; k++)
			if (!strcmp(c[k].name, r->vms[i].target))
				c[k].free_mib -= r->vms[i].memory_mib;
}

void drain_failed(struct drain_vm *v, int max_attempts, const char *reason)
{
	if (v->target[0] && !tried(v, v->target) && v->n_tried < DRAIN_TRIED_MAX)
		snprintf(v->tried[v->n_tried++], sizeof(v->tried[0]), "%s", v->target);
	v->mig[0] = '\0';
	if (v->timed_out) {
		v->state = DV_FAILED;
		return; /* the reason says so already */
	}
	if (v->attempts < max_attempts) {
		v->state = DV_PENDING;
		snprintf(v->reason, sizeof(v->reason), "attempt %d to %s failed: %s", v->attempts, v->target, reason);
		return;
	}
	v->state = DV_FAILED;
	snprintf(v->reason, sizeof(v->reason), "%d attempts failed, the last to %s: %s", v->attempts, v->target,
		 reason);
}

enum drain_state drain_outcome(const struct drain_run *r)
{
	int open = 0, stuck = 0;

	for (size_t i = 0; i < r->n; i++) {
		enum drain_vm_state s = r->vms[i].state;

		open += s == DV_MIGRATING || (s == DV_PENDING && !r->interrupted);
		stuck += s != DV_MOVED;
	}
	if (open)
		return DS_RUNNING;
	if (r->interrupted)
		return DS_INTERRUPTED;
	return stuck ? DS_FAILED : DS_COMPLETED;
}

/* ---- the cordon ------------------------------------------------------------ */

static void cordon_path(struct agent *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s/cordoned", a->cfg->state_dir);
}

int drain_init(struct agent *a)
{
	struct drain *d = calloc(1, sizeof(*d));
	char path[512];

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	cordon_path(a, path, sizeof(path));
	d->cordoned = access(path, F_OK) == 0;
	a->drain = d;
	if (d->cordoned)
		log_info("drain", "event=node_cordoned node=%s reason=\"cordoned before the restart\"", a->cfg->node);
	return 0;
}

int drain_cordoned(struct agent *a)
{
	struct drain *d = a->drain;
	int c;

	if (!d)
		return 0;
	pthread_mutex_lock(&d->mu);
	c = d->cordoned;
	pthread_mutex_unlock(&d->mu);
	return c;
}

/* Sets the cordon and its file (written before the flag changes, so what
 * the API says is what a restart finds). Caller holds drain.mu. */
static int set_cordon(struct agent *a, int on, char *err, size_t errlen)
{
	struct drain *d = a->drain;
	char path[512];
	int r = 0;

	if (d->cordoned == on)
		return 0;
	cordon_path(a, path, sizeof(path));
	if (on) {
		r = fs_write_atomic(path, "cordoned\n", 9, 0600);
	} else if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot %s node %s: %s: %s", on ? "cordon" : "uncordon", a->cfg->node, path,
			 strerror(-r));
		return r;
	}
	d->cordoned = on;
	if (on)
		log_info("drain", "event=node_cordoned node=%s", a->cfg->node);
	else
		log_info("drain", "event=node_uncordoned node=%s", a->cfg->node);
	return 0;
}

/* ---- the drain as JSON ------------------------------------------------------ */

static struct json_object *ts_json(time_t t)
{
	char buf[40];

	if (!t)
		return NULL;
	time_format_rfc3339((uint64_t)t * 1000000ull, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static struct json_object *run_json(const struct drain_run *r)
{
	struct json_object *o = json_object_new_object(), *vms = json_object_new_array();
	struct json_object *report = json_object_new_array();

	json_object_object_add(o, "state", json_object_new_string(drain_state_name(r->state)));
	json_object_object_add(o, "started", ts_json(r->started));
	json_object_object_add(o, "ended", ts_json(r->ended));
	json_object_object_add(o, "maxAttempts", json_object_new_int(r->max_attempts));
	json_object_object_add(o, "timeoutS", json_object_new_int(r->timeout_s));
	for (size_t i = 0; i < r->n; i++) {
		const struct drain_vm *v = &r->vms[i];
		struct json_object *j = json_object_new_object();
		int place = drain_place(r, i);

		json_object_object_add(j, "vm", json_object_new_string(v->vm));
		json_object_object_add(j, "state", json_object_new_string(drain_vm_state_name(v->state)));
		if (place)
			json_object_object_add(j, "place", json_object_new_int(place));
		json_object_object_add(j, "target", v->target[0] ? json_object_new_string(v->target) : NULL);
		json_object_object_add(j, "attempts", json_object_new_int(v->attempts));
		json_object_object_add(j, "migration", v->mig[0] ? json_object_new_string(v->mig) : NULL);
		json_object_object_add(j, "reason", v->reason[0] ? json_object_new_string(v->reason) : NULL);
		json_object_array_add(vms, j);
		/* The report: every VM that did not move, once the drain has
		 * let it go (interrupted ones left Pending included). */
		if (v->state == DV_NOT_MOVABLE || v->state == DV_FAILED ||
		    (v->state == DV_PENDING && r->state != DS_RUNNING)) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "vm", json_object_new_string(v->vm));
			json_object_object_add(e, "result", json_object_new_string(drain_vm_state_name(v->state)));
			json_object_object_add(e, "reason", json_object_new_string(
				v->state == DV_PENDING ? "the drain was interrupted before it started" : v->reason));
			json_object_array_add(report, e);
		}
	}
	json_object_object_add(o, "vms", vms);
	json_object_object_add(o, "report", report);
	return o;
}

/* The counts GET /v1/node shows for the current drain. */
static struct json_object *run_summary(const struct drain_run *r)
{
	struct json_object *o = json_object_new_object();
	int n[5] = {0};

	for (size_t i = 0; i < r->n; i++)
		n[r->vms[i].state]++;
	json_object_object_add(o, "state", json_object_new_string(drain_state_name(r->state)));
	json_object_object_add(o, "started", ts_json(r->started));
	json_object_object_add(o, "ended", ts_json(r->ended));
	json_object_object_add(o, "vms", json_object_new_int((int)r->n));
	for (int s = DV_PENDING; s <= DV_FAILED; s++) {
		char key[16];

		snprintf(key, sizeof(key), "%s", drain_vm_state_name((enum drain_vm_state)s));
		key[0] = (char)(key[0] - 'A' + 'a');
		json_object_object_add(o, key, json_object_new_int(n[s]));
	}
	return o;
}

void drain_node_fields(struct agent *a, struct json_object *o)
{
	struct drain *d = a->drain;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	json_object_object_add(o, "cordoned", json_object_new_boolean(d->cordoned));
	json_object_object_add(o, "drain", d->run ? run_summary(d->run) : NULL);
	pthread_mutex_unlock(&d->mu);
}

/* ---- the drain's thread ---------------------------------------------------- */

/* Outbound migrations of this node now: its VMs that are Migrating. */
static int here_outbound(struct agent *a)
{
	int n = 0;

	pthread_mutex_lock(&a->mu);
	for (struct agent_vm *v = a->vms; v; v = v->next)
		n += v->state == VM_MIGRATING;
	pthread_mutex_unlock(&a->mu);
	return n;
}

/* placement's judgement of the peers for spec, as drain_cands. */
static size_t candidates(struct agent *a, const struct vm_spec *spec, struct drain_cand *c, size_t max)
{
	struct json_object *arr = judge_peers(a, spec);
	size_t n = 0;

	for (size_t i = 0; i < json_object_array_length(arr) && n < max; i++, n++) {
		struct json_object *o = json_object_array_get_idx(arr, i);

		memset(&c[n], 0, sizeof(c[n]));
		snprintf(c[n].name, sizeof(c[n].name), "%s", json_object_get_string(json_object_object_get(o, "name")));
		c[n].eligible = json_object_get_boolean(json_object_object_get(o, "eligible"));
		snprintf(c[n].reason, sizeof(c[n].reason), "%s",
			 json_object_get_string(json_object_object_get(o, "reason")) ?: "");
		c[n].free_mib = json_object_get_int64(json_object_object_get(o, "freeMemoryMiB"));
		c[n].load = json_object_get_int64(json_object_object_get(o, "migrationsInFlight"));
	}
	json_object_put(arr);
	return n;
}

/* What a VM's entry becomes when the drain finds it (at the start, and
 * again when its turn comes): 1 when it is ready to start (Running). */
static int vm_entry_state(struct agent_vm *v, struct drain_vm *e)
{
	if (!v) {
		e->state = DV_NOT_MOVABLE;
		snprintf(e->reason, sizeof(e->reason), "gone from this node during the drain (deleted, or moved by another request)");
		return 0;
	}
	switch (v->state) {
	case VM_RUNNING:
		return 1;
	case VM_MIGRATING:
		/* Someone else's migration: the drain follows it. */
		e->state = DV_MIGRATING;
		snprintf(e->mig, sizeof(e->mig), "%s", v->last_mig);
		e->started_ms = time_mono_ms();
		return 0;
	case VM_STOPPED:
		snprintf(e->reason, sizeof(e->reason), "stopped (only a running VM migrates live)");
		break;
	case VM_PAUSED:
		snprintf(e->reason, sizeof(e->reason), "paused (resume it, or move it by hand)");
		break;
	default:
		snprintf(e->reason, sizeof(e->reason), "%s, not Running", vm_state_name(v->state));
		break;
	}
	e->state = DV_NOT_MOVABLE;
	return 0;
}

/* Records e (a copy the thread worked on) as entry i. */
static void put_entry(struct drain *d, size_t i, const struct drain_vm *e)
{
	pthread_mutex_lock(&d->mu);
	d->run->vms[i] = *e;
	pthread_mutex_unlock(&d->mu);
}

/* Starts VM i's next attempt: a blocker or no eligible node ends it here
 * (NotMovable, or Failed after earlier attempts), else its migration
 * starts to the node drain_pick chose. */
static void start_one(struct agent *a, size_t i, int max_attempts)
{
	struct drain *d = a->drain;
	struct drain_cand c[64];
	struct mset_request rset;
	struct mig_request req;
	struct vm_spec *spec = NULL;
	struct drain_vm e;
	char why[1024], err[900], id[64];
	size_t nc;
	int pick, r;

	pthread_mutex_lock(&d->mu);
	e = d->run->vms[i];
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_lock(&a->mu);
	{
		struct agent_vm *v = find_vm(a, e.vm);

		if (vm_entry_state(v, &e))
			spec = vmspec_dup(v->q->spec);
	}
	pthread_mutex_unlock(&a->mu);
	if (!spec || preflight_vm(spec, why, sizeof(why)) < 0) {
		if (spec) {
			e.state = DV_NOT_MOVABLE;
			snprintf(e.reason, sizeof(e.reason), "%s", why);
		}
		goto out;
	}
	nc = candidates(a, spec, c, sizeof(c) / sizeof(c[0]));
	pthread_mutex_lock(&d->mu);
	drain_reserve(d->run, c, nc);
	pthread_mutex_unlock(&d->mu);
	pick = drain_pick(&e, c, nc, why, sizeof(why));
	if (pick < 0) {
		e.state = e.attempts ? DV_FAILED : DV_NOT_MOVABLE;
		if (e.attempts) {
			char last[sizeof(e.reason)];

			snprintf(last, sizeof(last), "%s", e.reason);
			snprintf(e.reason, sizeof(e.reason), "%.500s; then %.500s", last, why);
		} else {
			snprintf(e.reason, sizeof(e.reason), "%s", why);
		}
		goto out;
	}
	memset(&req, 0, sizeof(req));
	memset(&rset, 0, sizeof(rset));
	ferry_migration_unset(&rset.mig);
	snprintf(req.vm, sizeof(req.vm), "%s", e.vm);
	snprintf(req.target_node, sizeof(req.target_node), "%s", c[pick].name);
	snprintf(e.target, sizeof(e.target), "%s", c[pick].name);
	e.attempts++;
	r = agent_migrate(a, &req, &rset, id, sizeof(id), err, sizeof(err));
	if (r < 0) {
		drain_failed(&e, max_attempts, err);
	} else {
		e.state = DV_MIGRATING;
		e.started_ms = time_mono_ms();
		snprintf(e.mig, sizeof(e.mig), "%.39s", id);
	}
out:
	vmspec_free(spec);
	log_info("drain", "event=drain_vm vm=%s state=%s target=%s attempts=%d reason=\"%s\"", e.vm,
		 drain_vm_state_name(e.state), e.target[0] ? e.target : "-", e.attempts, log_q(e.reason));
	put_entry(d, i, &e);
}

/* Follows VM i's migration: Succeeded moves it, Failed goes to
 * drain_failed; past the drain's timeout it is cancelled (one past the
 * switchover finishes, and counts as it ends). */
static void track_one(struct agent *a, size_t i, int max_attempts, int timeout_s)
{
	struct drain *d = a->drain;
	struct json_object *m;
	struct drain_vm e;
	const char *phase;

	pthread_mutex_lock(&d->mu);
	e = d->run->vms[i];
	pthread_mutex_unlock(&d->mu);
	m = agent_migration_json(a, e.mig);
	phase = m ? json_object_get_string(json_object_object_get(m, "phase")) : "Failed";
	if (m && json_object_get_string(json_object_object_get(m, "targetNode")))
		snprintf(e.target, sizeof(e.target), "%s",
			 json_object_get_string(json_object_object_get(m, "targetNode")));
	if (!strcmp(phase, "Succeeded")) {
		e.state = DV_MOVED;
		e.reason[0] = '\0';
	} else if (!strcmp(phase, "Failed")) {
		const char *why = m ? json_object_get_string(json_object_object_get(m, "failureReason")) : NULL;

		drain_failed(&e, max_attempts, why ? why : "its migration record is gone");
	} else if (!e.timed_out && time_mono_ms() - e.started_ms > (uint64_t)timeout_s * 1000ull) {
		char err[300];

		e.timed_out = 1;
		snprintf(e.reason, sizeof(e.reason), "timed out: not moved in %d s (its migration was cancelled)",
			 timeout_s);
		if (agent_migration_cancel(a, e.mig, "drain timeout", err, sizeof(err)) < 0)
			log_warn("drain", "event=drain_cancel_failed vm=%s mig=%s reason=\"%s\"", e.vm, e.mig, log_q(err));
	}
	json_object_put(m);
	if (e.state != DV_MIGRATING)
		log_info("drain", "event=drain_vm vm=%s state=%s target=%s attempts=%d reason=\"%s\"", e.vm,
			 drain_vm_state_name(e.state), e.target[0] ? e.target : "-", e.attempts, log_q(e.reason));
	put_entry(d, i, &e);
}

/* One round: follow the running migrations, then start as many queued
 * VMs as the limits leave room for. */
static void drain_round(struct agent *a)
{
	struct drain *d = a->drain;
	int max_attempts, timeout_s, slots = -1;
	size_t n;

	pthread_mutex_lock(&d->mu);
	n = d->run->n;
	max_attempts = d->run->max_attempts;
	timeout_s = d->run->timeout_s;
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		int migrating;

		pthread_mutex_lock(&d->mu);
		migrating = d->run->vms[i].state == DV_MIGRATING;
		pthread_mutex_unlock(&d->mu);
		if (migrating)
			track_one(a, i, max_attempts, timeout_s);
	}
	for (;;) {
		int next;

		pthread_mutex_lock(&d->mu);
		next = drain_next(d->run);
		pthread_mutex_unlock(&d->mu);
		if (next < 0)
			break;
		if (slots < 0) {
			int here = here_outbound(a);

			/* The peers are asked only while there is room here. */
			slots = drain_slots(a->cfg->parallel_outbound, a->cfg->parallel_cluster, here,
					    here < a->cfg->parallel_outbound ? peers_outbound(a) : 0);
		}
		if (slots == 0)
			break;
		start_one(a, (size_t)next, max_attempts);
		pthread_mutex_lock(&d->mu);
		slots -= d->run->vms[next].state == DV_MIGRATING;
		pthread_mutex_unlock(&d->mu);
	}
}

static void *drain_main(void *arg)
{
	struct agent *a = arg;
	struct drain *d = a->drain;
	enum drain_state end;

	for (;;) {
		drain_round(a);
		pthread_mutex_lock(&d->mu);
		end = drain_outcome(d->run);
		if (end != DS_RUNNING || d->stopping) {
			end = end == DS_RUNNING ? DS_INTERRUPTED : end;
			d->run->state = end;
			d->run->ended = time(NULL);
			pthread_mutex_unlock(&d->mu);
			break;
		}
		{
			struct timespec ts = time_cond_deadline(DRAIN_TICK_MS);

			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
		}
		pthread_mutex_unlock(&d->mu);
	}
	log_info("drain", "event=drain_ended node=%s state=%s", a->cfg->node, drain_state_name(end));
	return NULL;
}

static int cmp_vm(const void *x, const void *y)
{
	return strcmp(((const struct drain_vm *)x)->vm, ((const struct drain_vm *)y)->vm);
}

/* The drain's VMs, by name: every VM of this node but departed ones. */
static struct drain_run *run_new(struct agent *a, int max_attempts, int timeout_s)
{
	struct drain_run *r = calloc(1, sizeof(*r));
	size_t n = 0;

	if (!r)
		return NULL;
	pthread_mutex_lock(&a->mu);
	for (struct agent_vm *v = a->vms; v; v = v->next)
		n += v->state != VM_DEPARTED;
	r->vms = calloc(n ? n : 1, sizeof(*r->vms));
	for (struct agent_vm *v = a->vms; v && r->vms; v = v->next) {
		struct drain_vm *e = &r->vms[r->n];

		if (v->state == VM_DEPARTED)
			continue;
		snprintf(e->vm, sizeof(e->vm), "%s", v->name);
		e->state = DV_PENDING;
		/* A blocker shows at once, not when the VM's turn comes. */
		if (v->q)
			e->memory_mib = v->q->spec->memory_mib;
		if (vm_entry_state(v, e) && preflight_vm(v->q->spec, e->reason, sizeof(e->reason)) < 0)
			e->state = DV_NOT_MOVABLE;
		r->n++;
	}
	pthread_mutex_unlock(&a->mu);
	if (!r->vms) {
		free(r);
		return NULL;
	}
	qsort(r->vms, r->n, sizeof(*r->vms), cmp_vm);
	r->state = DS_RUNNING;
	r->started = time(NULL);
	r->max_attempts = max_attempts;
	r->timeout_s = timeout_s;
	return r;
}

static void run_free(struct drain_run *r)
{
	if (r)
		free(r->vms);
	free(r);
}

/* Joins a drain thread that has ended (or is told to end). */
static void join_thread(struct drain *d)
{
	if (!d->th_live)
		return;
	pthread_join(d->th, NULL);
	d->th_live = 0;
}

void drain_shutdown(struct agent *a)
{
	struct drain *d = a->drain;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	if (d->run)
		d->run->interrupted = 1;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	join_thread(d);
	run_free(d->run);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
	a->drain = NULL;
}

/* ---- the API rows ------------------------------------------------------------ */

/* An optional integer key of body in [lo, hi]; -EINVAL naming it. */
static int body_int(struct json_object *body, const char *key, int lo, int hi, int *out, char *err,
		    size_t errlen)
{
	struct json_object *v = json_object_object_get(body, key);
	int64_t n;

	if (!v)
		return 0;
	n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || n < lo || n > hi) {
		snprintf(err, errlen, "%s must be an integer from %d to %d", key, lo, hi);
		return -EINVAL;
	}
	*out = (int)n;
	return 0;
}

/* The drain's options: {"maxAttempts": 1..10, "timeoutS": 10..86400},
 * both optional; any other key is refused by name. */
static int drain_options(struct json_object *body, int *max_attempts, int *timeout_s, char *err, size_t errlen)
{
	int r;

	*max_attempts = DRAIN_MAX_ATTEMPTS_DEFAULT;
	*timeout_s = DRAIN_TIMEOUT_S_DEFAULT;
	if (!body)
		return 0;
	json_object_object_foreach(body, key, val) {
		(void)val;
		if (strcmp(key, "maxAttempts") && strcmp(key, "timeoutS")) {
			snprintf(err, errlen, "unknown key \"%.64s\" (a drain takes maxAttempts and timeoutS)", key);
			return -EINVAL;
		}
	}
	r = body_int(body, "maxAttempts", 1, DRAIN_MAX_ATTEMPTS_MAX, max_attempts, err, errlen);
	if (r == 0)
		r = body_int(body, "timeoutS", DRAIN_TIMEOUT_S_MIN, DRAIN_TIMEOUT_S_MAX, timeout_s, err, errlen);
	return r;
}

static void node_reply(const struct route_call *c, struct route_reply *out)
{
	out->body = json_object_new_object();
	json_object_object_add(out->body, "node", json_object_new_string(c->a->cfg->node));
	drain_node_fields(c->a, out->body);
}

int api_cordon(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct drain *d = c->a->drain;
	int r;

	pthread_mutex_lock(&d->mu);
	r = set_cordon(c->a, 1, err, errlen);
	pthread_mutex_unlock(&d->mu);
	if (r == 0)
		node_reply(c, out);
	return r;
}

int api_uncordon(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct drain *d = c->a->drain;
	int r;

	pthread_mutex_lock(&d->mu);
	if (d->run && d->run->state == DS_RUNNING) {
		snprintf(err, errlen, "node %s is draining: interrupt the drain first (DELETE /v1/drain)",
			 c->a->cfg->node);
		r = -EBUSY;
	} else {
		r = set_cordon(c->a, 0, err, errlen);
	}
	pthread_mutex_unlock(&d->mu);
	if (r == 0)
		node_reply(c, out);
	return r;
}

int api_drain_start(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct drain *d = c->a->drain;
	int max_attempts, timeout_s, r;
	struct drain_run *run;

	r = drain_options(c->body, &max_attempts, &timeout_s, err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_lock(&d->mu);
	if (d->run && d->run->state == DS_RUNNING) {
		pthread_mutex_unlock(&d->mu);
		snprintf(err, errlen, "node %s is already draining", c->a->cfg->node);
		return -EBUSY;
	}
	/* The last drain's thread has ended (its state says so): reap it. */
	join_thread(d);
	r = set_cordon(c->a, 1, err, errlen);
	pthread_mutex_unlock(&d->mu);
	if (r < 0)
		return r;
	/* Cordoned first: nothing new arrives while the list is taken. */
	run = run_new(c->a, max_attempts, timeout_s);
	if (!run)
		return -ENOMEM;
	pthread_mutex_lock(&d->mu);
	run_free(d->run);
	d->run = run;
	r = pthread_create(&d->th, NULL, drain_main, c->a);
	if (r != 0) {
		run->state = DS_FAILED;
		run->ended = time(NULL);
		pthread_mutex_unlock(&d->mu);
		snprintf(err, errlen, "cannot start the drain's thread: %s", strerror(r));
		return -r;
	}
	d->th_live = 1;
	out->status = 202;
	out->body = run_json(run);
	pthread_mutex_unlock(&d->mu);
	log_info("drain", "event=drain_started node=%s vms=%zu max_attempts=%d timeout_s=%d", c->a->cfg->node,
		 run->n, max_attempts, timeout_s);
	return 0;
}

int api_drain_get(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct drain *d = c->a->drain;

	pthread_mutex_lock(&d->mu);
	if (d->run)
		out->body = run_json(d->run);
	pthread_mutex_unlock(&d->mu);
	if (!out->body) {
		snprintf(err, errlen, "no drain has run on %s since its agent started", c->where);
		return -ENOENT;
	}
	return 0;
}

int api_drain_stop(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct drain *d = c->a->drain;
	int r = 0;

	pthread_mutex_lock(&d->mu);
	if (!d->run || d->run->state != DS_RUNNING) {
		snprintf(err, errlen, "no drain is running on %s", c->where);
		r = -ENOENT;
	} else {
		d->run->interrupted = 1;
		pthread_cond_broadcast(&d->cv);
		out->status = 202;
		out->body = run_json(d->run);
	}
	pthread_mutex_unlock(&d->mu);
	if (r == 0)
		log_info("drain", "event=drain_interrupted node=%s", c->a->cfg->node);
	return r;
}
