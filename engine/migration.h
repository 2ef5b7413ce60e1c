/* One live migration, both ends.
 *
 * The source side runs in its own thread: it asks the target agent to
 * prepare (over an authenticated control link), drives the source QEMU over
 * QMP, relays every channel QEMU opens through the transport, watches
 * progress, and decides the outcome. The target side, also one thread, starts
 * QEMU with -incoming defer, connects the relayed channels to it in the order
 * QEMU before 8.0 needs (main first), and reports when the guest runs.
 *
 * The rule every path keeps: before the target confirms the guest runs there,
 * any failure or cancel leaves the guest running on the source; a VM never
 * runs on two hosts, and never on none. */
#ifndef FERRY_ENGINE_MIGRATION_H
#define FERRY_ENGINE_MIGRATION_H

#include <stdint.h>

#include "engine/channel.h"
#include "schema/mig_settings.h"
#include "engine/qemu_proc.h"
#include "engine/vmspec.h"
#include "transport/peer.h"

struct loop;
struct workers;
struct migration;
struct json_object;

/* KubeVirt's VirtualMachineInstanceMigration phases. */
enum mig_phase {
	MIG_PENDING,
	MIG_SCHEDULING,
	MIG_SCHEDULED,
	MIG_PREPARING_TARGET,
	MIG_TARGET_READY,
	MIG_RUNNING,
	MIG_SUCCEEDED,
	MIG_FAILED,
};
#define MIG_PHASE_COUNT (MIG_FAILED + 1)

struct mig_env {
	struct loop *lp;
	struct workers *w;
	struct tls_ident *ident; /* our node identity for peer links */
	char node[64];
	char state_dir[256];
	struct qemu_env qemu;
	void *agent;
	/* Source: the migration ended; succeeded = the VM now lives on the
	 * target and the source QEMU is gone. */
	void (*on_source_done)(void *agent, struct migration *m, int succeeded);
	/* Target: a VM arrived and runs here; takes ownership of vm.
	 * Returns 0, or -errno if the agent cannot take it. */
	int (*on_target_arrived)(void *agent, struct migration *m, struct qemu_vm *vm);
	/* Target: may a VM of this name come here? 0 (the name is now held
	 * for it) or -EEXIST with reason. */
	int (*target_admit)(void *agent, const char *vm_name, char *reason, size_t len);
	/* Source: wait (in Pending) for an outbound slot; 0 when held,
	 * -ETIMEDOUT, or -ECANCELED when the migration was cancelled meanwhile.
	 * release_slot gives it back at the end. */
	int (*acquire_slot)(void *agent, struct migration *m, char *why, size_t len);
	void (*release_slot)(void *agent, struct migration *m);
	int pending_timeout_s;
	/* Target: the most page cache (bytes) one inbound migration may hold
	 * (its agent's migration.page_cache_mib); 0 = no page coding here. */
	uint64_t page_cache_budget;
	/* Target: an admitted migration failed; release the name. */
	void (*on_target_failed)(void *agent, const char *vm_name);
};

struct mig_request {
	char id[40];
	char vm[64];
	char target_node[64];
	char target_host[256];
	int target_port;
	/* The settings, resolved by the caller (mset_resolve: request, VM
	 * spec, policy, agent defaults) and checked before anything starts. */
	struct mset set;
	int verify_memory;       /* target starts paused; both sides hash guest RAM
				    after the switchover and must match */
	char policy[64];         /* the named policy applied, "" for none */
	int keep_paused;         /* the guest arrives paused and stays so (libvirt's
				    VIR_MIGRATE_PAUSED): someone resumes it later */
	char name[64];           /* a VirtualMachineInstanceMigration's metadata.name, or "" */
};

