/* The source half of a migration. See migration.h for the rules. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/migration_int.h"
#include "engine/qemu_confine.h"
#include "engine/monitor.h"
#include "engine/policy.h"
#include "engine/storage.h"
#include "qmp/qmp.h"
#include "transport/link.h"
#include "transport/pagecode.h"
#include "transport/relay.h"
#include "util/log.h"
#include "util/timeutil.h"

#define PREPARE_TIMEOUT_MS 90000
#define CHANNEL_SETUP_TIMEOUT_MS 20000
#define CONFIRM_TIMEOUT_MS 120000
#define MONITOR_TICK_MS 50
#define QUERY_EVERY_MS 500
/* Guest disk writes draining at the pause: bounded, or the migration fails
 * and the guest resumes on the source. */
#define SWITCHOVER_DISK_TIMEOUT_MS 60000
/* How long the source waits for the target to record the outcome. */
#define OUTCOME_ACK_MS 10000
/* Pause tuning (engine/policy.h): QEMU stops the guest as soon as what is
 * left fits in the downtime limit, so with the limit at its ceiling (default
 * 300 ms) a migration that could converge much further stops early with a
 * pause near the ceiling. ferry starts low (PAUSE_TUNE_START_MS) and raises
 * the limit only when the remaining data has set no new low for a while:
 * the pause is as short as the guest and the link allow. */

static int start_ram(struct migration *m, char *err, size_t errlen);

/* The source's thread is the only writer of m->state, so it reads it
 * without the lock. */
static int in_postcopy(const struct migration *m)
{
	return m->state == MS_SRC_POSTCOPY || m->state == MS_SRC_POSTCOPY_RECOVERING;
}

/* `migrate` was issued (RAM pre-copy or later). */
static int ram_started(const struct migration *m)
{
	return m->state >= MS_SRC_PRECOPY && m->state <= MS_SRC_CONFIRMING;
}

/* ---- channels QEMU opens ------------------------------------------------ */

struct chan_setup {
	struct migration *m;
	int fd;
	int nbd; /* came in on the NBD listener */
};

static void setup_error(struct migration *m, const char *fmt, const char *a, const char *b)
{
	pthread_mutex_lock(&m->mu);
	if (!m->setup_error[0])
		snprintf(m->setup_error, sizeof(m->setup_error), fmt, a, b);
	pthread_mutex_unlock(&m->mu);
}

/* One thread per QEMU connection: classify it, open a data link to the
 * target agent for it, wait for the target to attach it to its QEMU, then
 * hand both sockets to the relay. */
static void *channel_thread(void *arg)
{
	struct chan_setup *cs = arg;
	struct migration *m = cs->m;
	enum channel_kind kind;
	struct json_object *open = NULL, *ack = NULL;
	char reason[256] = "", label[32];
	struct peer_link *pl = NULL;
	struct seal_stream keys;
	struct relay_stream_opts opts = {m->compress, 0, 0, QSTREAM_OPAQUE};
	int id = 0, r, resume;
	uint32_t sid;

	log_set_migration(m->req.id);
	pthread_mutex_lock(&m->mu);
	resume = !cs->nbd && m->recover_next_main;
	if (resume)
		m->recover_next_main = 0;
	if (cs->nbd)
		id = m->nbd_seq++;
	pthread_mutex_unlock(&m->mu);
	/* A resumed post-copy channel carries no stream header: it is the main
	 * channel by definition. */
	if (cs->nbd) {
		kind = CHANNEL_NBD;
		r = 0;
	} else if (resume) {
		kind = CHANNEL_MAIN;
		r = 0;
	} else {
		r = channel_peek(cs->fd, CHANNEL_SETUP_TIMEOUT_MS, &kind, &id);
	}
	if (r < 0) {
		setup_error(m, "QEMU opened a channel ferry cannot identify (%s)%s",
			    r == -EPROTO ? "unknown magic" : strerror(-r), "");
		goto out;
	}
	/* Stream ids: 1 main, 2.. multifd (QEMU allows up to 255 channels),
	 * NBD_STREAM_BASE.. the mirror connections. */
	sid = kind == CHANNEL_MAIN ? 1 : kind == CHANNEL_NBD ? NBD_STREAM_BASE + (uint32_t)id : 2 + (uint32_t)id;
	if (kind == CHANNEL_MAIN)
		snprintf(label, sizeof(label), "main");
	else
		snprintf(label, sizeof(label), "%s-%d", channel_kind_name(kind), id);
	r = peer_connect(m->env.ident, m->req.target_host, m->req.target_port, m->req.target_node,
			 10000, &pl, reason, sizeof(reason));
	if (r < 0) {
		setup_error(m, "data link for channel %s: %s", label, reason);
		goto out;
	}
	open = json_object_new_object();
	json_object_object_add(open, "mig", json_object_new_string(m->req.id));
	json_object_object_add(open, "kind", json_object_new_string(channel_kind_name(kind)));
	json_object_object_add(open, "channel", json_object_new_int(id));
	json_object_object_add(open, "stream", json_object_new_int64(sid));
	if (resume)
		json_object_object_add(open, "resume", json_object_new_boolean(1));
	/* Page coding of RAM channels, each with an equal share of the
	 * agreed cache. A resumed post-copy channel has no stream header to
	 * parse from: it goes as it is. */
	if (m->page_budget && !resume && kind != CHANNEL_NBD) {
		opts.page_enc_slots = pagec_slots_for(m->page_budget / (1 + (uint64_t)m->multifd));
		opts.chan = kind == CHANNEL_MAIN ? QSTREAM_MAIN : QSTREAM_MULTIFD;
		if (opts.page_enc_slots)
			json_object_object_add(open, "pages", json_object_new_int64(opts.page_enc_slots));
	}
	{
		const char *s = json_object_to_json_string_ext(open, JSON_C_TO_STRING_PLAIN);

		r = peer_send_msg(pl, FRAME_OPEN, s, strlen(s), 10000);
	}
	if (r == 0)
		r = peer_recv_json(pl, CHANNEL_SETUP_TIMEOUT_MS, &ack, reason, sizeof(reason));
	if (r < 0 || !json_object_get_boolean(json_object_object_get(ack, "ok"))) {
		if (r == 0)
			snprintf(reason, sizeof(reason), "%s",
				 json_object_get_string(json_object_object_get(ack, "reason")));
		setup_error(m, "target could not attach channel %s: %s", label, reason);
		goto out;
	}
	log_info("mig", "event=channel_relayed kind=%s channel=%d stream=%u", channel_kind_name(kind),
		 id, sid);
	/* The relay owns both sockets from here, even when it fails. */
	if (peer_link_stream_keys(pl, sid, &keys) < 0) {
		setup_error(m, "cannot derive the keys of channel %s%s", label, "");
		goto out;
	}
	r = relay_add_stream(m->relay, cs->fd, peer_link_take_fd(pl), sid, label, &opts, &keys);
	seal_stream_wipe(&keys);
	cs->fd = -1;
	pl = NULL;
	if (r < 0)
		setup_error(m, "cannot relay channel %s: %s", label, strerror(-r));
out:
	if (cs->fd >= 0)
		close(cs->fd);
	peer_link_close(pl);
	json_object_put(open);
	json_object_put(ack);
	pthread_mutex_lock(&m->mu);
	m->setup_threads--;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	free(cs);
	return NULL;
}

