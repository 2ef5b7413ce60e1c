/* The target half of a migration. See migration.h for the rules. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/migration_int.h"
#include "engine/storage.h"
#include "qmp/qmp.h"
#include "transport/link.h"
#include "transport/pagecode.h"
#include "transport/relay.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"

#define TICK_MS 50
#define MAIN_WAIT_MS 30000
/* How long the target waits for the source's word once its own QEMU has
 * finished loading; past it the source is presumed gone. */
#define COMPLETE_WAIT_MS 120000
/* Data links a migration may open beyond main + multifd channels + one per
 * copied disk: post-copy recovery reconnects. A peer cannot make the
 * target open links (and relay streams, threads, QEMU connects) without
 * bound. */
#define LINKS_SLACK 16
/* How long a finished target waits for the source's "outcome". */
#define OUTCOME_WAIT_MS 10000

static void reply_busy(struct migration *m, const char *op, const char *reason, int busy)
{
	struct json_object *msg = json_object_new_object();

	json_object_object_add(msg, "op", json_object_new_string(op));
	if (reason)
		json_object_object_add(msg, "reason", json_object_new_string(reason));
	if (busy)
		json_object_object_add(msg, "busy", json_object_new_boolean(1));
	/* The page cache we take (at most ours), if the source offered one. */
	if (!strcmp(op, "prepared") && m->page_budget)
		json_object_object_add(msg, "page_cache", json_object_new_int64((int64_t)m->page_budget));
	/* A source that offered the outcome exchange learns we take it. */
	if (m->peer_outcome)
		json_object_object_add(msg, "outcome", json_object_new_boolean(1));
	/* Cancelled here: the source records who asked. */
	pthread_mutex_lock(&m->mu);
	if (!strcmp(op, "error") && m->st.cancelled_by[0])
		json_object_object_add(msg, "cancelled_by", json_object_new_string(m->st.cancelled_by));
	pthread_mutex_unlock(&m->mu);
	(void)peer_send_json(m->ctl, msg);
	json_object_put(msg);
}

static void reply(struct migration *m, const char *op, const char *reason)
{
	reply_busy(m, op, reason, 0);
}

static int prepare(struct migration *m, char *err, size_t errlen)
{
	struct json_object *spec_j = json_object_object_get(m->prepare, "spec");
	struct json_object *args = NULL;
	struct vm_spec *spec = NULL;
	char run_dir[400], uri[600], e[256];
	int r;

	r = vmspec_from_stored_json(spec_j, &spec, err, errlen);
	if (r < 0)
		return r;
	snprintf(m->st.vm, sizeof(m->st.vm), "%s", spec->name);
	r = m->env.target_admit(m->env.agent, spec->name, err, errlen);
	if (r < 0) {
		vmspec_free(spec);
		return r;
	}
	m->admitted = 1;
	/* Local disks get fresh images here (the spec is pointed at them);
	 * shared ones must already be reachable. */
	r = stor_target_prepare(spec, json_object_object_get(m->prepare, "disks"), m->env.state_dir,
				&m->stor, err, errlen);
	if (r < 0) {
		vmspec_free(spec);
		return r;
	}
	snprintf(run_dir, sizeof(run_dir), "%s/vms/%s", m->env.state_dir, spec->name);
	/* With copied disks QEMU starts paused (-S) whatever was asked: the
	 * NBD export holds its images writable, and a guest device that
	 * activates next to it conflicts (QEMU refuses it the exclusive write
	 * it wants). The export goes first, then `cont` (libvirt's order). */
	r = qemu_vm_start(&m->env.qemu, spec, run_dir, 1,
			  json_object_get_boolean(json_object_object_get(m->prepare, "paused")) ||
				  stor_count(m->stor) > 0,
			  &m->vm, err, errlen);
	if (r < 0)
		return r;
	r = mig_connect_qmp(m, 10000, e, sizeof(e));
	if (r < 0) {
		snprintf(err, errlen, "cannot reach the target QEMU: %s", e);
		return r;
	}
	r = mig_set_capabilities(m, err, errlen);
	if (r < 0)
		return r;
	snprintf(m->nbd_path, sizeof(m->nbd_path), "%s/nbd.sock", m->vm->run_dir);
	r = stor_target_export(m->stor, m->qmp, m->nbd_path, err, errlen);
	if (r < 0)
		return r;
	r = relay_new(m->env.lp, m->env.w, &m->relay);
	if (r < 0) {
		snprintf(err, errlen, "cannot create relay: %s", strerror(-r));
		return r;
	}
	snprintf(m->recover_path, sizeof(m->recover_path), "%s/recover.sock", m->vm->run_dir);
	args = json_object_new_object();
	snprintf(uri, sizeof(uri), "unix:%s", m->vm->incoming_path);
	json_object_object_add(args, "uri", json_object_new_string(uri));
	r = mig_qmp(m, "migrate-incoming", args, NULL, 10000, err, errlen);
	json_object_put(args);
	return r;
}

