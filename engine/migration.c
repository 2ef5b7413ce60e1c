/* What both halves of a migration share: status, phases, failure records,
 * QMP and control-message helpers. */
#include "engine/migration_int.h"
#include "engine/storage.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "transport/frame.h"
#include "transport/relay.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

static const char *phase_names[] = {
	"Pending", "Scheduling", "Scheduled", "PreparingTarget",
	"TargetReady", "Running", "Succeeded", "Failed",
};

const char *mig_phase_name(enum mig_phase p)
{
	return (unsigned)p < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[p] : "Unknown";
}

struct migration *mig_alloc(const struct mig_env *env, const char *role)
{
	struct migration *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->env = *env;
	m->out.fd = m->nbd.fd = -1;
	m->out.m = m->nbd.m = m;
	m->nbd.nbd = 1;
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->attach_mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	snprintf(m->st.role, sizeof(m->st.role), "%s", role);
	snprintf(m->st.mode, sizeof(m->st.mode), "pre-copy");
	m->state = !strcmp(role, "source") ? MS_SRC_FIRST : MS_TGT_FIRST;
	m->st.phase = mstate_info(m->state)->phase;
	m->st.pause_ms = -1;
	m->st.eta_ms = -1;
	m->st.converging = 1;
	m->st.start_us = time_real_us();
	m->start_mono_us = time_mono_ns() / 1000;
	return m;
}

/* The record survives an agent restart: written on every phase change and
 * at the end with fs_write_atomic, so a reader never sees
 * half a record. */
static void persist(struct migration *m)
{
	struct mig_status st;
	struct json_object *o;
	char dir[400], path[480];
	const char *txt;
	int r;

	if (!m->req.id[0])
		return;
	mig_get_status(m, &st);
	o = mig_status_to_json(&st);
	txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(dir, sizeof(dir), "%s/records", m->env.state_dir);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/%s.json", dir, m->req.id);
	r = fs_write_atomic(path, txt, strlen(txt), 0644);
	if (r < 0)
		log_warn("mig", "event=record_write_failed path=%s err=%s", path, strerror(-r));
	json_object_put(o);
}

void mig_announce(struct migration *m)
{
	persist(m);
	log_info("mig", "event=phase phase=%s role=%s vm=%s", mig_phase_name(m->st.phase), m->st.role, m->st.vm);
}

/* Under m->mu. A total time is never 0: a failure counts from the copy's
 * start (or the migration's, before one) to its end, rounded up. A time
 * already set (QEMU's completion, the source's word) stays. */
static void close_record_locked(struct migration *m)
{
	uint64_t from = m->copy_mono_us ? m->copy_mono_us : m->start_mono_us;
	uint64_t now = time_mono_ns() / 1000;

	if (!m->st.end_us)
		m->st.end_us = time_real_us();
	if (!m->st.total_ms)
		m->st.total_ms = now > from ? (now - from + 999) / 1000 : 1;
}

void mig_close_record(struct migration *m)
{
	pthread_mutex_lock(&m->mu);
	close_record_locked(m);
	pthread_mutex_unlock(&m->mu);
}

/* The end's bookkeeping, under m->mu: times, outcome, abort status. */
static void end_locked(struct migration *m, const struct mig_state_info *ti)
{
	int succeeded = ti->phase == MIG_SUCCEEDED;

	m->st.phase = ti->phase;
	close_record_locked(m);
	m->st.phase_us[ti->phase] = m->st.end_us;
	m->st.completed = succeeded;
	m->st.failed = !succeeded;
	if (m->st.abort_requested)
		snprintf(m->st.abort_status, sizeof(m->st.abort_status), "%s",
			 succeeded ? "Failed" : "Succeeded");
	if (!succeeded && !m->st.failure_reason[0])
		snprintf(m->st.failure_reason, sizeof(m->st.failure_reason), "unknown failure");
	/* Held: nobody resumes the guest here automatically (the source
	 * lost the target after QEMU completed, or post-copy broke). */
	if (m->state == MS_SRC_HELD || m->state == MS_TGT_HELD)
		m->st.guest_paused_on_source = 1;
}