/* Loop thread: QEMU connected to one of our sockets. */
static void accept_cb(struct loop_op *op, int res)
{
	struct mig_listener *l = (struct mig_listener *)((char *)op - offsetof(struct mig_listener, op));
	struct migration *m = l->m;
	struct chan_setup *cs;
	pthread_t t;

	if (res < 0) {
		/* Cancelled (listener closing) or failed: stop accepting. */
		close(l->fd);
		pthread_mutex_lock(&m->mu);
		l->fd = -1;
		l->open = 0;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		return;
	}
	cs = malloc(sizeof(*cs));
	if (!cs) {
		close(res);
		return;
	}
	cs->m = m;
	cs->fd = res;
	cs->nbd = l->nbd;
	pthread_mutex_lock(&m->mu);
	m->setup_threads++;
	pthread_mutex_unlock(&m->mu);
	if (pthread_create(&t, NULL, channel_thread, cs) != 0) {
		close(res);
		free(cs);
		pthread_mutex_lock(&m->mu);
		m->setup_threads--;
		pthread_mutex_unlock(&m->mu);
		return;
	}
	pthread_detach(t);
}

static void listener_arm(void *arg)
{
	struct mig_listener *l = arg;

	int r;

	l->op.cb = accept_cb;
	r = loop_accept(l->m->env.lp, &l->op, l->fd);
	if (r < 0) {
		setup_error(l->m, "cannot accept QEMU's channels (%s): %s", l->nbd ? "disks" : "migration", strerror(-r));
		accept_cb(&l->op, r); /* closes it: stop_listener must not wait */
	}
}

static void listener_cancel(void *arg)
{
	struct mig_listener *l = arg;

	loop_cancel_fd(l->m->env.lp, l->fd);
}

static int open_listener(struct mig_listener *l)
{
	int r = link_listen_unix(l->path, &l->fd);

	if (r < 0)
		return r;
	/* QEMU connects to it as its own user. */
	r = qemu_confine_give(&l->m->env.qemu, l->path);
	if (r < 0) {
		close(l->fd);
		l->fd = -1;
		return r;
	}
	l->open = 1;
	loop_post_must(l->m->env.lp, listener_arm, l);
	return 0;
}