/* Channels come while QEMU loads, and again when post-copy resumes. */
static int accepts_channels(enum mig_state s)
{
	return s == MS_TGT_INCOMING || s == MS_TGT_POSTCOPY || s == MS_TGT_AWAITING_RESUME ||
	       s == MS_TGT_LOADED;
}

int mig_target_attach(struct migration *m, struct peer_link *pl, enum channel_kind kind,
		      int chan_id, uint32_t stream_id, uint32_t page_slots, char *reason, size_t len)
{
	struct relay_stream_opts opts = {m->compress, 0, page_slots, QSTREAM_OPAQUE};
	struct json_object *ack = json_object_new_object();
	const char *peer = pl->peer;
	struct seal_stream keys;
	char label[32], to[448];
	int qfd = -1, r = 0, counted = 0, recovering = 0;
	struct relay *relay = NULL;
	uint64_t deadline = time_mono_ms() + MAIN_WAIT_MS;

	if (kind == CHANNEL_MAIN)
		snprintf(label, sizeof(label), "main");
	else
		snprintf(label, sizeof(label), "%s-%d", channel_kind_name(kind), chan_id);
	/* QEMU before 8.0 takes the first connection as the main channel:
	 * multifd channels wait until main is connected. */
	pthread_mutex_lock(&m->mu);
	while (kind == CHANNEL_MULTIFD && !m->main_connected && !m->closing &&
	       time_mono_ms() < deadline) {
		struct timespec ts = time_cond_deadline(50);

		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
	}
	if (strcmp(peer, m->st.source_node)) {
		snprintf(reason, len, "data link from %s for a migration from %s", peer, m->st.source_node);
		r = -EPERM;
	} else if (m->closing || !accepts_channels(m->state) || !m->vm) {
		snprintf(reason, len, "migration %s is not accepting channels", m->req.id);
		r = -ESRCH;
	} else if (kind == CHANNEL_MULTIFD && !m->main_connected) {
		snprintf(reason, len, "main channel never arrived");
		r = -ETIMEDOUT;
	} else if (kind == CHANNEL_NBD && !stor_count(m->stor)) {
		snprintf(reason, len, "this migration copies no disks");
		r = -EPROTO;
	} else if (kind == CHANNEL_MAIN && m->main_connected) {
		snprintf(reason, len, "a second main channel");
		r = -EPROTO;
	} else if (m->links_opened >= 1 + m->multifd + (int)stor_count(m->stor) + LINKS_SLACK) {
		snprintf(reason, len, "too many data links for this migration (%d)", m->links_opened);
		r = -EMFILE;
	} else if (page_slots && (kind == CHANNEL_NBD || !m->page_budget)) {
		snprintf(reason, len, "page coding on %s", kind == CHANNEL_NBD ? "an NBD connection" :
			 "a migration that did not agree on it");
		r = -EPROTO;
	} else if (page_slots && (page_slots < PAGEC_MIN_SLOTS || page_slots > PAGEC_MAX_SLOTS ||
				  m->page_charged + pagec_mem_bytes(page_slots) > m->page_budget)) {
		snprintf(reason, len, "a page cache of %u slots is out of range or exceeds the "
			 "agreed %llu bytes (%llu held)", page_slots, (unsigned long long)m->page_budget,
			 (unsigned long long)m->page_charged);
		r = -EMSGSIZE;
	} else {
		if (page_slots)
			m->page_charged += pagec_mem_bytes(page_slots);
		m->links_opened++;
		/* The target thread waits for attachers before freeing the relay. */
		m->attaching++;
		counted = 1;
		recovering = kind == CHANNEL_MAIN && m->recover_next_main;
		relay = m->relay;
		/* A copy under the lock: the target thread may hand m->vm over
		 * once it stops waiting for attachers. */
		snprintf(to, sizeof(to), "%s", kind == CHANNEL_NBD ? m->nbd_path : recovering ? m->recover_path :
						m->vm->incoming_path);
	}
	pthread_mutex_unlock(&m->mu);

	if (r == 0) {
		/* Connects are serialized so accept order equals connect order;
		 * this lock is held only by attachers, never by status readers. */

		/* NBD connections go to QEMU's NBD server: no order to keep. */
		if (kind != CHANNEL_NBD)
			pthread_mutex_lock(&m->attach_mu);
		r = link_connect_unix(to, 10000, &qfd);
		if (r < 0)
			snprintf(reason, len, "cannot connect to the incoming QEMU: %s", strerror(-r));
		if (kind != CHANNEL_NBD)
			pthread_mutex_unlock(&m->attach_mu);
		if (r == 0 && kind == CHANNEL_MAIN) {
			pthread_mutex_lock(&m->mu);
			m->main_connected = 1;
			if (recovering)
				m->recover_next_main = 0;
			pthread_cond_broadcast(&m->cv);
			pthread_mutex_unlock(&m->mu);
		}
	}
	if (r == 0 && peer_link_stream_keys(pl, stream_id, &keys) < 0) {
		snprintf(reason, len, "cannot derive the keys of stream %u", stream_id);
		r = -EIO;
	}
	json_object_object_add(ack, "ok", json_object_new_boolean(r == 0));
	if (r < 0)
		json_object_object_add(ack, "reason", json_object_new_string(reason));
	(void)peer_send_json(pl, ack);
	json_object_put(ack);
	if (r < 0) {
		peer_link_close(pl);
		if (qfd >= 0)
			close(qfd);
	} else {
		log_info("mig", "event=channel_attached kind=%s channel=%d stream=%u",
			 channel_kind_name(kind), chan_id, stream_id);
		r = relay_add_stream(relay, qfd, peer_link_take_fd(pl), stream_id, label, &opts, &keys);
		seal_stream_wipe(&keys);
	}
	if (counted) {
		pthread_mutex_lock(&m->mu);
		m->attaching--;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
	return r;
}

#define RECOVER_WAIT_MS (10 * 60 * 1000)

/* Post-copy broke: the guest runs here on the pages it has. Wait for the
 * source to come back (a new control link saying "resume"), point QEMU at
 * a recovery socket (migrate-recover) and let the resumed main channel in
 * through a fresh relay. 0 when ready to go on, -errno when the source
 * never came back (the guest stays here, paused, and is not stopped). */
static int target_recover(struct migration *m, const char *why)
{
	struct json_object *args;
	struct relay *old, *nr = NULL;
	char err[256], uri[480], status[64] = "";
	uint64_t deadline = time_mono_ms() + RECOVER_WAIT_MS;
	enum mig_state from;
	struct peer_link *pl;
	int r, pr;

	log_warn("mig", "event=postcopy_broken action=wait_for_resume why=\"%s\"", log_q(why));
	r = relay_new(m->env.lp, m->env.w, &nr);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->mu);
	while (m->attaching > 0)
		pthread_cond_wait(&m->cv, &m->mu);
	old = m->relay;
	m->relay = nr;
	m->main_connected = 0;
	m->page_charged = 0; /* the old streams' caches go with the old relay */
	m->recover_next_main = 1;
	pr = mig_enter_locked(m, MS_TGT_AWAITING_RESUME, &from);
	pthread_mutex_unlock(&m->mu);
	mig_entered(m, from, MS_TGT_AWAITING_RESUME, pr);
	relay_free(old);
	peer_link_close(m->ctl);
	m->ctl = NULL;
	/* QEMU notices the broken channel on its own; recovery needs it paused. */
	for (uint64_t dl = time_mono_ms() + 30000; time_mono_ms() < dl;) {
		struct json_object *qm = NULL;

		if (mig_qmp(m, "query-migrate", NULL, &qm, 5000, err, sizeof(err)) == 0)
			snprintf(status, sizeof(status), "%s",
				 json_object_get_string(json_object_object_get(qm, "status")) ?: "");
		json_object_put(qm);
		if (!strcmp(status, "postcopy-paused"))
			break;
		qmp_pump(m->qmp, 100);
	}
	args = json_object_new_object();
	snprintf(uri, sizeof(uri), "unix:%s", m->recover_path);
	json_object_object_add(args, "uri", json_object_new_string(uri));
	r = mig_qmp(m, "migrate-recover", args, NULL, 10000, err, sizeof(err));
	json_object_put(args);
	if (r < 0) {
		log_error("mig", "event=migrate_recover_failed err=\"%s\"", log_q(err));
		pthread_mutex_lock(&m->mu);
		m->closing = 1; /* no resume can be taken now */
		pthread_mutex_unlock(&m->mu);
		return r;
	}
	pthread_mutex_lock(&m->mu);
	while (!m->resume && time_mono_ms() < deadline) {
		struct timespec ts = time_cond_deadline(1000);

		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
	}
	pl = m->resume;
	m->resume = NULL;
	/* Leaving AWAITING_RESUME under the lock: a later resume is refused,
	 * whether we go on or give up. */
	pr = pl ? mig_enter_locked(m, MS_TGT_POSTCOPY, &from) : 0;
	if (!pl)
		m->closing = 1;
	pthread_mutex_unlock(&m->mu);
	if (!pl)
		return -ETIMEDOUT;
	mig_entered(m, from, MS_TGT_POSTCOPY, pr);
	m->ctl = pl;
	reply(m, "recover-ready", NULL);
	pthread_mutex_lock(&m->mu);
	m->st.recoveries++;
	pthread_mutex_unlock(&m->mu);
	log_info("mig", "event=postcopy_recover_ready");
	return 0;
}