int mig_enter_locked(struct migration *m, enum mig_state to, enum mig_state *from)
{
	const struct mig_state_info *ti = mstate_info(to);
	enum mig_phase old_phase = m->st.phase;

	*from = m->state;
	if (*from == to)
		return 0;
	if (!ti || !mstate_edge(*from, to))
		return -EINVAL;
	m->state = to;
	if (!ti->keep_phase && m->st.phase != ti->phase) {
		m->st.phase = ti->phase;
		m->st.phase_us[ti->phase] = time_real_us();
	}
	if (ti->mode)
		snprintf(m->st.mode, sizeof(m->st.mode), "%s", ti->mode);
	if (ti->terminal)
		end_locked(m, ti);
	pthread_cond_broadcast(&m->cv);
	return old_phase != m->st.phase;
}

void mig_entered(struct migration *m, enum mig_state from, enum mig_state to, int r)
{
	if (r < 0) {
		log_error("mig", "event=bad_transition role=%s from=%s to=%s", m->st.role, mstate_name(from),
			  mstate_name(to));
		return;
	}
	if (from == to)
		return;
	log_info("mig", "event=state role=%s from=%s to=%s", m->st.role, mstate_name(from), mstate_name(to));
	if (r > 0)
		mig_announce(m);
}

int mig_enter(struct migration *m, enum mig_state to)
{
	enum mig_state from;
	int r;

	pthread_mutex_lock(&m->mu);
	r = mig_enter_locked(m, to, &from);
	pthread_mutex_unlock(&m->mu);
	mig_entered(m, from, to, r);
	return r < 0 ? r : 0;
}

void mig_set_failure(struct migration *m, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->mu);
	if (!m->st.failure_reason[0])
		snprintf(m->st.failure_reason, sizeof(m->st.failure_reason), "%s", buf);
	pthread_mutex_unlock(&m->mu);
	log_warn("mig", "event=failure vm=%s reason=\"%s\"", m->st.vm, log_q(buf));
}

int mig_take_cancel(struct migration *m, char *reason, size_t len)
{
	int c;

	pthread_mutex_lock(&m->mu);
	c = m->cancel_requested;
	if (c)
		snprintf(reason, len, "%s", m->cancel_reason);
	pthread_mutex_unlock(&m->mu);
	return c;
}

void mig_finish(struct migration *m, enum mig_state terminal)
{
	int succeeded = mstate_info(terminal)->phase == MIG_SUCCEEDED;

	if (!mstate_info(terminal)->terminal || mig_enter(m, terminal) < 0) {
		/* A bug: still end, so that nobody waits forever. */
		enum mig_state from = m->state;

		pthread_mutex_lock(&m->mu);
		m->state = m->st.role[0] == 's' ? MS_SRC_FAILED : MS_TGT_FAILED;
		m->st.phase = MIG_FAILED;
		end_locked(m, mstate_info(m->state));
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		log_error("mig", "event=bad_end from=%s to=%s", mstate_name(from), mstate_name(terminal));
		mig_announce(m);
		succeeded = 0;
	}
	if (m->nsamples) {
		struct json_object *arr = mig_samples_json(m);
		char path[480];

		snprintf(path, sizeof(path), "%s/records/%s.samples", m->env.state_dir, m->req.id);
		json_object_to_file_ext(path, arr, JSON_C_TO_STRING_PLAIN);
		json_object_put(arr);
	}
	log_info("mig", "event=finished role=%s vm=%s result=%s total_ms=%llu pause_ms=%lld raw_bytes=%llu wire_bytes=%llu reason=\"%s\"",
		 m->st.role, m->st.vm, succeeded ? "Succeeded" : "Failed",
		 (unsigned long long)m->st.total_ms, (long long)m->st.pause_ms,
		 (unsigned long long)m->st.raw_bytes, (unsigned long long)m->st.wire_bytes,
		 log_q(m->st.failure_reason));
}

