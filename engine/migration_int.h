/* Internals shared by the source and target halves of a migration. */
#ifndef FERRY_ENGINE_MIGRATION_INT_H
#define FERRY_ENGINE_MIGRATION_INT_H

#include <pthread.h>

#include "engine/mig_state.h"
#include "engine/migration.h"
#include "engine/policy.h"
#include "qmp/qemu_caps.h"
#include "transport/loop.h"

struct qmp;
struct relay;
struct stor;
struct migration;

/* Relay stream ids: 1 the main channel, 2.. multifd channels (QEMU allows
 * up to 255), from here the storage mirror's NBD connections. */
#define NBD_STREAM_BASE 0x100u

/* Source: a unix socket the source QEMU connects to; each connection
 * becomes a relay stream to the target. */
struct mig_listener {
	struct migration *m;
	int fd;
	char path[420];
	struct loop_op op;
	int open;
	int nbd; /* storage mirror connections, not migration channels */
};

/* One monitor sample kept for the time series (plots, the API). */
struct mig_sample {
	uint32_t t_ms; /* since `migrate` */
	uint64_t remaining, dirty_bps, copy_bps, wire_bps;
};
#define MIG_SAMPLES_MAX 2400 /* 20 min at two a second; older ones thinned */

struct migration {
	struct mig_env env;
	struct mig_request req;
	pthread_t thread;
	int thread_started;

	pthread_mutex_t mu; /* guards state, st, cancel_*, main_connected */
	pthread_cond_t cv;
	enum mig_state state; /* written only by the migration's thread, under mu (mig_enter) */
	struct mig_status st;
	int cancel_requested;
	char cancel_reason[256];
	struct mig_sample *samples; /* guarded by mu */
	size_t nsamples;
	unsigned sample_stride;     /* keep every n-th once full */
	uint64_t sample_seq;
	int admitted;          /* target: the agent holds the VM name for us */
	uint64_t start_mono_us; /* the migration began (total time of a failure) */
	uint64_t copy_mono_us;  /* source: the copy began (mirrors or `migrate`), 0 before */
	int peer_outcome;       /* the peer takes part in the "outcome" exchange: the
				   source sends it, the target awaits it */

	struct qemu_vm *vm; /* source: borrowed from the agent; target: owned until handed over */
	struct qmp *qmp;
	struct qemu_caps caps; /* what this side's QEMU offers (mig_connect_qmp) */
	struct relay *relay;
	struct peer_link *ctl;       /* the control link, NULL when none */
	char mig_dir[400];
	int compress, multifd;
	/* Page coding: the cache budget both sides agreed on (bytes, 0: off);
	 * target: what attached streams hold of it. */
	uint64_t page_budget, page_charged;
	int postcopy, auto_converge; /* allowed for this migration */
	int postcopy_entered;        /* source: the target ran the guest (it may have written to it) */
	int downtime_ceiling_ms;     /* source: the configured downtime limit, where pause tuning stops */
	struct pol_pause pause;      /* source: pause tuning's memory (engine/policy.h) */
	int recover_next_main;       /* post-copy resume: the next main channel goes to recovery */
	struct peer_link *resume;    /* target: new control link of a resume, NULL none */
	char recover_path[440];      /* target: QEMU's migrate-recover socket */
	struct json_object *prepare; /* target: the prepare message */
	struct stor *stor;           /* the disks copied (both ends; none: count 0) */
	char nbd_path[440];          /* target: the target QEMU's NBD server */

	/* Source: QEMU's outgoing channels arrive on this listener (loop
	 * thread), the storage mirror's NBD connections on the other. */
	struct mig_listener out, nbd;
	int nbd_seq;
	int setup_threads;
	char setup_error[256];

	/* Target: main channel connected to QEMU (multifd waits for it);
	 * attachers under way; connects to QEMU serialized by attach_mu. */
	int main_connected;
	int links_opened; /* target: data links attached so far (capped) */
	int attaching;
	int closing; /* target: the thread tears down or gave up on a resume; no more channels or resumes */
	pthread_mutex_t attach_mu;
};

/* Moves along an edge of the state table (mig_state.h): sets the public
 * phase and mode, logs event=state once, and persists the record and logs
 * event=phase when the phase changes. -EINVAL (logged as a bug, state
 * unchanged) for an edge the table lacks. Only the migration's own thread
 * calls it. */
int mig_enter(struct migration *m, enum mig_state to);
/* The same in two halves, for a caller that holds m->mu: the first returns
 * <0 refused, 0 no phase change, 1 phase changed; pass its result to the
 * second after unlocking. */
int mig_enter_locked(struct migration *m, enum mig_state to, enum mig_state *from);
void mig_entered(struct migration *m, enum mig_state from, enum mig_state to, int r);
/* Persists and logs the current phase (a migration's first). */
void mig_announce(struct migration *m);
/* The page coding figures of relay totals into a status. */
struct relay_stream_stats;
void mig_page_figures(struct mig_status *st, const struct relay_stream_stats *tot);
/* Records the failure reason (first one wins) and logs it. */
void mig_set_failure(struct migration *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mig_take_cancel(struct migration *m, char *reason, size_t len);
struct migration *mig_alloc(const struct mig_env *env, const char *role);
/* Enters a terminal state and writes the end's record. */
void mig_finish(struct migration *m, enum mig_state terminal);
/* The end's time and the total time, unless already set: a source calls
 * it before it tells the target the outcome; mig_finish does it anyway. */
void mig_close_record(struct migration *m);

/* QMP helpers used by both halves. */
int mig_qmp(struct migration *m, const char *cmd, struct json_object *args,
	    struct json_object **ret, int timeout_ms, char *err, size_t errlen);
int mig_set_capabilities(struct migration *m, char *err, size_t errlen);
/* Connects m->qmp to this side's QEMU and probes what it offers into
 * m->caps (logged once as event=qemu_caps). 0 or -errno with err set. */
int mig_connect_qmp(struct migration *m, int timeout_ms, char *err, size_t errlen);


/* SHA-256 of guest RAM via pmemsave into dir (file removed afterwards). */
/* Appends a sample (thread-safe). */
void mig_add_sample(struct migration *m, const struct mig_sample *s);

int mig_memory_digest(struct migration *m, const char *dir, char hex[65], char *err, size_t errlen);

#endif