int mig_target_resume(struct migration *m, struct peer_link *pl, char *reason, size_t len)
{
	const char *peer = pl->peer;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	if (strcmp(m->st.role, "target") || m->state != MS_TGT_AWAITING_RESUME || m->closing) {
		snprintf(reason, len, "migration %s is not waiting to resume", m->req.id);
		r = -ESRCH;
	} else if (strcmp(peer, m->st.source_node)) {
		snprintf(reason, len, "resume from %s for a migration from %s", peer, m->st.source_node);
		r = -EPERM;
	} else if (m->resume) {
		snprintf(reason, len, "a resume is already under way");
		r = -EBUSY;
	} else {
		m->resume = pl;
		pthread_cond_broadcast(&m->cv);
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* The incoming QEMU (started -S because disks were copied) has loaded the
 * guest: drop the NBD export, which holds the images writable, then let
 * the guest run. The RESUME event that follows is the pause's end. */
static void resume_after_storage(struct migration *m)
{
	char err[256];

	stor_target_unexport(m->stor, m->qmp);
	if (mig_qmp(m, "cont", NULL, NULL, 10000, err, sizeof(err)) < 0)
		log_error("mig", "event=resume_failed err=\"%s\"", log_q(err));
}

/* serve()'s helpers answer this to go on: never a target state. */
#define KEEP_SERVING MS_COUNT

/* What the target learned from its QEMU so far. */
struct tgt_watch {
	int qemu_done;  /* MIGRATION completed */
	int resumed;    /* RESUME: the guest runs here */
	int paused_mode; /* the guest is to arrive paused (verification, --paused) */
	int cont_sent;   /* resume_after_storage done */
	uint64_t complete_deadline;
};

static void note_resume(struct migration *m, struct tgt_watch *w, uint64_t ts_us)
{
	w->resumed = 1;
	pthread_mutex_lock(&m->mu);
	m->st.resume_ts_us = ts_us;
	pthread_mutex_unlock(&m->mu);
}

/* Takes the incoming QEMU's queued events, the one place that reads them.
 * -EIO when QEMU says loading failed. */
static int take_qemu_events(struct migration *m, struct tgt_watch *w)
{
	struct qmp_event ev;
	int r = 0;

	while (qmp_take_event(m->qmp, NULL, &ev) == 0) {
		const char *s = json_object_get_string(json_object_object_get(ev.data, "status"));

		if (!strcmp(ev.name, "RESUME")) {
			note_resume(m, w, ev.ts_us);
		} else if (!strcmp(ev.name, "MIGRATION")) {
			log_info("mig", "event=qemu_status status=%s qemu_ts_us=%llu", s ? s : "?",
				 (unsigned long long)ev.ts_us);
			if (s && !strcmp(s, "postcopy-active") && m->state == MS_TGT_INCOMING) {
				(void)mig_enter(m, MS_TGT_POSTCOPY);
				/* The mirrors ended at the source's switchover, before
				 * post-copy began; -S would keep the guest paused for
				 * all of post-copy. A cont while QEMU still loads only
				 * lets it start the guest when post-copy runs it. */
				if (stor_count(m->stor) && !w->paused_mode && !w->cont_sent) {
					w->cont_sent = 1;
					resume_after_storage(m);
				}
			} else if (s && !strcmp(s, "completed") && !w->qemu_done) {
				w->qemu_done = 1;
				w->complete_deadline = time_mono_ms() + COMPLETE_WAIT_MS;
				(void)mig_enter(m, MS_TGT_LOADED);
				if (stor_count(m->stor) && !w->paused_mode && !w->cont_sent) {
					w->cont_sent = 1;
					resume_after_storage(m);
				}
			} else if (s && !strcmp(s, "failed")) {
				r = -EIO;
			}
		}
		qmp_event_clear(&ev);
	}
	return r;
}

/* Post-copy's link broke (why): the guest runs here on the pages it has,
 * so it is kept and the source awaited. The end state when it never
 * resumes, or KEEP_SERVING when it did. */
static enum mig_state postcopy_broken(struct migration *m, const char *why)
{
	if (target_recover(m, why) == 0)
		return KEEP_SERVING;
	mig_set_failure(m, "post-copy interrupted (%s) and the source did not resume: the guest is split between both nodes and paused; neither side was stopped", why);
	return MS_TGT_HELD;
}

/* The source says its QEMU completed: ours must have too, and the guest
 * must run (or sit paused when asked). Answers "running" and returns
 * MS_TGT_SUCCEEDED, or MS_TGT_FAILED. */
static enum mig_state on_complete(struct migration *m, struct tgt_watch *w, struct json_object *msg)
{
	struct json_object *rep;
	struct qmp_event ev;
	char err[256], hex[65] = "";
	uint64_t dl = time_mono_ms() + 30000;

	while (!(w->qemu_done && (w->resumed || w->paused_mode)) && time_mono_ms() < dl) {
		if (qmp_pump(m->qmp, TICK_MS) < 0)
			break; /* QEMU is gone: nothing more will come */
		if (take_qemu_events(m, w) < 0)
			break;
	}
	if (!w->qemu_done || !(w->resumed || w->paused_mode)) {
		if (m->state == MS_TGT_POSTCOPY) {
			/* The guest ran here and wrote to its memory: stopping
			 * it, or letting the source resume, would lose that. */
			mig_set_failure(m, "post-copy: the target QEMU did not complete; the guest is kept here, paused, for an operator");
			return MS_TGT_HELD;
		}
		mig_set_failure(m, "target QEMU did not finish loading the guest");
		reply(m, "error", m->st.failure_reason);
		return MS_TGT_FAILED;
	}
	if (w->paused_mode) {
		/* Verification run: hash RAM while both sides are stopped, then
		 * let the guest go. */
		if (json_object_object_get(msg, "memory_digest") &&
		    mig_memory_digest(m, m->vm->run_dir, hex, err, sizeof(err)) < 0)
			log_warn("mig", "event=memory_digest_failed err=\"%s\"", log_q(err));
		stor_target_unexport(m->stor, m->qmp);
		if (json_object_get_boolean(json_object_object_get(m->prepare, "stay_paused"))) {
			/* Asked to arrive paused: the guest waits here for
			 * someone to resume it. */
			pthread_mutex_lock(&m->mu);
			m->st.left_paused = 1;
			pthread_mutex_unlock(&m->mu);
			w->resumed = 1;
		} else if (mig_qmp(m, "cont", NULL, NULL, 10000, err, sizeof(err)) < 0) {
			log_error("mig", "event=resume_failed err=\"%s\"", log_q(err));
		}
		for (dl = time_mono_ms() + 10000; !w->resumed && time_mono_ms() < dl &&
						   qmp_pump(m->qmp, TICK_MS) >= 0;)
			if (qmp_take_event(m->qmp, "RESUME", &ev) == 0) {
				note_resume(m, w, ev.ts_us);
				qmp_event_clear(&ev);
			}
	}
	rep = json_object_new_object();
	if (m->postcopy) {
		struct json_object *qm = NULL;

		if (mig_qmp(m, "query-migrate", NULL, &qm, 5000, err, sizeof(err)) == 0) {
			struct json_object *bt = json_object_object_get(qm, "postcopy-blocktime");

			if (bt)
				json_object_object_add(rep, "postcopy_blocktime_ms",
						       json_object_new_int64(json_object_get_int64(bt)));
		}
		json_object_put(qm);
	}
	json_object_object_add(rep, "op", json_object_new_string("running"));
	json_object_object_add(rep, "resume_ts_us", json_object_new_int64((int64_t)m->st.resume_ts_us));
	if (hex[0])
		json_object_object_add(rep, "memory_digest", json_object_new_string(hex));
	if (peer_send_json(m->ctl, rep) < 0)
		log_warn("mig", "event=running_not_sent note=\"the source will learn it from QEMU\"");
	json_object_put(rep);
	return MS_TGT_SUCCEEDED;
}

/* The control link spoke (or broke). KEEP_SERVING, or the end state. */
static enum mig_state on_control(struct migration *m, struct tgt_watch *w)
{
	struct json_object *msg = NULL;
	enum mig_state end = KEEP_SERVING;
	const char *op;
	char err[256];

	if (peer_recv_json(m->ctl, 5000, &msg, err, sizeof(err)) < 0) {
		if (m->state == MS_TGT_POSTCOPY)
			return postcopy_broken(m, err);
		if (w->qemu_done && w->resumed) {
			/* The guest already runs here: it lives here now. */
			log_warn("mig", "event=source_lost_after_switchover action=keep_guest err=\"%s\"", log_q(err));
			return MS_TGT_SUCCEEDED;
		}
		mig_set_failure(m, "lost the source agent: %s", err);
		return MS_TGT_FAILED;
	}
	op = json_object_get_string(json_object_object_get(msg, "op"));
	if (op && !strcmp(op, "abort")) {
		mig_set_failure(m, "source aborted: %s",
				json_object_get_string(json_object_object_get(msg, "reason")) ?: "no reason");
		end = MS_TGT_FAILED;
	} else if (op && !strcmp(op, "complete")) {
		end = on_complete(m, w, msg);
	}
	json_object_put(msg);
	return end;
}

/* Waits on the incoming QEMU and the source's control messages; returns
 * the end state: SUCCEEDED when the guest runs here and the source let go,
 * FAILED (the target QEMU goes), or HELD when post-copy broke for good
 * (the target QEMU holds part of the guest and stays). */
static enum mig_state serve(struct migration *m)
{
	struct tgt_watch w = {0};
	char reason[300];

	w.paused_mode = json_object_get_boolean(json_object_object_get(m->prepare, "paused"));
	for (;;) {
		int r = qmp_pump(m->qmp, TICK_MS);
		struct pollfd pfd = {.fd = m->ctl ? m->ctl->fd : -1, .events = POLLIN};
		enum mig_state end;

		if (r < 0 && r != -ETIMEDOUT) {
			char tail[256];

			qemu_vm_log_tail(m->vm, tail, sizeof(tail));
			mig_set_failure(m, "target QEMU exited%s%s", tail[0] ? ": " : "", tail);
			reply(m, "error", m->st.failure_reason);
			return MS_TGT_FAILED;
		}
		if (take_qemu_events(m, &w) < 0) {
			mig_set_failure(m, "target QEMU could not load the incoming state");
			reply(m, "error", m->st.failure_reason);
			return MS_TGT_FAILED;
		}
		if (m->state == MS_TGT_POSTCOPY && relay_failed(m->relay, reason, sizeof(reason))) {
			/* Killing the guest would lose its writes here. */
			if ((end = postcopy_broken(m, reason)) != KEEP_SERVING)
				return end;
			continue;
		}
		if (!w.qemu_done && relay_failed(m->relay, reason, sizeof(reason))) {
			mig_set_failure(m, "transport failed: %s", reason);
			reply(m, "error", m->st.failure_reason);
			return MS_TGT_FAILED;
		}
		if (w.complete_deadline && time_mono_ms() > w.complete_deadline) {
			if (w.resumed) {
				/* QEMU resumed the guest here on its own: it lives
				 * here now, whatever became of the source. */
				log_warn("mig", "event=source_silent_after_switchover action=keep_guest");
				return MS_TGT_SUCCEEDED;
			}
			mig_set_failure(m, "the source never confirmed the switchover");
			return MS_TGT_FAILED;
		}
		if (m->state == MS_TGT_INCOMING && mig_take_cancel(m, reason, sizeof(reason))) {
			mig_set_failure(m, "cancelled on the target: %s", reason);
			reply(m, "error", m->st.failure_reason);
			return MS_TGT_FAILED;
		}
		if (poll(&pfd, 1, 0) > 0 && (end = on_control(m, &w)) != KEEP_SERVING)
			return end;
	}
}

/* The source's account of the migration (docs/protocol.md, "outcome"),
 * when it offered one: the name, times, pause, who cancelled and, when
 * both failed, its reason go into our record before it is final. Other
 * messages (an "abort" not read yet) are skipped. 1 when taken. */
static int await_outcome(struct migration *m, int failed_here)
{
	uint64_t deadline = time_mono_ms() + OUTCOME_WAIT_MS;
	char err[256];

	if (!m->peer_outcome || !m->ctl)
		return 0;
	while (time_mono_ms() < deadline) {
		struct json_object *msg = NULL;
		const char *op;
		int r;

		if (peer_recv_json(m->ctl, time_remaining_ms(deadline), &msg, err, sizeof(err)) < 0)
			break;
		op = json_object_get_string(json_object_object_get(msg, "op"));
		if (!op || strcmp(op, "outcome")) {
			json_object_put(msg);
			continue;
		}
		pthread_mutex_lock(&m->mu);
		r = mig_outcome_apply(&m->st, msg, failed_here, err, sizeof(err));
		pthread_mutex_unlock(&m->mu);
		json_object_put(msg);
		if (r < 0) {
			log_warn("mig", "event=outcome_refused reason=\"%s\"", log_q(err));
			return 0;
		}
		log_info("mig", "event=outcome_taken");
		return 1;
	}
	log_warn("mig", "event=outcome_missing err=\"%s\" note=\"the record keeps what this node saw\"",
		 log_q(err));
	return 0;
}

static void *target_main(void *arg)
{
	struct migration *m = arg;
	struct relay_stream_stats tot;
	char err[512];
	enum mig_state end = MS_TGT_FAILED;
	int ok, r, told;

	log_set_migration(m->req.id);
	mig_announce(m);
	r = prepare(m, err, sizeof(err));
	if (r < 0) {
		mig_set_failure(m, "%s", err);
		reply_busy(m, "error", err, r == -EBUSY);
	} else {
		(void)mig_enter(m, MS_TGT_INCOMING);
		reply(m, "prepared", NULL);
		end = serve(m);
	}
	/* ok: the guest (or, held, part of it) stays here. */
	ok = end != MS_TGT_FAILED;
	pthread_mutex_lock(&m->mu);
	m->closing = 1; /* no more channels */
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (m->relay) {
		if (!ok)
			relay_abort(m->relay, m->st.failure_reason);
		else
			relay_wait(m->relay, 30000);
		relay_totals(m->relay, &tot);
		m->st.raw_bytes = tot.raw_out;
		m->st.wire_bytes = tot.wire_in;
	}
	if (ok)
		stor_target_unexport(m->stor, m->qmp);
	qmp_close(m->qmp);
	m->qmp = NULL;
	if (m->recover_path[0])
		unlink(m->recover_path);
	if (!ok && m->vm) {
		/* Nothing of the guest may survive here: the source keeps it. */
		struct qemu_vm *vm = m->vm;

		pthread_mutex_lock(&m->mu);
		m->vm = NULL;
		pthread_mutex_unlock(&m->mu);
		qemu_vm_stop(vm, 10000);
		qemu_vm_remove_files(vm);
		qemu_vm_free(vm);
	}
	if (!ok) {
		/* The partial copies go too (QEMU no longer holds them), before
		 * the source hears that the target is clean. */
		stor_target_remove_images(m->stor);
		reply(m, "aborted", m->st.failure_reason);
	}
	if (!ok && m->admitted)
		m->env.on_target_failed(m->env.agent, m->st.vm);
	if (end == MS_TGT_HELD) {
		/* Before the hand-over: the agent shows the guest Paused. */
		pthread_mutex_lock(&m->mu);
		m->st.guest_paused_on_source = 1; /* "paused here": split, not lost */
		pthread_mutex_unlock(&m->mu);
	}
	if (ok) {
		struct qemu_vm *vm = m->vm;

		pthread_mutex_lock(&m->mu);
		m->vm = NULL;
		pthread_mutex_unlock(&m->mu);
		if (m->env.on_target_arrived(m->env.agent, m, vm) < 0)
			log_error("mig", "event=handover_failed vm=%s", m->st.vm);
	}
	told = await_outcome(m, !ok);
	mig_finish(m, end);
	if (told) {
		/* The record on disk now says what the source's does. */
		struct json_object *ack = json_object_new_object();

		json_object_object_add(ack, "op", json_object_new_string("recorded"));
		(void)peer_send_json(m->ctl, ack);
		json_object_put(ack);
	}
	/* finished is set: no new attacher starts; wait for those under way
	 * before the relay they hand sockets to goes away. */
	pthread_mutex_lock(&m->mu);
	while (m->attaching > 0)
		pthread_cond_wait(&m->cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
	if (m->relay) {
		struct relay *r = m->relay;

		pthread_mutex_lock(&m->mu);
		m->relay = NULL;
		pthread_mutex_unlock(&m->mu);
		relay_free(r);
	}
	peer_link_close(m->ctl);
	m->ctl = NULL;
	pthread_mutex_lock(&m->mu);
	peer_link_close(m->resume); /* a resume that came too late */
	m->resume = NULL;
	pthread_mutex_unlock(&m->mu);
	log_set_migration(NULL);
	return NULL;
}

/* What the source's prepare says of the record from the start: the
 * VMIM name, when the migration began, the address it reached us at, and
 * whether it will send the outcome at the end (older sources do not).
 * Anything malformed is left out; the record keeps our own view. */
static void target_takes_record(struct migration *m, struct json_object *prep)
{
	struct json_object *f;

	if (json_object_object_get_ex(prep, "name", &f) && json_object_is_type(f, json_type_string) &&
	    strlen(json_object_get_string(f)) < sizeof(m->req.name)) {
		snprintf(m->req.name, sizeof(m->req.name), "%s", json_object_get_string(f));
		snprintf(m->st.name, sizeof(m->st.name), "%s", m->req.name);
	}
	if (json_object_object_get_ex(prep, "target_addr", &f) && json_object_is_type(f, json_type_string) &&
	    strlen(json_object_get_string(f)) < sizeof(m->st.target_addr))
		snprintf(m->st.target_addr, sizeof(m->st.target_addr), "%s", json_object_get_string(f));
	if (json_object_object_get_ex(prep, "start_us", &f) && json_object_is_type(f, json_type_int) &&
	    json_object_get_int64(f) > 0)
		m->st.start_us = (uint64_t)json_object_get_int64(f);
	m->peer_outcome = json_object_get_boolean(json_object_object_get(prep, "outcome"));
}

int mig_target_start(const struct mig_env *env, struct peer_link *ctl,
		     struct json_object *prepare_msg, struct migration **out)
{
	struct migration *m = mig_alloc(env, "target");
	const char *id = json_object_get_string(json_object_object_get(prepare_msg, "mig"));

	if (!m)
		return -ENOMEM;
	m->ctl = ctl;
	m->prepare = json_object_get(prepare_msg);
	snprintf(m->req.id, sizeof(m->req.id), "%s", id ? id : "");
	snprintf(m->st.id, sizeof(m->st.id), "%s", m->req.id);
	snprintf(m->st.source_node, sizeof(m->st.source_node), "%s", ctl->peer);
	snprintf(m->st.target_node, sizeof(m->st.target_node), "%s", env->node);
	m->multifd = json_object_get_int(json_object_object_get(prepare_msg, "multifd"));
	m->compress = json_object_get_boolean(json_object_object_get(prepare_msg, "compress")) ?
		      RELAY_COMPRESS_AUTO : RELAY_COMPRESS_OFF;
	m->postcopy = json_object_get_boolean(json_object_object_get(prepare_msg, "postcopy"));
	{
		int64_t pc = json_object_get_int64(json_object_object_get(prepare_msg, "page_cache"));

		m->page_budget = pc <= 0 ? 0 : (uint64_t)pc < env->page_cache_budget ? (uint64_t)pc :
					   env->page_cache_budget;
		m->st.page_cache_bytes = m->page_budget;
	}
	m->st.multifd_channels = m->multifd;
	m->st.compress = m->compress;
	m->st.post_copy = m->postcopy;
	target_takes_record(m, prepare_msg);
	/* The id names the record file: peers.c checked it, this is the
	 * engine's own guard. */
	if (m->multifd < 0 || m->multifd > 64 || !uuid_valid(id)) {
		m->ctl = NULL; /* the caller keeps the link on failure */
		mig_free(m);
		return -EINVAL;
	}
	if (pthread_create(&m->thread, NULL, target_main, m) != 0) {
		m->ctl = NULL;
		mig_free(m);
		return -EAGAIN;
	}
	m->thread_started = 1;
	*out = m;
	return 0;
}