int mig_cancel(struct migration *m, const char *reason, const char *by)
{
	int r = 0;

	pthread_mutex_lock(&m->mu);
	if (mstate_info(m->state)->terminal) {
		r = -EALREADY;
	} else if (!mstate_info(m->state)->cancellable) {
		r = -EBUSY;
	} else if (!m->cancel_requested) {
		m->cancel_requested = 1;
		m->st.abort_requested = 1;
		snprintf(m->st.abort_status, sizeof(m->st.abort_status), "Aborting");
		snprintf(m->cancel_reason, sizeof(m->cancel_reason), "%s", reason ? reason : "cancelled");
		if (by && !m->st.cancelled_by[0])
			snprintf(m->st.cancelled_by, sizeof(m->st.cancelled_by), "%s", by);
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

void mig_page_figures(struct mig_status *st, const struct relay_stream_stats *tot)
{
	st->pages = tot->pages;
	st->pages_zero = tot->pages_zero;
	st->pages_dup = tot->pages_dup;
	st->pages_delta = tot->pages_delta;
}

void mig_get_status(struct migration *m, struct mig_status *st)
{
	struct relay_stream_stats tot;

	pthread_mutex_lock(&m->mu);
	*st = m->st;
	/* Live byte counts come straight from the transport's counters; the
	 * lock keeps the relay alive while we read them. */
	if (m->relay && !st->completed && !st->failed && !strcmp(st->role, "source")) {
		relay_totals(m->relay, &tot);
		st->raw_bytes = tot.raw_in;
		st->wire_bytes = tot.wire_out;
		mig_page_figures(st, &tot);
	}
	pthread_mutex_unlock(&m->mu);
}

const char *mig_id(const struct migration *m) { return m->req.id; }

const char *mig_name(const struct migration *m) { return m->req.name; }

int mig_cancel_requested(struct migration *m)
{
	int c;

	pthread_mutex_lock(&m->mu);
	c = m->cancel_requested;
	pthread_mutex_unlock(&m->mu);
	return c;
}

int mig_finished(struct migration *m)
{
	int f;

	pthread_mutex_lock(&m->mu);
	f = mstate_info(m->state)->terminal;
	pthread_mutex_unlock(&m->mu);
	return f;
}

void mig_add_sample(struct migration *m, const struct mig_sample *smp)
{
	pthread_mutex_lock(&m->mu);
	if (!m->samples)
		m->samples = calloc(MIG_SAMPLES_MAX, sizeof(*m->samples));
	if (!m->sample_stride)
		m->sample_stride = 1;
	if (m->samples && m->sample_seq++ % m->sample_stride == 0) {
		if (m->nsamples == MIG_SAMPLES_MAX) {
			/* Full: keep every other sample and halve the rate, so a
			 * long migration still has its whole shape. */
			for (size_t i = 0; i < MIG_SAMPLES_MAX / 2; i++)
				m->samples[i] = m->samples[2 * i];
			m->nsamples = MIG_SAMPLES_MAX / 2;
			m->sample_stride *= 2;
		}
		m->samples[m->nsamples++] = *smp;
	}
	pthread_mutex_unlock(&m->mu);
}

struct json_object *mig_samples_json(struct migration *m)
{
	struct json_object *arr = json_object_new_array();

	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->nsamples; i++) {
		struct json_object *o = json_object_new_object();
		const struct mig_sample *s = &m->samples[i];

		json_object_object_add(o, "tMs", json_object_new_int64(s->t_ms));
		json_object_object_add(o, "remaining", json_object_new_int64((int64_t)s->remaining));
		json_object_object_add(o, "dirtyBps", json_object_new_int64((int64_t)s->dirty_bps));
		json_object_object_add(o, "copyBps", json_object_new_int64((int64_t)s->copy_bps));
		json_object_object_add(o, "wireBps", json_object_new_int64((int64_t)s->wire_bps));
		json_object_array_add(arr, o);
	}
	pthread_mutex_unlock(&m->mu);
	return arr;
}

void mig_free(struct migration *m)
{
	if (!m)
		return;
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	free(m->samples);
	stor_free(m->stor);
	if (m->prepare)
		json_object_put(m->prepare);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->attach_mu);
	pthread_cond_destroy(&m->cv);
	free(m);
}