struct mig_status {
	char id[40];
	char name[64]; /* the VMIM name it was created as, if any */
	char vm[64];
	char role[8]; /* source | target */
	char source_node[64];
	char target_node[64];
	char target_addr[300];
	enum mig_phase phase;
	char mode[32]; /* storage (disks only, before RAM) | pre-copy | post-copy | post-copy-recovering */
	uint64_t start_us, end_us;
	/* When a transition entered each phase (wall clock); 0 for a phase
	 * never entered and for the one the migration began in. */
	uint64_t phase_us[MIG_PHASE_COUNT];
	int completed, failed, abort_requested;
	char abort_status[16]; /* "" | Aborting | Succeeded | Failed */
	char failure_reason[512]; /* from the side that failed (the source's word wins) */
	char cancelled_by[96];    /* who ended it: the API caller ("alice (migrator)"),
				     or the policy ("progress timeout", ...); "" none */
	int multifd_channels, compress;
	int auto_converge, post_copy; /* escalations allowed */
	int escalations;              /* steps taken */
	int cpu_throttle_pct;         /* auto-converge's current throttle */
	uint64_t postcopy_requests;   /* source: pages the target asked for */
	int recoveries;               /* post-copy resumed after a broken link */
	int64_t postcopy_blocktime_ms; /* target: vCPU time spent waiting for them */
	char policy[64];              /* named policy applied */
	int downtime_limit_ms;        /* current */
	/* Figures. */
	uint64_t migrate_start_us;   /* `migrate` issued */
	uint64_t total_ms;           /* copy start → source completed; a failure: copy
					start (or, before one, the migration's start) → its end */
	int64_t pause_ms;            /* target RESUME − source STOP; -1: the guest did not
					pause, or nobody knows (never shown as a number) */
	uint64_t stop_ts_us, resume_ts_us;
	uint64_t qemu_downtime_ms;   /* QEMU's own estimate, for comparison */
	uint64_t raw_bytes, wire_bytes; /* source→target through ferry */
	/* Page coding: the cache each side may hold (0: not used), and the
	 * source's pages by how they went (transport/pagecode.h). */
	uint64_t page_cache_bytes;
	uint64_t pages, pages_zero, pages_dup, pages_delta;
	uint64_t ram_total, ram_transferred, ram_remaining;
	/* Storage: the local disks copied (shared ones are not). disk_total
	 * is their virtual size; transferred/remaining are the mirror jobs'
	 * (remaining grows back as the guest writes to copied areas). */
	int disks;
	uint64_t disk_total, disk_transferred, disk_remaining, disk_dirty_rate_bps;
	int storage_ready;          /* every mirror in sync */
	char storage_copy_mode[16]; /* background | write-blocking */
	int storage_actively_synced; /* write-blocking and QEMU says every write is mirrored */
	uint64_t dirty_rate_bps, copy_rate_bps, wire_rate_bps;
	int converging;   /* copy outruns dirtying */
	int64_t eta_ms;   /* -1: unknown or not converging */
	uint64_t iterations;
	uint64_t expected_pause_ms; /* QEMU's expected-downtime for the last copy */
	int memory_verified;          /* 1 match, -1 mismatch, 0 not checked */
	/* The guest is kept paused on this node and nobody resumes it
	 * automatically: source after QEMU completed but the target never
	 * confirmed (resuming could run it twice), or either side after
	 * post-copy broke (each holds part of the guest). */
	int guest_paused_on_source;
	int left_paused; /* asked for: the guest arrived paused on the target */
	char memory_digest[65];
};

int mig_source_start(const struct mig_env *env, const struct mig_request *req,
		     struct qemu_vm *vm, struct migration **out);

/* Target: the agent accepted a control link whose first message was a
 * "prepare"; on success this takes the link and runs the target side (on
 * failure the caller still owns it, to say why before closing). */
int mig_target_start(const struct mig_env *env, struct peer_link *ctl,
		     struct json_object *prepare, struct migration **out);

/* Target: a data link for this migration arrived (its OPEN already read).
 * Takes the link. Its authenticated node must be the migration's source.
 * Connects the channel to the incoming QEMU in the right order,
 * acknowledges, and starts relaying with the stream's keys. */
int mig_target_attach(struct migration *m, struct peer_link *pl, enum channel_kind kind,
		      int chan_id, uint32_t stream_id, uint32_t page_slots, char *reason, size_t len);

/* Target: a new control link asks to resume this migration's broken
 * post-copy. Takes the link on success. */
int mig_target_resume(struct migration *m, struct peer_link *pl, char *reason, size_t len);

/* Thread-safe. Refused (-EBUSY) once the switchover has begun. by says
 * who asked (kept in the record as cancelledBy; NULL: nobody named). */
int mig_cancel(struct migration *m, const char *reason, const char *by);
void mig_get_status(struct migration *m, struct mig_status *st);
const char *mig_id(const struct migration *m);
const char *mig_name(const struct migration *m);
int mig_finished(struct migration *m);
/* Nonzero once a cancel was asked for (thread-safe). */
int mig_cancel_requested(struct migration *m);
/* Waits for the thread, frees. */
void mig_free(struct migration *m);

/* The monitor's time series: [{"tMs","remaining","dirtyBps","copyBps","wireBps"}]. */
struct json_object *mig_samples_json(struct migration *m);


const char *mig_phase_name(enum mig_phase p);
struct json_object *mig_status_to_json(const struct mig_status *st);

/* The control message "outcome" (docs/protocol.md): what the source knows
 * of a finished migration, sent to the target so that both nodes keep the
 * same record. Pure. */
struct json_object *mig_outcome_to_json(const struct mig_status *st);
/* Takes a received "outcome" into the target's status st: the name,
 * times, pause, target address, who cancelled, and the failure reason
 * when the target failed too (failed_here). 0, or -EINVAL with err set
 * (st unchanged) for a message that is not a valid outcome. Pure. */
int mig_outcome_apply(struct mig_status *st, struct json_object *msg, int failed_here, char *err,
		      size_t errlen);

#endif
