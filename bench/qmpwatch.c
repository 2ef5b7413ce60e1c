/*
 * qmpwatch.c: the bench's QMP sessions on ferry's client (qmp/qmp.h). The
 * client keeps the events that arrive while it reads replies in a queue,
 * with QEMU's timestamps; qw_drain empties that queue into struct qwatch
 * after every call, so an event is recorded no later than the reply that
 * followed it, as the bench reads the two together.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/qmpwatch.h"
#include "qmp/qmp.h"
#include "util/timeutil.h"

/* the longest single wait, so that g_stop is seen promptly */
#define QW_SLICE_MS 200

int64_t jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* A BLOCK_JOB_ event of NATIVE_JOB. */
static void note_job(struct qwatch *w, const char *name, struct json_object *data)
{
	struct json_object *v;

	if (!json_object_object_get_ex(data, "device", &v) || strcmp(json_object_get_string(v), NATIVE_JOB))
		return;
	if (!strcmp(name, "BLOCK_JOB_READY"))
		w->job_ready = 1;
	if (!strcmp(name, "BLOCK_JOB_COMPLETED") || !strcmp(name, "BLOCK_JOB_CANCELLED")) {
		w->job_end = !strcmp(name, "BLOCK_JOB_COMPLETED") ? 1 : 2;
		if (json_object_object_get_ex(data, "offset", &v))
			w->job_offset = json_object_get_int64(v);
		if (json_object_object_get_ex(data, "error", &v))
			snprintf(w->job_error, sizeof(w->job_error), "%s", json_object_get_string(v));
	}
}

/* Records what the bench acts on from one event. */
static void note_event(struct qwatch *w, const struct qmp_event *ev)
{
	int64_t us = (int64_t)ev->ts_us;
	const char *status = jstr(ev->data, "status");

	if (!strcmp(ev->name, "STOP") && !w->stop_us)
		w->stop_us = us;
	else if (!strcmp(ev->name, "RESUME"))
		w->resume_us = us;
	else if (!strcmp(ev->name, "MIGRATION")) {
		if (!strcmp(status, "completed"))
			w->completed_us = us;
		if (!strcmp(status, "pre-switchover"))
			w->pre_switchover = 1;
	} else if (!strncmp(ev->name, "BLOCK_JOB_", 10))
		note_job(w, ev->name, ev->data);
}

/* Takes every queued event; returns 1 if one was a MIGRATION or BLOCK_JOB_
 * event (what the native loops react to), else 0. */
static int qw_drain(struct qwatch *w)
{
	struct qmp_event ev;
	int wake = 0;

	while (qmp_take_event(w->q, NULL, &ev) == 0) {
		note_event(w, &ev);
		wake |= !strcmp(ev.name, "MIGRATION") || !strncmp(ev.name, "BLOCK_JOB_", 10);
		qmp_event_clear(&ev);
	}
	return wake;
}

struct qwatch *qw_open(const char *path, int timeout_s)
{
	struct qwatch *w = calloc(1, sizeof(*w));
	uint64_t end = time_mono_ms() + (uint64_t)timeout_s * 1000;
	struct qmp_error err;

	if (!w)
		return NULL;
	/* QEMU creates the socket at start: wait for it here, where g_stop
	 * ends the wait, then let the client connect and greet */
	if (wait_file(path, timeout_s * 1000) < 0 ||
	    qmp_connect(path, time_remaining_ms(end) > 0 ? time_remaining_ms(end) : 1, &w->q, &err) < 0) {
		free(w);
		return NULL;
	}
	qw_drain(w);
	return w;
}

void qw_close(struct qwatch *w)
{
	if (w) {
		qmp_close(w->q);
		free(w);
	}
}

struct json_object *qw_exec(struct qwatch *w, const char *cmd, const char *args, int timeout_s)
{
	struct json_object *a = NULL, *ret = NULL;
	char err[768];
	int rc;

	if (args) {
		a = json_tokener_parse(args);
		if (!a) {
			msg("qmp %s: cannot parse the arguments %s", cmd, args);
			return NULL;
		}
	}
	rc = qmp_call(w->q, cmd, a, &ret, timeout_s * 1000, err, sizeof(err));
	json_object_put(a);
	qw_drain(w);
	if (rc < 0) {
		msg("qmp %s: %s", cmd, err);
		return NULL;
	}
	/* a command without a result ({} in QEMU's reply) still succeeded */
	return ret ? ret : json_object_new_object();
}

int qw_ok(struct qwatch *w, const char *cmd, const char *args)
{
	struct json_object *r = qw_exec(w, cmd, args, 30);

	if (!r)
		return -1;
	json_object_put(r);
	return 0;
}

/* Reads for up to ms or until done(w) says so; returns 1 if done, 0 on
 * timeout or g_stop, -1 when the session is gone. */
static int qw_read_until(struct qwatch *w, int ms, int (*done)(struct qwatch *, int wake))
{
	uint64_t dl = time_mono_ms() + (uint64_t)ms;

	for (;;) {
		uint64_t now = time_mono_ms();
		int rc;

		if (now >= dl || g_stop)
			return 0;
		rc = qmp_pump(w->q, dl - now > QW_SLICE_MS ? QW_SLICE_MS : (int)(dl - now));
		if (done(w, qw_drain(w)))
			return 1;
		if (rc < 0)
			return -1;
	}
}

static int woken(struct qwatch *w, int wake)
{
	(void)w;
	return wake;
}

static int resumed(struct qwatch *w, int wake)
{
	(void)wake;
	return w->resume_us != 0;
}

void qw_idle(struct qwatch *w, int ms)
{
	uint64_t dl = time_mono_ms() + (uint64_t)ms;

	if (qw_read_until(w, ms, woken) == 1)
		return;
	if (!g_stop && time_mono_ms() < dl)
		sleep_ms((int)(dl - time_mono_ms()));
}

void qw_wait_resume(struct qwatch *w, int ms)
{
	if (!w->resume_us)
		(void)qw_read_until(w, ms, resumed);
}