struct json_object *mig_status_to_json(const struct mig_status *st)
{
	struct json_object *o = json_object_new_object();
	char ts[40];

#define ADD_S(k, v) json_object_object_add(o, k, json_object_new_string(v))
#define ADD_I(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
#define ADD_B(k, v) json_object_object_add(o, k, json_object_new_boolean(v))
	ADD_S("id", st->id);
	if (st->name[0])
		ADD_S("name", st->name);
	ADD_S("vm", st->vm);
	ADD_S("role", st->role);
	ADD_S("phase", mig_phase_name(st->phase));
	ADD_S("mode", st->mode);
	ADD_S("sourceNode", st->source_node);
	ADD_S("targetNode", st->target_node);
	ADD_S("targetNodeAddress", st->target_addr);
	/* Milliseconds: two migrations of one VM may start within a second,
	 * and history is ordered by this. */
	time_format_rfc3339_ms(st->start_us, ts, sizeof(ts));
	ADD_S("startTimestamp", ts);
	if (st->end_us) {
		time_format_rfc3339_ms(st->end_us, ts, sizeof(ts));
		ADD_S("endTimestamp", ts);
	}
	ADD_B("completed", st->completed);
	ADD_B("failed", st->failed);
	ADD_B("abortRequested", st->abort_requested);
	if (st->abort_status[0])
		ADD_S("abortStatus", st->abort_status);
	if (st->failure_reason[0])
		ADD_S("failureReason", st->failure_reason);
	if (st->cancelled_by[0])
		ADD_S("cancelledBy", st->cancelled_by);
	ADD_I("multifdChannels", st->multifd_channels);
	if (st->policy[0])
		ADD_S("policy", st->policy);
	ADD_B("autoConverge", st->auto_converge);
	ADD_B("postCopy", st->post_copy);
	ADD_I("escalations", st->escalations);
	if (st->post_copy) {
		ADD_I("postcopyRequests", st->postcopy_requests);
		ADD_I("postcopyBlocktimeMs", st->postcopy_blocktime_ms);
		ADD_I("postcopyRecoveries", st->recoveries);
	}
	ADD_I("cpuThrottlePercent", st->cpu_throttle_pct);
	ADD_I("downtimeLimitMs", st->downtime_limit_ms);
	ADD_B("compress", st->compress);
	ADD_I("totalMs", st->total_ms);
	/* No pause is no number: a guest that never paused has none. */
	if (st->pause_ms >= 0)
		ADD_I("pauseMs", st->pause_ms);
	ADD_I("qemuDowntimeMs", st->qemu_downtime_ms);
	ADD_I("rawBytes", st->raw_bytes);
	ADD_I("wireBytes", st->wire_bytes);
	if (st->page_cache_bytes) {
		struct json_object *pc = json_object_new_object();

		json_object_object_add(pc, "cacheBytes", json_object_new_int64((int64_t)st->page_cache_bytes));
		json_object_object_add(pc, "pages", json_object_new_int64((int64_t)st->pages));
		json_object_object_add(pc, "zero", json_object_new_int64((int64_t)st->pages_zero));
		json_object_object_add(pc, "duplicate", json_object_new_int64((int64_t)st->pages_dup));
		json_object_object_add(pc, "delta", json_object_new_int64((int64_t)st->pages_delta));
		json_object_object_add(o, "pageCoding", pc);
	}
	ADD_I("ramTotal", st->ram_total);
	ADD_I("ramTransferred", st->ram_transferred);
	ADD_I("ramRemaining", st->ram_remaining);
	if (st->disks) {
		ADD_I("disks", st->disks);
		ADD_I("diskTotal", st->disk_total);
		ADD_I("diskTransferred", st->disk_transferred);
		ADD_I("diskRemaining", st->disk_remaining);
		ADD_I("diskDirtyRateBps", st->disk_dirty_rate_bps);
		ADD_B("storageReady", st->storage_ready);
		ADD_S("storageCopyMode", st->storage_copy_mode);
		ADD_B("storageActivelySynced", st->storage_actively_synced);
	}
	ADD_I("dirtyRateBps", st->dirty_rate_bps);
	ADD_I("copyRateBps", st->copy_rate_bps);
	ADD_I("wireRateBps", st->wire_rate_bps);
	ADD_B("converging", st->converging);
	ADD_I("etaMs", st->eta_ms);
	ADD_I("iterations", st->iterations);
	ADD_I("expectedPauseMs", st->expected_pause_ms);
	if (st->memory_verified)
		ADD_S("memoryVerified", st->memory_verified > 0 ? "match" : "MISMATCH");
	if (st->memory_digest[0])
		ADD_S("memoryDigest", st->memory_digest);
	if (st->left_paused)
		ADD_B("leftPaused", 1);
	if (st->guest_paused_on_source)
		ADD_B("guestPausedHere", 1);
#undef ADD_S
#undef ADD_I
#undef ADD_B
	return o;
}