static void stop_listener(struct mig_listener *l)
{
	struct migration *m = l->m;

	pthread_mutex_lock(&m->mu);
	if (l->open) {
		pthread_mutex_unlock(&m->mu);
		loop_post_must(m->env.lp, listener_cancel, l);
		pthread_mutex_lock(&m->mu);
		while (l->open)
			pthread_cond_wait(&m->cv, &m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	if (l->path[0])
		unlink(l->path);
}

/* Stops accepting and waits for channel threads: after this nothing else
 * touches m from other threads except the relay's own pumps. */
static void close_listeners(struct migration *m)
{
	stop_listener(&m->out);
	stop_listener(&m->nbd);
	pthread_mutex_lock(&m->mu);
	while (m->setup_threads > 0)
		pthread_cond_wait(&m->cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
}

/* Who ended the migration, when it was not a cancel through the API
 * (mig_cancel records that one): the policy (a timeout), or whoever
 * cancelled on the target. The first one stays. */
static void set_cancelled_by(struct migration *m, const char *by)
{
	pthread_mutex_lock(&m->mu);
	if (!m->st.cancelled_by[0])
		snprintf(m->st.cancelled_by, sizeof(m->st.cancelled_by), "%s", by);
	pthread_mutex_unlock(&m->mu);
}

/* ---- QMP figures --------------------------------------------------------- */

static uint64_t jget_u64(struct json_object *o, const char *path1, const char *path2)
{
	struct json_object *a = json_object_object_get(o, path1);

	if (path2)
		a = a ? json_object_object_get(a, path2) : NULL;
	return a ? (uint64_t)json_object_get_int64(a) : 0;
}

static void update_figures(struct migration *m, struct json_object *qm)
{
	uint64_t page = jget_u64(qm, "ram", "page-size");

	pthread_mutex_lock(&m->mu);
	m->st.ram_total = jget_u64(qm, "ram", "total");
	m->st.ram_transferred = jget_u64(qm, "ram", "transferred");
	m->st.ram_remaining = jget_u64(qm, "ram", "remaining");
	m->st.dirty_rate_bps = jget_u64(qm, "ram", "dirty-pages-rate") * (page ? page : 4096);
	/* copy_rate_bps comes from ferry's own counters (monitor). */
	m->st.iterations = jget_u64(qm, "ram", "dirty-sync-count");
	m->st.cpu_throttle_pct = (int)jget_u64(qm, "cpu-throttle-percentage", NULL);
	m->st.postcopy_requests = jget_u64(qm, "ram", "postcopy-requests");
	m->st.expected_pause_ms = jget_u64(qm, "expected-downtime", NULL);
	if (json_object_object_get(qm, "downtime"))
		m->st.qemu_downtime_ms = jget_u64(qm, "downtime", NULL);
	pthread_mutex_unlock(&m->mu);
}

static int query_migrate(struct migration *m, char *status, size_t slen, char *errdesc, size_t elen)
{
	struct json_object *ret = NULL;
	char err[256];
	int r = mig_qmp(m, "query-migrate", NULL, &ret, 5000, err, sizeof(err));

	if (r < 0)
		return r;
	snprintf(status, slen, "%s", json_object_get_string(json_object_object_get(ret, "status")));
	if (errdesc)
		snprintf(errdesc, elen, "%s",
			 json_object_get_string(json_object_object_get(ret, "error-desc")) ?: "");
	update_figures(m, ret);
	json_object_put(ret);
	return 0;
}

static int vm_running(struct migration *m)
{
	struct json_object *ret = NULL;
	char err[256];
	int running = 0;

	if (mig_qmp(m, "query-status", NULL, &ret, 5000, err, sizeof(err)) == 0)
		running = json_object_get_boolean(json_object_object_get(ret, "running"));
	json_object_put(ret);
	return running;
}

/* After a failure: make sure the guest runs on the source again. QEMU
 * restarts it itself when a migration fails or is cancelled before the
 * switchover; this covers what it does not. */
static void ensure_source_running(struct migration *m)
{
	char err[256];

	if (!m->qmp)
		return;
	if (!vm_running(m)) {
		log_warn("mig", "event=resume_source reason=\"guest not running after failure\"");
		if (mig_qmp(m, "cont", NULL, NULL, 10000, err, sizeof(err)) < 0)
			log_error("mig", "event=resume_source_failed err=\"%s\"", log_q(err));
	}
}

static void cancel_qemu_migration(struct migration *m)
{
	char status[64] = "", err[256];
	uint64_t deadline = time_mono_ms() + 15000;

	mig_qmp(m, "migrate_cancel", NULL, NULL, 5000, err, sizeof(err));
	/* Wait until QEMU has left the active states. */
	while (time_mono_ms() < deadline) {
		if (query_migrate(m, status, sizeof(status), NULL, 0) < 0)
			break;
		if (strcmp(status, "active") && strcmp(status, "cancelling") &&
		    strcmp(status, "setup") && strcmp(status, "device") &&
		    strcmp(status, "pre-switchover"))
			break;
		qmp_pump(m->qmp, 100);
	}
	log_info("mig", "event=qemu_migration_cancelled status=%s", status);
}

/* ---- the source thread ---------------------------------------------------- */

static int send_prepare(struct migration *m, char *err, size_t errlen)
{
	struct json_object *msg = json_object_new_object(), *reply = NULL;
	const char *op;
	int r;

	/* peer_connect refuses an agent that is not target_node. */
	r = peer_connect(m->env.ident, m->req.target_host, m->req.target_port, m->req.target_node,
			 10000, &m->ctl, err, errlen);
	if (r < 0)
		goto out;
	json_object_object_add(msg, "op", json_object_new_string("prepare"));
	json_object_object_add(msg, "mig", json_object_new_string(m->req.id));
	json_object_object_add(msg, "source", json_object_new_string(m->env.node));
	json_object_object_add(msg, "spec", vmspec_to_json(m->vm->spec));
	json_object_object_add(msg, "multifd", json_object_new_int(m->multifd));
	json_object_object_add(msg, "compress", json_object_new_boolean(m->compress));
	json_object_object_add(msg, "paused", json_object_new_boolean(m->req.verify_memory || m->req.keep_paused));
	json_object_object_add(msg, "stay_paused", json_object_new_boolean(m->req.keep_paused));
	json_object_object_add(msg, "postcopy", json_object_new_boolean(m->postcopy));
	json_object_object_add(msg, "disks", stor_to_json(m->stor));
	/* The record both nodes keep: its name, start and our way to the
	 * target from the start, the rest in "outcome" at the end. */
	json_object_object_add(msg, "name", json_object_new_string(m->req.name));
	json_object_object_add(msg, "start_us", json_object_new_int64((int64_t)m->st.start_us));
	json_object_object_add(msg, "target_addr", json_object_new_string(m->st.target_addr));
	json_object_object_add(msg, "outcome", json_object_new_boolean(1));
	/* Page coding: the cache we would use; the target answers with what
	 * it takes (at most its own budget), an older one with nothing. */
	if (m->page_budget)
		json_object_object_add(msg, "page_cache", json_object_new_int64((int64_t)m->page_budget));
	r = peer_send_json(m->ctl, msg);
	if (r < 0) {
		snprintf(err, errlen, "cannot send the prepare request: %s", strerror(-r));
		goto out;
	}
	/* Wait for the answer, but stay cancellable while the target starts
	 * its QEMU. */
	{
		uint64_t deadline = time_mono_ms() + PREPARE_TIMEOUT_MS;
		char why[256];

		for (;;) {
			struct pollfd pfd = {.fd = m->ctl->fd, .events = POLLIN};

			if (mig_take_cancel(m, why, sizeof(why))) {
				snprintf(err, errlen, "cancelled while preparing the target: %s", why);
				r = -ECANCELED;
				goto out;
			}
			if (time_mono_ms() >= deadline) {
				snprintf(err, errlen, "the target did not prepare in %d s", PREPARE_TIMEOUT_MS / 1000);
				r = -ETIMEDOUT;
				goto out;
			}
			if (poll(&pfd, 1, 100) > 0)
				break;
		}
	}
	r = peer_recv_json(m->ctl, 10000, &reply, err, errlen);
	if (r < 0)
		goto out;
	/* An older target does not say it: it gets no outcome. */
	m->peer_outcome = json_object_get_boolean(json_object_object_get(reply, "outcome"));
	{
		int64_t pc = json_object_get_int64(json_object_object_get(reply, "page_cache"));

		m->page_budget = pc > 0 && (uint64_t)pc < m->page_budget ? (uint64_t)pc :
				 pc > 0 ? m->page_budget : 0;
		m->st.page_cache_bytes = m->page_budget;
	}
	op = json_object_get_string(json_object_object_get(reply, "op"));
	if (!op || strcmp(op, "prepared")) {
		snprintf(err, errlen, "target refused: %s",
			 json_object_get_string(json_object_object_get(reply, "reason")) ?: "no reason");
		r = json_object_get_boolean(json_object_object_get(reply, "busy")) ? -EBUSY : -ECONNREFUSED;
	}
out:
	json_object_put(msg);
	json_object_put(reply);
	return r;
}

static int set_parameters(struct migration *m, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	uint64_t bw = mset_max_bandwidth_bps(&m->req.set);
	int dt;
	int r;

	/* QEMU's default max-bandwidth throttles at 128 MiB/s: always set it.
	 * "Unlimited" is 1 TiB/s. */
	json_object_object_add(args, "max-bandwidth",
			       json_object_new_int64(bw ? (int64_t)bw : (int64_t)1 << 40));
	/* A cap per migration covers its post-copy phase too (QEMU keeps a
	 * separate one, 0 = unlimited). Always set: QEMU keeps parameters
	 * across migrations, so a capped migration that was cancelled or
	 * failed would otherwise throttle the next one's post-copy. */
	json_object_object_add(args, "max-postcopy-bandwidth", json_object_new_int64((int64_t)bw));
	m->downtime_ceiling_ms = m->req.set.v.downtime_limit_ms;
	/* No pause tuning under auto-converge: every extra pass is spent with
	 * the guest's vCPUs throttled, a worse cost than a longer pause. */
	if (!m->auto_converge && m->downtime_ceiling_ms > PAUSE_TUNE_START_MS)
		dt = PAUSE_TUNE_START_MS;
	else
		dt = m->downtime_ceiling_ms;
	json_object_object_add(args, "downtime-limit", json_object_new_int64(dt));
	if (m->auto_converge) {
		/* QEMU's defaults (20 % then +10 % per pass) take minutes on a
		 * large working set; auto-converge is an escalation here, asked
		 * for because the migration must finish. */
		json_object_object_add(args, "cpu-throttle-initial", json_object_new_int(30));
		json_object_object_add(args, "cpu-throttle-increment", json_object_new_int(20));
	}
	pthread_mutex_lock(&m->mu);
	m->st.downtime_limit_ms = dt;
	pthread_mutex_unlock(&m->mu);
	r = mig_qmp(m, "migrate-set-parameters", args, NULL, 5000, err, errlen);
	json_object_put(args);
	return r;
}

/* Sets QEMU's downtime limit; 0 or -errno. */
static int set_downtime_limit(struct migration *m, int ms)
{
	struct json_object *args = json_object_new_object();
	char err[256];
	int r;

	json_object_object_add(args, "downtime-limit", json_object_new_int64(ms));
	r = mig_qmp(m, "migrate-set-parameters", args, NULL, 5000, err, sizeof(err));
	json_object_put(args);
	if (r < 0) {
		log_warn("mig", "event=downtime_limit_failed ms=%d err=\"%s\"", ms, log_q(err));
		return r;
	}
	pthread_mutex_lock(&m->mu);
	m->st.downtime_limit_ms = ms;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/* Pause tuning (pol_pause_next): the remaining data stopped setting clear
 * new lows under the current limit, so allow a longer pause, up to the
 * ceiling. "Clear": 10 % below the last one; a working set rewritten as
 * fast as it is copied hovers with tiny new lows that prove nothing. */
static void tune_pause(struct migration *m, const struct monitor *mon, uint64_t now)
{
	int cur, next;

	pthread_mutex_lock(&m->mu);
	cur = m->st.downtime_limit_ms;
	pthread_mutex_unlock(&m->mu);
	next = pol_pause_next(&m->pause, cur, m->downtime_ceiling_ms, mon, now);
	if (next && set_downtime_limit(m, next) == 0)
		log_info("mig", "event=pause_tuning from_ms=%d to_ms=%d remaining=%llu", cur, next,
			 (unsigned long long)mon->remaining);
}

/* Switch to post-copy: the target runs the guest from now on and pulls
 * what it lacks. 0 or -errno. */
static int start_postcopy(struct migration *m, struct monitor *mon)
{
	char err[256];

	/* Only from pre-copy: at or past the switchover it is too late. */
	if (m->state != MS_SRC_PRECOPY)
		return -EALREADY;
	if (mig_qmp(m, "migrate-start-postcopy", NULL, NULL, 5000, err, sizeof(err)) < 0) {
		log_warn("mig", "event=post_copy_failed err=\"%s\"", log_q(err));
		return -EIO;
	}
	/* Post-copy cannot be undone: the target runs the guest from now on,
	 * so nothing may abort the migration any more (the state refuses
	 * cancels, the timeouts go). */
	(void)mig_enter(m, MS_SRC_POSTCOPY);
	m->postcopy_entered = 1;
	mon->progress_timeout_ms = 0;
	mon->completion_timeout_ms = 0;
	pthread_mutex_lock(&m->mu);
	m->st.escalations++;
	pthread_mutex_unlock(&m->mu);
	log_info("mig", "event=post_copy_started remaining=%llu", (unsigned long long)mon->remaining);
	return 0;
}

/* One escalation step after escalate_after_s without progress, in order:
 * raise the downtime limit by a step (until its max), then switch to
 * post-copy. Auto-converge needs no step: QEMU throttles the vCPUs itself
 * once it sees the dirty rate outrun the copy. Returns 1 if a step was
 * taken. */
static int escalate(struct migration *m, struct monitor *mon)
{
	int step = m->req.set.v.downtime_step_ms;
	int max = m->req.set.v.downtime_max_ms;
	int cur, next = 0;

	pthread_mutex_lock(&m->mu);
	cur = m->st.downtime_limit_ms;
	pthread_mutex_unlock(&m->mu);
	switch (pol_escalation_next(cur, m->downtime_ceiling_ms, step, max, m->postcopy, in_postcopy(m), &next)) {
	case POL_STEP_DOWNTIME:
		if (set_downtime_limit(m, next) == 0) {
			pthread_mutex_lock(&m->mu);
			m->st.escalations++;
			pthread_mutex_unlock(&m->mu);
			log_info("mig", "event=escalation action=downtime_limit from_ms=%d to_ms=%d", cur, next);
		}
		return 1;
	case POL_STEP_POSTCOPY:
		return start_postcopy(m, mon) == 0;
	case POL_STEP_NONE:
		break;
	}
	return 0;
}

#define RECOVER_WAIT_MS (10 * 60 * 1000)

static int wait_qemu_status(struct migration *m, const char *want, int timeout_ms)
{
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;
	char status[64] = "";

	while (time_mono_ms() < deadline) {
		if (query_migrate(m, status, sizeof(status), NULL, 0) == 0 && !strcmp(status, want))
			return 0;
		qmp_pump(m->qmp, 100);
	}
	return -ETIMEDOUT;
}

/* Post-copy broke: the target runs the guest, the source holds the pages
 * not yet sent, and neither can finish alone. QEMU parks both halves in
 * postcopy-paused; this brings the link back and resumes: a fresh relay,
 * a new control link ("resume": the target runs migrate-recover and answers
 * "recover-ready"), then `migrate resume=true`, whose channel the listener
 * hands straight to the new relay as the main stream. Retries the peer for
 * RECOVER_WAIT_MS. 0 when QEMU resumed, -errno when it gave up. */
static int recover_postcopy(struct migration *m)
{
	uint64_t deadline = time_mono_ms() + RECOVER_WAIT_MS;
	struct json_object *msg, *reply = NULL, *args;
	struct relay *old, *nr = NULL;
	char err[320], uri[480];
	struct peer_link *pl = NULL;
	int r;

	log_warn("mig", "event=postcopy_paused action=recover");
	(void)mig_enter(m, MS_SRC_POSTCOPY_RECOVERING);
	if (wait_qemu_status(m, "postcopy-paused", 30000) < 0)
		log_warn("mig", "event=postcopy_not_paused note=\"trying to resume anyway\"");
	r = relay_new(m->env.lp, m->env.w, &nr);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->mu);
	old = m->relay;
	m->relay = nr;
	m->recover_next_main = 1;
	pthread_mutex_unlock(&m->mu);
	relay_free(old);
	peer_link_close(m->ctl);
	m->ctl = NULL;
	while (time_mono_ms() < deadline) {
		r = peer_connect(m->env.ident, m->req.target_host, m->req.target_port,
				 m->req.target_node, 5000, &pl, err, sizeof(err));
		if (r == 0) {
			msg = json_object_new_object();
			json_object_object_add(msg, "op", json_object_new_string("resume"));
			json_object_object_add(msg, "mig", json_object_new_string(m->req.id));
			r = peer_send_json(pl, msg);
			json_object_put(msg);
			if (r == 0)
				r = peer_recv_json(pl, 60000, &reply, err, sizeof(err));
			if (r == 0) {
				const char *op = json_object_get_string(json_object_object_get(reply, "op"));

				r = op && !strcmp(op, "recover-ready") ? 0 : -EPROTO;
				if (r < 0)
					snprintf(err, sizeof(err), "%s",
						 json_object_get_string(json_object_object_get(reply, "reason")) ?: "refused");
				json_object_put(reply);
				reply = NULL;
			}
			if (r == 0)
				break;
			peer_link_close(pl);
			pl = NULL;
		}
		log_info("mig", "event=recover_retry err=\"%s\"", log_q(err));
		poll(NULL, 0, 1000); /* the peer is away; retry at a steady pace */
	}
	if (!pl) {
		mig_set_failure(m, "post-copy interrupted and the target did not come back in %d s: the guest is split between both nodes and paused; neither side was stopped",
				RECOVER_WAIT_MS / 1000);
		return -ETIMEDOUT;
	}
	m->ctl = pl;
	args = json_object_new_object();
	snprintf(uri, sizeof(uri), "unix:%s", m->out.path);
	json_object_object_add(args, "uri", json_object_new_string(uri));
	json_object_object_add(args, "resume", json_object_new_boolean(1));
	r = mig_qmp(m, "migrate", args, NULL, 10000, err, sizeof(err));
	json_object_put(args);
	if (r < 0) {
		mig_set_failure(m, "post-copy resume refused: %s", err);
		return r;
	}
	(void)mig_enter(m, MS_SRC_POSTCOPY);
	pthread_mutex_lock(&m->mu);
	m->st.recoveries++;
	pthread_mutex_unlock(&m->mu);
	log_info("mig", "event=postcopy_resumed");
	return 0;
}

/* QEMU paused at pre-switchover (guest stopped): end every mirror
 * gracefully so the target images are complete, then let QEMU send the
 * device state. 0, or -errno with the failure recorded. */
static int switchover_disks(struct migration *m)
{
	struct json_object *args;
	char err[256];
	uint64_t t0 = time_mono_ms();
	int r = stor_source_complete(m->stor, m->qmp, SWITCHOVER_DISK_TIMEOUT_MS, err, sizeof(err));

	if (r < 0) {
		mig_set_failure(m, "storage switchover failed: %s", err);
		return r;
	}
	log_info("storage", "event=mirrors_completed disks=%zu ms=%llu", stor_count(m->stor),
		 (unsigned long long)(time_mono_ms() - t0));
	/* The last poll is up to 500 ms old: the drain copied the rest. */
	pthread_mutex_lock(&m->mu);
	m->st.disk_transferred += m->st.disk_remaining;
	m->st.disk_remaining = 0;
	pthread_mutex_unlock(&m->mu);
	args = json_object_new_object();
	json_object_object_add(args, "state", json_object_new_string("pre-switchover"));
	r = mig_qmp(m, "migrate-continue", args, NULL, 5000, err, sizeof(err));
	json_object_put(args);
	if (r < 0)
		mig_set_failure(m, "%s", err);
	return r;
}

/* Rates of the mirror jobs between two polls, and the copy-mode policy. */
struct disk_watch {
	uint64_t t_ms, total, copied;
	double dirty_bps, copy_bps; /* EWMA */
	struct pol_disk pol;        /* when to switch to write-blocking */
};

/* Storage part of a monitor tick: progress, rates, the switch to
 * write-blocking when the guest writes faster than half the copy, and the
 * start of RAM pre-copy once every disk is in sync. 0 or -errno (failure
 * recorded). */
static int watch_disks(struct migration *m, struct disk_watch *w, uint64_t now)
{
	struct stor_progress p;
	char err[300];
	int r = stor_source_poll(m->stor, m->qmp, &p, err, sizeof(err));

	if (r < 0) {
		mig_set_failure(m, "storage: %s", err);
		return r;
	}
	if (w->t_ms && now > w->t_ms) {
		double dt = (double)(now - w->t_ms) / 1000.0;
		double dirty = p.total > w->total ? (double)(p.total - w->total) / dt : 0;
		/* A restarted job counts from zero again. */
		double copy = p.copied > w->copied ? (double)(p.copied - w->copied) / dt : 0;

		w->dirty_bps = 0.5 * w->dirty_bps + 0.5 * dirty;
		w->copy_bps = 0.5 * w->copy_bps + 0.5 * copy;
	}
	w->t_ms = now;
	w->total = p.total;
	w->copied = p.copied;
	pthread_mutex_lock(&m->mu);
	m->st.disk_transferred = p.copied;
	m->st.disk_remaining = p.remaining;
	m->st.disk_dirty_rate_bps = (uint64_t)w->dirty_bps;
	m->st.storage_ready = p.ready;
	m->st.storage_actively_synced = p.write_blocking && p.actively_synced;
	snprintf(m->st.storage_copy_mode, sizeof(m->st.storage_copy_mode), "%s",
		 p.write_blocking ? "write-blocking" : "background");
	pthread_mutex_unlock(&m->mu);
	/* A guest that outruns a background mirror keeps it from ever
	 * getting in sync: from then on, guest writes go to both sides
	 * before they complete. */
	if (pol_disk_switch(&w->pol, p.write_blocking, w->dirty_bps, w->copy_bps,
			    stor_source_can_switch(m->stor, ram_started(m)))) {
		log_info("storage", "event=escalation action=write_blocking dirty_bps=%.0f copy_bps=%.0f",
			 w->dirty_bps, w->copy_bps);
		r = stor_source_write_blocking(m->stor, m->qmp, err, sizeof(err));
		if (r < 0) {
			mig_set_failure(m, "storage: %s", err);
			return r;
		}
		pthread_mutex_lock(&m->mu);
		m->st.escalations++;
		pthread_mutex_unlock(&m->mu);
	}
	if (!ram_started(m) && p.ready) {
		r = start_ram(m, err, sizeof(err));
		if (r < 0) {
			mig_set_failure(m, "%s", err);
			return r;
		}
	}
	return 0;
}

/* The monitor's loop state between ticks. */
struct mon_loop {
	uint64_t next_query, last_escalation, ram_bytes;
	struct disk_watch dw;
};

/* What a step of the monitor says: go on, QEMU completed, or failed
 * (the reason recorded). */
enum mon_step { MON_GO_ON, MON_COMPLETED, MON_FAILED };

/* One QEMU event. */
static enum mon_step on_qemu_event(struct migration *m, const struct monitor *mon, struct mon_loop *ml,
				   struct qmp_event *ev)
{
	char status[64], desc[256], reason[300], s[32];
	int r = stor_source_event(m->stor, ev, reason, sizeof(reason));

	if (r > 0) {
		/* A mirror got in sync: look now, RAM may start. */
		if (!strcmp(ev->name, "BLOCK_JOB_READY"))
			ml->next_query = 0;
		return MON_GO_ON;
	}
	if (r < 0) {
		mig_set_failure(m, "storage: %s", reason);
		return MON_FAILED;
	}
	if (!strcmp(ev->name, "STOP")) {
		/* QEMU stopped the guest for the last copy (or, in post-copy,
		 * to send the device state): from here the outcome is QEMU's
		 * and the target's to decide, and a cancel is refused. The STOP
		 * event is the one sign every QEMU gives: "device" comes only
		 * with pause-before-switchover. */
		pthread_mutex_lock(&m->mu);
		m->st.stop_ts_us = ev->ts_us;
		pthread_mutex_unlock(&m->mu);
		if (m->state == MS_SRC_PRECOPY)
			(void)mig_enter(m, MS_SRC_SWITCHOVER);
		relay_set_final(m->relay);
		return MON_GO_ON;
	}
	if (!strcmp(ev->name, "MIGRATION_PASS")) {
		log_info("mig", "event=iteration pass=%lld remaining=%llu dirty_bps=%llu copy_bps=%.0f converging=%d",
			 (long long)json_object_get_int64(json_object_object_get(ev->data, "pass")),
			 (unsigned long long)mon->remaining, (unsigned long long)mon->dirty_bps, mon->copy_bps,
			 mon->converging);
		return MON_GO_ON;
	}
	if (strcmp(ev->name, "MIGRATION"))
		return MON_GO_ON;
	snprintf(s, sizeof(s), "%s",
		 json_object_get_string(json_object_object_get(ev->data, "status")) ?: "?");
	log_info("mig", "event=qemu_status status=%s qemu_ts_us=%llu", s, (unsigned long long)ev->ts_us);
	if (!strcmp(s, "completed")) {
		query_migrate(m, status, sizeof(status), NULL, 0);
		return MON_COMPLETED;
	}
	if (!strcmp(s, "pre-switchover"))
		return switchover_disks(m) < 0 ? MON_FAILED : MON_GO_ON;
	if (!strcmp(s, "postcopy-paused"))
		return recover_postcopy(m) < 0 ? MON_FAILED : MON_GO_ON;
	if (!strcmp(s, "failed") || !strcmp(s, "cancelled")) {
		query_migrate(m, status, sizeof(status), desc, sizeof(desc));
		if (relay_failed(m->relay, reason, sizeof(reason)))
			mig_set_failure(m, "transport failed: %s", reason);
		else if (m->setup_error[0])
			mig_set_failure(m, "%s", m->setup_error);
		mig_set_failure(m, "QEMU reports the migration %s%s%s", s, desc[0] ? ": " : "", desc);
		return MON_FAILED;
	}
	return MON_GO_ON;
}

/* Cancels, the relay, channel set-up and the target's control link. */
static enum mon_step check_outside(struct migration *m)
{
	char reason[300];
	struct pollfd pfd = {.fd = m->ctl ? m->ctl->fd : -1, .events = POLLIN};

	if (mig_take_cancel(m, reason, sizeof(reason))) {
		mig_set_failure(m, "cancelled: %s", reason);
		return MON_FAILED;
	}
	/* In post-copy a broken link is QEMU's postcopy-paused, which we
	 * recover from instead of failing. */
	if (!in_postcopy(m) && relay_failed(m->relay, reason, sizeof(reason))) {
		mig_set_failure(m, "transport failed: %s", reason);
		return MON_FAILED;
	}
	if (m->setup_error[0]) {
		mig_set_failure(m, "%s", m->setup_error);
		return MON_FAILED;
	}
	/* The control link only speaks up when the target has trouble. */
	if (!m->ctl || poll(&pfd, 1, 0) <= 0)
		return MON_GO_ON;
	if (in_postcopy(m)) {
		/* The target is waiting for us to resume, or gone: QEMU will
		 * say postcopy-paused if it matters. */
		peer_link_close(m->ctl);
		m->ctl = NULL;
		return MON_GO_ON;
	}
	{
		struct json_object *msg = NULL;
		char err[256];

		if (peer_recv_json(m->ctl, 5000, &msg, err, sizeof(err)) < 0) {
			mig_set_failure(m, "lost the target agent: %s", err);
		} else {
			const char *by = json_object_get_string(json_object_object_get(msg, "cancelled_by"));

			mig_set_failure(m, "target failed: %s",
					json_object_get_string(json_object_object_get(msg, "reason")) ?: "no reason");
			/* Cancelled on the target (the reason says so): by
			 * whom, as the target knows. */
			if (by)
				set_cancelled_by(m, by);
			json_object_put(msg);
		}
	}
	return MON_FAILED;
}

/* Every QUERY_EVERY_MS: QEMU's and ferry's figures into the monitor, the
 * policy's decisions (pause tuning, post-copy now, escalations), and the
 * monitor's verdict. */
static enum mon_step sample_tick(struct migration *m, struct monitor *mon, struct mon_loop *ml)
{
	struct relay_stream_stats tot;
	struct mon_sample smp;
	struct mig_sample ms;
	enum mon_verdict v;
	char status[64], desc[256];
	uint64_t since;

	ml->next_query = time_mono_ms() + QUERY_EVERY_MS;
	if (ram_started(m) && query_migrate(m, status, sizeof(status), desc, sizeof(desc)) == 0 &&
	    !strcmp(status, "completed"))
		return MON_COMPLETED;
	if (stor_count(m->stor) && !in_postcopy(m) && watch_disks(m, &ml->dw, time_mono_ms()) < 0)
		return MON_FAILED;
	/* Copy rate from ferry's own counters (RAM and disk), dirty rate and
	 * what is left from QEMU: RAM not yet started counts whole, so
	 * starting it is not a step back. */
	relay_totals(m->relay, &tot);
	pthread_mutex_lock(&m->mu);
	smp = (struct mon_sample){time_mono_ms(),
				  m->st.disk_remaining + (ram_started(m) ? m->st.ram_remaining : ml->ram_bytes),
				  m->st.dirty_rate_bps + m->st.disk_dirty_rate_bps,
				  tot.raw_in, tot.wire_out, m->st.iterations};
	pthread_mutex_unlock(&m->mu);
	v = mon_sample(mon, &smp);
	ms = (struct mig_sample){(uint32_t)(smp.t_ms - mon->start_ms), smp.remaining, smp.dirty_bps,
				 (uint64_t)mon->copy_bps, (uint64_t)mon->wire_bps};
	mig_add_sample(m, &ms);
	pthread_mutex_lock(&m->mu);
	m->st.copy_rate_bps = (uint64_t)mon->copy_bps;
	m->st.wire_rate_bps = (uint64_t)mon->wire_bps;
	m->st.converging = mon->converging;
	m->st.eta_ms = mon->eta_ms;
	pthread_mutex_unlock(&m->mu);
	if (ram_started(m) && !in_postcopy(m))
		tune_pause(m, mon, smp.t_ms);
	/* Post-copy right away, when asked: the first pass is under way, so
	 * the target has somewhere to start from. */
	if (m->postcopy && m->req.set.post_copy_now && m->state == MS_SRC_PRECOPY && v == MON_OK)
		(void)start_postcopy(m, mon); /* a refusal is logged; the escalations go on */
	since = mon->best_at_ms > ml->last_escalation ? mon->best_at_ms : ml->last_escalation;
	if (pol_escalation_due(m->req.set.v.escalate_after_s, v, smp.iterations, smp.t_ms, since) &&
	    escalate(m, mon))
		ml->last_escalation = smp.t_ms;
	if (v != MON_OK) {
		char why[400];

		mon_explain(mon, v, why, sizeof(why));
		mig_set_failure(m, "%s", why);
		set_cancelled_by(m, v == MON_NO_PROGRESS ? "progress timeout" : "completion timeout");
		return MON_FAILED;
	}
	return MON_GO_ON;
}

/* Watches the running migration until QEMU completes it (1) or something
 * says stop (0, the reason recorded). */
static int monitor(struct migration *m, struct monitor *mon)
{
	struct mon_loop ml = {.ram_bytes = (uint64_t)m->vm->spec->memory_mib << 20};
	enum mon_step step = MON_GO_ON;
	struct qmp_event ev;
	int r;

	while (step == MON_GO_ON) {
		r = qmp_pump(m->qmp, MONITOR_TICK_MS);
		if (r < 0 && r != -ETIMEDOUT) {
			mig_set_failure(m, "lost the source QEMU's QMP connection: %s", qmp_last_error(m->qmp));
			return 0;
		}
		while (step == MON_GO_ON && qmp_take_event(m->qmp, NULL, &ev) == 0) {
			step = on_qemu_event(m, mon, &ml, &ev);
			qmp_event_clear(&ev);
		}
		if (step == MON_GO_ON)
			step = check_outside(m);
		if (step == MON_GO_ON && time_mono_ms() >= ml.next_query)
			step = sample_tick(m, mon, &ml);
	}
	return step == MON_COMPLETED;
}

/* After QEMU completed: the target must confirm the guest runs there before
 * the source lets go. Returns 1 when it does. */
static int confirm_with_target(struct migration *m)
{
	struct json_object *msg = json_object_new_object(), *reply = NULL;
	char err[256], hex[65] = "";
	const char *op;
	int ok = 0;

	if (m->req.verify_memory &&
	    mig_memory_digest(m, m->mig_dir, hex, err, sizeof(err)) < 0)
		log_warn("mig", "event=memory_digest_failed err=\"%s\"", log_q(err));
	json_object_object_add(msg, "op", json_object_new_string("complete"));
	if (hex[0])
		json_object_object_add(msg, "memory_digest", json_object_new_string(hex));
	if (peer_send_json(m->ctl, msg) < 0 ||
	    peer_recv_json(m->ctl, CONFIRM_TIMEOUT_MS, &reply, err, sizeof(err)) < 0) {
		mig_set_failure(m, "lost contact with the target after the switchover (%s); the guest stays paused on the source until the target's state is known",
				err);
		goto out;
	}
	op = json_object_get_string(json_object_object_get(reply, "op"));
	if (!op || strcmp(op, "running")) {
		mig_set_failure(m, "target could not run the guest: %s",
				json_object_get_string(json_object_object_get(reply, "reason")) ?: "no reason");
		ok = -1; /* target has nothing: resume on the source */
		goto out;
	}
	pthread_mutex_lock(&m->mu);
	m->st.resume_ts_us = (uint64_t)json_object_get_int64(json_object_object_get(reply, "resume_ts_us"));
	m->st.postcopy_blocktime_ms = json_object_get_int64(json_object_object_get(reply, "postcopy_blocktime_ms"));
	if (m->st.resume_ts_us && m->st.stop_ts_us)
		m->st.pause_ms = ((int64_t)m->st.resume_ts_us - (int64_t)m->st.stop_ts_us) / 1000;
	if (hex[0]) {
		const char *th = json_object_get_string(json_object_object_get(reply, "memory_digest"));

		snprintf(m->st.memory_digest, sizeof(m->st.memory_digest), "%s", hex);
		m->st.memory_verified = th && !strcmp(th, hex) ? 1 : -1;
	}
	pthread_mutex_unlock(&m->mu);
	ok = 1;
out:
	json_object_put(msg);
	json_object_put(reply);
	return ok;
}

/* RAM pre-copy: QEMU connects to our outgoing socket. */
static int start_ram(struct migration *m, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	char uri[480];
	int r;

	snprintf(uri, sizeof(uri), "unix:%s", m->out.path);
	json_object_object_add(args, "uri", json_object_new_string(uri));
	r = mig_qmp(m, "migrate", args, NULL, 10000, err, errlen);
	json_object_put(args);
	if (r < 0)
		return r;
	(void)mig_enter(m, MS_SRC_PRECOPY);
	log_info("mig", "event=ram_precopy_started");
	return 0;
}

/* What the phases of one source run share. */
struct source_run {
	int have_slot;      /* an outbound slot is ours to give back */
	uint64_t t_migrate; /* when the copy started (mirrors or RAM) */
	struct monitor mon;
};

/* From the slot to QEMU's end: 1 when QEMU completed, 0 on failure (the
 * reason recorded; the state is still the one the failure came in). */
static int source_run(struct migration *m, struct source_run *c)
{
	struct monitor *mon = &c->mon;
	char err[512];
	int r;

	log_info("mig", "event=source_start vm=%s target=%s addr=%s:%d multifd=%d compress=%d policy=%s post_copy=%d auto_converge=%d",
		 m->req.vm, m->req.target_node, m->req.target_host, m->req.target_port, m->multifd,
		 m->compress, m->req.policy[0] ? m->req.policy : "-", m->postcopy, m->auto_converge);
	/* Limits: wait visibly in Pending for an outbound slot, and below for
	 * the target to have an inbound one. */
	mig_announce(m);
	r = m->env.acquire_slot(m->env.agent, m, err, sizeof(err));
	if (r < 0) {
		mig_set_failure(m, "%s", err);
		if (r == -ETIMEDOUT)
			set_cancelled_by(m, "pending timeout");
		return 0;
	}
	c->have_slot = 1;
	(void)mig_enter(m, MS_SRC_PREPARING);
	if (mkdir(m->mig_dir, 0700) < 0 && errno != EEXIST) {
		mig_set_failure(m, "cannot create %s: %s", m->mig_dir, strerror(errno));
		return 0;
	}
	/* QEMU connects to its sockets and writes its verify dump there. */
	r = qemu_confine_give(&m->env.qemu, m->mig_dir);
	if (r < 0) {
		mig_set_failure(m, "cannot give %s to the QEMU user: %s", m->mig_dir, strerror(-r));
		return 0;
	}
	/* QMP before the target prepares: it needs the disks' sizes. */
	r = mig_connect_qmp(m, 10000, err, sizeof(err));
	if (r < 0) {
		mig_set_failure(m, "cannot reach the source QEMU over QMP: %s", err);
		return 0;
	}
	if (!vm_running(m)) {
		mig_set_failure(m, "the VM is not running on the source");
		return 0;
	}
	if (stor_count(m->stor)) {
		r = stor_source_clear_leftovers(m->qmp, err, sizeof(err));
		if (r < 0) {
			mig_set_failure(m, "cannot clear an earlier attempt's mirror jobs: %s", err);
			return 0;
		}
		if (stor_source_size(m->stor, m->qmp, err, sizeof(err)) < 0) {
			mig_set_failure(m, "%s", err);
			return 0;
		}
		pthread_mutex_lock(&m->mu);
		m->st.disks = (int)stor_count(m->stor);
		m->st.disk_total = m->st.disk_remaining = stor_bytes(m->stor);
		pthread_mutex_unlock(&m->mu);
	}
	for (uint64_t pend_dl = time_mono_ms() + (uint64_t)m->env.pending_timeout_s * 1000ull;;) {
		r = send_prepare(m, err, sizeof(err));
		if (r != -EBUSY)
			break;
		/* The target is at its inbound limit: back to Pending, retry. */
		peer_link_close(m->ctl);
		m->ctl = NULL;
		(void)mig_enter(m, MS_SRC_PENDING);
		log_info("mig", "event=pending reason=\"%s\"", log_q(err));
		if (time_mono_ms() >= pend_dl) {
			mig_set_failure(m, "waited %d s in Pending: %s", m->env.pending_timeout_s, err);
			set_cancelled_by(m, "pending timeout");
			return 0;
		}
		if (mig_cancel_requested(m)) {
			mig_set_failure(m, "cancelled while Pending");
			return 0;
		}
		poll(NULL, 0, 500); /* the peer offers nothing to wait on */
		(void)mig_enter(m, MS_SRC_PREPARING);
	}
	if (r == -ECANCELED) {
		mig_set_failure(m, "%s", err);
		return 0;
	}
	if (r < 0) {
		mig_set_failure(m, "preparing the target failed: %s", err);
		return 0;
	}
	(void)mig_enter(m, MS_SRC_TARGET_READY);
	{
		char why[256];

		if (mig_take_cancel(m, why, sizeof(why))) {
			mig_set_failure(m, "cancelled: %s", why);
			return 0;
		}
	}
	if (mig_set_capabilities(m, err, sizeof(err)) < 0 || set_parameters(m, err, sizeof(err)) < 0) {
		mig_set_failure(m, "%s", err);
		return 0;
	}
	r = relay_new(m->env.lp, m->env.w, &m->relay);
	if (r == 0)
		r = open_listener(&m->out);
	if (r == 0 && stor_count(m->stor))
		r = open_listener(&m->nbd);
	if (r < 0) {
		mig_set_failure(m, "cannot listen in %s: %s", m->mig_dir, strerror(-r));
		return 0;
	}

	/* The seeds' timeouts: no new low of the remaining data for
	 * progress_timeout_s, or past completion_timeout_s_per_gib for each
	 * GiB of memory (plus copied disk, once storage migrates). */
	{
		uint64_t mib = (uint64_t)m->vm->spec->memory_mib + (stor_bytes(m->stor) >> 20);

		mon_init(mon, time_mono_ms(), mset_progress_timeout_ms(&m->req.set),
			 mset_completion_timeout_ms(&m->req.set, mib));
		log_info("mig", "event=policy progress_timeout_s=%d completion_timeout_s=%llu",
			 m->req.set.v.progress_timeout_s,
			 (unsigned long long)(mon->completion_timeout_ms / 1000));
	}
	c->t_migrate = time_mono_ms();
	pthread_mutex_lock(&m->mu);
	m->st.migrate_start_us = time_real_us();
	m->copy_mono_us = time_mono_ns() / 1000;
	pthread_mutex_unlock(&m->mu);
	/* Disks first: RAM pre-copy starts once every mirror is in sync
	 * (monitor), so the two do not fight over the link. */
	if (stor_count(m->stor)) {
		(void)mig_enter(m, MS_SRC_MIRRORING);
		pthread_mutex_lock(&m->mu);
		snprintf(m->st.storage_copy_mode, sizeof(m->st.storage_copy_mode), "background");
		pthread_mutex_unlock(&m->mu);
		r = stor_source_start(m->stor, m->qmp, m->nbd.path, mset_max_bandwidth_bps(&m->req.set), 0,
				      qcaps_has(&m->caps, QCAP_BLOCK_JOB_CHANGE), err, sizeof(err));
	} else {
		r = start_ram(m, err, sizeof(err));
	}
	if (r < 0) {
		mig_set_failure(m, "%s", err);
		return 0;
	}
	mon->start_ms = time_mono_ms(); /* the clock runs from `migrate` */
	mon->best_at_ms = mon->start_ms;
	return monitor(m, mon);
}


/* A failure: what it means for the guest. QEMU may have completed just
 * as the failure was noticed, and then only the target can say whether the
 * source may take the guest back; in post-copy neither half holds the
 * whole guest, so both are kept as they are. */
static enum mig_state source_after_failure(struct migration *m, struct source_run *c)
{
	char status[64] = "";

	if (!ram_started(m) || !m->qmp)
		return MS_SRC_ROLLING_BACK;
	if (query_migrate(m, status, sizeof(status), NULL, 0) == 0 && !strcmp(status, "completed")) {
		log_warn("mig", "event=failure_after_completion reason=\"%s\"", log_q(m->st.failure_reason));
		pthread_mutex_lock(&m->mu);
		m->st.failure_reason[0] = '\0';
		if (!m->st.total_ms)
			m->st.total_ms = time_mono_ms() - c->t_migrate;
		pthread_mutex_unlock(&m->mu);
		return MS_SRC_CONFIRMING;
	}
	return in_postcopy(m) ? MS_SRC_HELD : MS_SRC_ROLLING_BACK;
}

/* Undo a migration that failed before the target could run the guest:
 * QEMU's migration, the mirrors (before the relay: QEMU must drop its NBD
 * clients itself), the relay, the target's half (told, and briefly waited
 * for), and the guest runs here again. */
static void source_roll_back(struct migration *m, int ram)
{
	char err[256];

	if (ram && m->qmp)
		cancel_qemu_migration(m);
	stor_source_abort(m->stor, m->qmp);
	if (m->relay)
		relay_abort(m->relay, m->st.failure_reason);
	if (m->ctl) {
		struct json_object *ab = json_object_new_object(), *rep = NULL;

		json_object_object_add(ab, "op", json_object_new_string("abort"));
		json_object_object_add(ab, "reason", json_object_new_string(m->st.failure_reason));
		(void)peer_send_json(m->ctl, ab);
		json_object_put(ab);
		if (peer_recv_json(m->ctl, 15000, &rep, err, sizeof(err)) == 0)
			json_object_put(rep);
	}
	ensure_source_running(m);
}

/* QEMU completed: the target must confirm the guest runs there before the
 * source lets go. Returns the end state. */
static enum mig_state source_confirm(struct migration *m)
{
	int confirmed;

	/* Let the last bytes drain through the relay before asking. */
	relay_wait(m->relay, 30000);
	confirmed = confirm_with_target(m);
	if (confirmed > 0)
		return MS_SRC_SUCCEEDED;
	if (confirmed == 0)
		return MS_SRC_HELD; /* no word: resuming here could run it twice */
	/* After post-copy the target ran the guest and wrote to it: the
	 * memory here is stale, so it is kept paused, never resumed. */
	if (m->postcopy_entered)
		return MS_SRC_HELD;
	/* The target has nothing: the guest runs here again. */
	(void)mig_enter(m, MS_SRC_ROLLING_BACK);
	ensure_source_running(m);
	return MS_SRC_FAILED;
}

/* Tells a target that takes it (it said so in its answer to prepare) how
 * the migration ended, so that its record is ours: name, times, pause,
 * who cancelled, why it failed. Waits briefly for "recorded", so that
 * whoever sees the end here finds the same record there. */
static void send_outcome(struct migration *m, enum mig_state end)
{
	struct json_object *msg, *rep = NULL;
	struct mig_status st;
	uint64_t deadline = time_mono_ms() + OUTCOME_ACK_MS;
	char err[256] = "";

	if (!m->ctl || !m->peer_outcome)
		return;
	mig_get_status(m, &st);
	st.phase = end == MS_SRC_SUCCEEDED ? MIG_SUCCEEDED : MIG_FAILED;
	msg = mig_outcome_to_json(&st);
	if (peer_send_json(m->ctl, msg) == 0) {
		while (peer_recv_json(m->ctl, time_remaining_ms(deadline), &rep, err, sizeof(err)) == 0) {
			const char *op = json_object_get_string(json_object_object_get(rep, "op"));
			int done = op && !strcmp(op, "recorded");

			json_object_put(rep);
			rep = NULL;
			if (done)
				goto out;
		}
	}
	log_warn("mig", "event=outcome_not_recorded err=\"%s\"", log_q(err));
out:
	json_object_put(msg);
}

/* Releases what the run held and records the end. */
static void source_end(struct migration *m, struct source_run *c, enum mig_state end)
{
	struct relay_stream_stats tot;

	/* How the pages went, for the record and the outcome (the streams
	 * are done or failing: their counts no longer move). */
	if (m->relay) {
		relay_totals(m->relay, &tot);
		pthread_mutex_lock(&m->mu);
		mig_page_figures(&m->st, &tot);
		pthread_mutex_unlock(&m->mu);
	}
	mig_close_record(m);
	send_outcome(m, end);
	close_listeners(m);
	if (m->relay) {
		struct relay *r = m->relay;

		relay_totals(r, &tot);
		pthread_mutex_lock(&m->mu);
		m->st.raw_bytes = tot.raw_in;
		m->st.wire_bytes = tot.wire_out;
		mig_page_figures(&m->st, &tot);
		m->relay = NULL; /* status readers take the lock to see it */
		pthread_mutex_unlock(&m->mu);
		relay_free(r);
	}
	qmp_close(m->qmp);
	m->qmp = NULL;
	peer_link_close(m->ctl);
	m->ctl = NULL;
	rmdir(m->mig_dir);
	if (end == MS_SRC_SUCCEEDED) {
		/* The guest runs on the target: the paused source copy goes. */
		qemu_vm_stop(m->vm, 10000);
		qemu_vm_remove_files(m->vm);
		/* Copies ferry made here when the VM arrived earlier are
		 * stale now; images the user gave stay. */
		stor_remove_vm_images(m->env.state_dir, m->vm->spec->name);
	}
	if (c->have_slot)
		m->env.release_slot(m->env.agent, m);
	/* The agent updates the VM first, so that whoever sees the migration
	 * end (ferryctl --wait, the API) finds the VM where it now is. */
	if (end == MS_SRC_HELD) {
		pthread_mutex_lock(&m->mu);
		m->st.guest_paused_on_source = 1;
		pthread_mutex_unlock(&m->mu);
	}
	m->env.on_source_done(m->env.agent, m, end == MS_SRC_SUCCEEDED);
	mig_finish(m, end);
}

static void *source_main(void *arg)
{
	struct migration *m = arg;
	struct source_run c = {0};
	enum mig_state next, end;

	log_set_migration(m->req.id);
	if (source_run(m, &c)) {
		pthread_mutex_lock(&m->mu);
		m->st.total_ms = time_mono_ms() - c.t_migrate;
		pthread_mutex_unlock(&m->mu);
		next = MS_SRC_CONFIRMING;
	} else {
		next = source_after_failure(m, &c);
	}
	if (next == MS_SRC_ROLLING_BACK) {
		int ram = ram_started(m);

		(void)mig_enter(m, MS_SRC_ROLLING_BACK);
		source_roll_back(m, ram);
		end = MS_SRC_FAILED;
	} else if (next == MS_SRC_HELD) {
		end = MS_SRC_HELD;
	} else {
		(void)mig_enter(m, MS_SRC_CONFIRMING);
		end = source_confirm(m);
	}
	source_end(m, &c, end);
	log_set_migration(NULL);
	return NULL;
}

int mig_source_start(const struct mig_env *env, const struct mig_request *req,
		     struct qemu_vm *vm, struct migration **out)
{
	struct migration *m = mig_alloc(env, "source");

	if (!m)
		return -ENOMEM;
	m->req = *req;
	m->vm = vm;
	/* Resolved and checked by the caller; post_copy already forced
	 * multifd_channels to 0 (QEMU up to 10.0 refuses the pair). */
	m->multifd = req->set.v.multifd_channels;
	m->compress = req->set.v.compress;
	/* Asked of the target in prepare; what both can hold is agreed there. */
	m->page_budget = (uint64_t)req->set.v.page_cache_mib << 20;
	m->auto_converge = req->set.v.auto_converge;
	m->postcopy = req->set.v.post_copy;
	if (stor_plan(vm->spec, &m->stor) < 0) {
		mig_free(m);
		return -ENOMEM;
	}
	snprintf(m->mig_dir, sizeof(m->mig_dir), "%s/migrations/%s", env->state_dir, req->id);
	snprintf(m->out.path, sizeof(m->out.path), "%s/out.sock", m->mig_dir);
	snprintf(m->nbd.path, sizeof(m->nbd.path), "%s/nbd.sock", m->mig_dir);
	snprintf(m->st.id, sizeof(m->st.id), "%s", req->id);
	snprintf(m->st.name, sizeof(m->st.name), "%s", req->name);
	snprintf(m->st.vm, sizeof(m->st.vm), "%s", req->vm);
	snprintf(m->st.source_node, sizeof(m->st.source_node), "%s", env->node);
	snprintf(m->st.target_node, sizeof(m->st.target_node), "%s", req->target_node);
	snprintf(m->st.target_addr, sizeof(m->st.target_addr), "%s:%d", req->target_host, req->target_port);
	m->st.multifd_channels = m->multifd;
	m->st.compress = m->compress;
	m->st.auto_converge = m->auto_converge;
	snprintf(m->st.policy, sizeof(m->st.policy), "%s", req->policy);
	m->st.post_copy = m->postcopy;
	m->st.left_paused = req->keep_paused;
	if (pthread_create(&m->thread, NULL, source_main, m) != 0) {
		mig_free(m);
		return -EAGAIN;
	}
	m->thread_started = 1;
	*out = m;
	return 0;
}
