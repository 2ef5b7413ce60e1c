/*
 * qmpwatch: a QMP session of the bench with one QEMU, on ferry's own QMP
 * client (qmp/qmp.h), and what that QEMU's events said so far.
 *
 * The client queues every event that arrives while it waits for a reply,
 * with QEMU's own timestamp; after each command (and while idling) the
 * bench takes them all from the queue and records here what it acts on:
 * STOP/RESUME/MIGRATION completed (for pause and time end to end) and the
 * native disk mirror's job events. Every wait is bounded and ends early on
 * g_stop.
 */
#ifndef FERRY_BENCH_QMPWATCH_H
#define FERRY_BENCH_QMPWATCH_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct qmp;

/* the native disk sequence's mirror job */
#define NATIVE_JOB "mirror-root"

struct qwatch {
	struct qmp *q;
	/* QEMU timestamps (us since the epoch), 0 = not seen */
	int64_t stop_us, resume_us, completed_us;
	/* the native disk sequence: what the events said (job NATIVE_JOB) */
	int pre_switchover; /* MIGRATION status pre-switchover seen */
	int job_ready;      /* BLOCK_JOB_READY */
	int job_end;        /* 1 BLOCK_JOB_COMPLETED, 2 BLOCK_JOB_CANCELLED */
	int64_t job_offset; /* offset in the end event */
	char job_error[160];
};

/* Connects to the QMP socket at path (retried while QEMU starts), within
 * timeout_s. NULL on failure. */
struct qwatch *qw_open(const char *path, int timeout_s);
/* NULL-safe. */
void qw_close(struct qwatch *w);
/* Runs cmd with args (JSON object text, NULL = none); returns its
 * "return" (a new reference) or NULL, QEMU's refusal written to stderr. */
struct json_object *qw_exec(struct qwatch *w, const char *cmd, const char *args, int timeout_s);
/* qw_exec with a 30 s bound, the result dropped: 0 or -1. */
int qw_ok(struct qwatch *w, const char *cmd, const char *args);
/* Reads what QEMU sends for up to ms, returning early after a MIGRATION or
 * BLOCK_JOB_ event; sleeps out the rest when the session is gone. */
void qw_idle(struct qwatch *w, int ms);
/* Reads until a RESUME has been seen, at most ms. */
void qw_wait_resume(struct qwatch *w, int ms);

#endif