struct json_object *mig_outcome_to_json(const struct mig_status *st)
{
	struct json_object *o = json_object_new_object();

#define ADD_S(k, v) json_object_object_add(o, k, json_object_new_string(v))
#define ADD_I(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
	ADD_S("op", "outcome");
	ADD_S("phase", st->phase == MIG_SUCCEEDED ? "Succeeded" : "Failed");
	ADD_S("name", st->name);
	ADD_I("start_us", st->start_us);
	ADD_I("end_us", st->end_us);
	ADD_I("total_ms", st->total_ms);
	if (st->pause_ms >= 0)
		ADD_I("pause_ms", st->pause_ms);
	ADD_I("qemu_downtime_ms", st->qemu_downtime_ms);
	ADD_S("target_addr", st->target_addr);
	if (st->failure_reason[0])
		ADD_S("reason", st->failure_reason);
	if (st->cancelled_by[0])
		ADD_S("cancelled_by", st->cancelled_by);
	json_object_object_add(o, "abort_requested", json_object_new_boolean(st->abort_requested));
	ADD_I("escalations", st->escalations);
	ADD_S("policy", st->policy);
	/* The disks the source copied: its figures, so both records say it. */
	if (st->disks > 0) {
		ADD_I("disks", st->disks);
		ADD_I("disk_total", st->disk_total);
		ADD_I("disk_transferred", st->disk_transferred);
		if (st->storage_copy_mode[0])
			ADD_S("storage_copy_mode", st->storage_copy_mode);
	}
	/* How the source coded the pages: only it knows. */
	if (st->page_cache_bytes) {
		ADD_I("pages", st->pages);
		ADD_I("pages_zero", st->pages_zero);
		ADD_I("pages_dup", st->pages_dup);
		ADD_I("pages_delta", st->pages_delta);
	}
#undef ADD_S
#undef ADD_I
	return o;
}

/* A field of an outcome: absent is fine (*v untouched), anything other
 * than a string of at most max-1 bytes is not. */
static int outcome_str(struct json_object *msg, const char *k, const char **v, size_t max)
{
	struct json_object *f;

	if (!json_object_object_get_ex(msg, k, &f))
		return 0;
	if (!json_object_is_type(f, json_type_string) || strlen(json_object_get_string(f)) >= max)
		return -1;
	*v = json_object_get_string(f);
	return 0;
}

/* ... a whole number from 0 to max. */
static int outcome_num(struct json_object *msg, const char *k, int64_t *v, int64_t max)
{
	struct json_object *f;
	int64_t n;

	if (!json_object_object_get_ex(msg, k, &f))
		return 0;
	if (!json_object_is_type(f, json_type_int))
		return -1;
	n = json_object_get_int64(f);
	if (n < 0 || n > max)
		return -1;
	*v = n;
	return 0;
}

int mig_outcome_apply(struct mig_status *st, struct json_object *msg, int failed_here, char *err,
		      size_t errlen)
{
	const char *phase = NULL, *name = NULL, *addr = NULL, *reason = NULL, *by = NULL, *policy = NULL,
		   *scm = NULL;
	int64_t start = -1, end = -1, total = -1, pause = -1, qdown = -1, esc = -1, disks = -1, dtotal = -1,
		dsent = -1, pages = -1, pzero = -1, pdup = -1, pdelta = -1;
	const int64_t big = INT64_C(1) << 62;
	struct json_object *ab = NULL;

	if (outcome_str(msg, "phase", &phase, 16) || outcome_str(msg, "name", &name, sizeof(st->name)) ||
	    outcome_str(msg, "target_addr", &addr, sizeof(st->target_addr)) ||
	    outcome_str(msg, "reason", &reason, sizeof(st->failure_reason)) ||
	    outcome_str(msg, "cancelled_by", &by, sizeof(st->cancelled_by)) ||
	    outcome_str(msg, "policy", &policy, sizeof(st->policy)) ||
	    outcome_str(msg, "storage_copy_mode", &scm, sizeof(st->storage_copy_mode))) {
		snprintf(err, errlen, "an outcome field is not a string of the right length");
		return -EINVAL;
	}
	if (outcome_num(msg, "start_us", &start, big) || outcome_num(msg, "end_us", &end, big) ||
	    outcome_num(msg, "total_ms", &total, big) || outcome_num(msg, "pause_ms", &pause, big) ||
	    outcome_num(msg, "qemu_downtime_ms", &qdown, big) || outcome_num(msg, "escalations", &esc, 1 << 20) ||
	    outcome_num(msg, "disks", &disks, 1024) || outcome_num(msg, "disk_total", &dtotal, big) ||
	    outcome_num(msg, "disk_transferred", &dsent, big) || outcome_num(msg, "pages", &pages, big) ||
	    outcome_num(msg, "pages_zero", &pzero, big) || outcome_num(msg, "pages_dup", &pdup, big) ||
	    outcome_num(msg, "pages_delta", &pdelta, big)) {
		snprintf(err, errlen, "an outcome figure is not a whole number in range");
		return -EINVAL;
	}
	if (!phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))) {
		snprintf(err, errlen, "an outcome needs phase Succeeded or Failed");
		return -EINVAL;
	}
	if (start > 0 && end > 0 && end < start) {
		snprintf(err, errlen, "an outcome that ends (%lld) before it starts (%lld)", (long long)end,
			 (long long)start);
		return -EINVAL;
	}
	ab = json_object_object_get(msg, "abort_requested");
	if (ab && !json_object_is_type(ab, json_type_boolean)) {
		snprintf(err, errlen, "abort_requested is not a boolean");
		return -EINVAL;
	}
	if (name && name[0])
		snprintf(st->name, sizeof(st->name), "%s", name);
	if (addr && addr[0])
		snprintf(st->target_addr, sizeof(st->target_addr), "%s", addr);
	if (policy && policy[0])
		snprintf(st->policy, sizeof(st->policy), "%s", policy);
	if (start > 0)
		st->start_us = (uint64_t)start;
	if (end > 0)
		st->end_us = (uint64_t)end;
	if (total > 0)
		st->total_ms = (uint64_t)total;
	if (pause >= 0)
		st->pause_ms = pause;
	if (qdown >= 0)
		st->qemu_downtime_ms = (uint64_t)qdown;
	if (esc >= 0)
		st->escalations = (int)esc;
	if (disks > 0) {
		st->disks = (int)disks;
		st->disk_total = dtotal > 0 ? (uint64_t)dtotal : 0;
		st->disk_transferred = dsent > 0 ? (uint64_t)dsent : 0;
	}
	if (scm && scm[0])
		snprintf(st->storage_copy_mode, sizeof(st->storage_copy_mode), "%s", scm);
	if (pages >= 0 && pzero <= pages && pdup <= pages && pdelta <= pages) {
		st->pages = (uint64_t)pages;
		st->pages_zero = pzero > 0 ? (uint64_t)pzero : 0;
		st->pages_dup = pdup > 0 ? (uint64_t)pdup : 0;
		st->pages_delta = pdelta > 0 ? (uint64_t)pdelta : 0;
	}
	if (by && by[0])
		snprintf(st->cancelled_by, sizeof(st->cancelled_by), "%s", by);
	if (ab && json_object_get_boolean(ab))
		st->abort_requested = 1;
	/* The side that failed says why: when the source failed (cancelled,
	 * timed out), what the target saw of it (its QEMU's load cut off) is
	 * a consequence, not the reason. A target failure reached the source
	 * first and comes back inside its reason. */
	if (failed_here && reason && reason[0])
		snprintf(st->failure_reason, sizeof(st->failure_reason), "%s", reason);
	return 0;
}

int mig_connect_qmp(struct migration *m, int timeout_ms, char *err, size_t errlen)
{
	struct qmp_error qe;
	char e[256], desc[160];
	int r = qmp_connect(m->vm->qmp_path, timeout_ms, &m->qmp, &qe);

	if (r < 0) {
		snprintf(err, errlen, "%.400s", qe.desc);
		return r;
	}
	r = qcaps_probe(m->qmp, &m->caps, e, sizeof(e));
	if (r < 0) {
		snprintf(err, errlen, "cannot probe what QEMU offers: %s", e);
		return r;
	}
	log_info("mig", "event=qemu_caps role=%s version=%s", m->st.role,
		 qcaps_describe(&m->caps, desc, sizeof(desc)));
	if (!qcaps_has(&m->caps, QCAP_TCG_DIRTY_COHERENT))
		log_warn("mig", "event=qemu_old version=%d.%d.%d reason=\"before QEMU 9.0 a TCG guest can lose "
			 "writes across many dirty-bitmap syncs; ferry supports QEMU %d.%d and later\"",
			 m->caps.major, m->caps.minor, m->caps.micro, QCAPS_MIN_MAJOR, QCAPS_MIN_MINOR);
	return 0;
}

int mig_qmp(struct migration *m, const char *cmd, struct json_object *args,
	    struct json_object **ret, int timeout_ms, char *err, size_t errlen)
{
	return qmp_call(m->qmp, cmd, args, ret, timeout_ms, err, errlen);
}

/* Both QEMUs must agree on capabilities and the multifd channel count. */
int mig_set_capabilities(struct migration *m, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	struct json_object *caps = json_object_new_array();
	/* auto-converge acts on the source only; postcopy-ram must match. */
	/* postcopy-blocktime: the target measures how long vCPUs waited for
	 * pages, i.e. what page-request latency cost the guest. */
	/* pause-before-switchover: the source stops at pre-switchover so the
	 * disk mirrors can finish while the guest is stopped. */
	const char *names[] = {"events", "multifd", "postcopy-ram", "auto-converge", "postcopy-blocktime",
			       "pause-before-switchover"};
	int is_source = !strcmp(m->st.role, "source");
	int vals[] = {1, m->multifd > 0, m->postcopy, m->auto_converge && is_source,
		      m->postcopy && !is_source, is_source && stor_count(m->stor) > 0};
	int r;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct json_object *c = json_object_new_object();

		json_object_object_add(c, "capability", json_object_new_string(names[i]));
		json_object_object_add(c, "state", json_object_new_boolean(vals[i]));
		json_object_array_add(caps, c);
	}
	json_object_object_add(args, "capabilities", caps);
	r = mig_qmp(m, "migrate-set-capabilities", args, NULL, 5000, err, errlen);
	json_object_put(args);
	if (r < 0 || m->multifd <= 0)
		return r;
	args = json_object_new_object();
	json_object_object_add(args, "multifd-channels", json_object_new_int(m->multifd));
	/* QEMU 9.0+: the multifd threads find zero pages in parallel and send
	 * only their offsets; before, the main thread scanned every page. It
	 * is 9.0's default; set so that a changed default cannot surprise. */
	if (qcaps_has(&m->caps, QCAP_ZERO_PAGE_DETECTION))
		json_object_object_add(args, "zero-page-detection", json_object_new_string("multifd"));
	r = mig_qmp(m, "migrate-set-parameters", args, NULL, 5000, err, errlen);
	json_object_put(args);
	return r;
}

int mig_memory_digest(struct migration *m, const char *dir, char hex[65], char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	char path[400];
	unsigned char md[32], buf[1 << 16];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	FILE *f = NULL;
	size_t n;
	int r;

	snprintf(path, sizeof(path), "%s/memory-%s.bin", dir, m->req.id);
	json_object_object_add(args, "val", json_object_new_int64(0));
	json_object_object_add(args, "size",
			       json_object_new_int64((int64_t)m->vm->spec->memory_mib << 20));
	json_object_object_add(args, "filename", json_object_new_string(path));
	r = mig_qmp(m, "pmemsave", args, NULL, 300000, err, errlen);
	json_object_put(args);
	if (r < 0)
		goto out;
	f = fopen(path, "rb");
	ctx = EVP_MD_CTX_new();
	if (!f || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "cannot hash %s", path);
		r = -EIO;
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(ctx, buf, n);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	r = 0;
out:
	if (f)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	if (!getenv("FERRY_KEEP_MEMORY_DUMPS"))
		unlink(path);
	return r;
}
