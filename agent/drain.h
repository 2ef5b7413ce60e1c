/* Cordon and drain: a node taken out of service.
 *
 * A cordoned node takes no new VMs and no inbound migrations; peers judge
 * it ineligible ("cordoned") from its facts. The cordon survives a restart
 * of the agent (the file STATE_DIR/cordoned).
 *
 * A drain cordons the node and live-migrates every VM off it on a thread
 * of its own, as many at once as the outbound limits allow (this node's
 * limits.parallel_outbound, and limits.parallel_cluster against the peers'
 * outbound counts); the rest wait in the drain's queue as Pending. A VM
 * whose migration fails is tried again on another eligible node, up to
 * maxAttempts times. Interrupting it starts nothing new and lets the
 * running migrations end, so no VM is left half-moved.
 *
 * Each VM of a drain moves through
 *
 *   Pending --start--> Migrating --Succeeded--> Moved
 *      ^                  |
 *      +---failed, tries--+--failed, no tries left / timed out--> Failed
 *   Pending --blocker, no eligible node, stopped--> NotMovable
 *
 * and the drain through Running --> Completed (every VM moved) | Failed
 * (some VM could not move: the report says which and why) | Interrupted.
 *
 * The decisions (next VM, target, retry) are the pure drain_* functions
 * below; drain.c's thread does the I/O around them. */
#ifndef FERRY_AGENT_DRAIN_H
#define FERRY_AGENT_DRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct agent;
struct json_object;

#define DRAIN_MAX_ATTEMPTS_DEFAULT 3
#define DRAIN_MAX_ATTEMPTS_MAX 10
#define DRAIN_TIMEOUT_S_DEFAULT 3600
#define DRAIN_TIMEOUT_S_MIN 10
#define DRAIN_TIMEOUT_S_MAX 86400
#define DRAIN_TRIED_MAX 16

enum drain_vm_state { DV_PENDING, DV_MIGRATING, DV_MOVED, DV_NOT_MOVABLE, DV_FAILED };
enum drain_state { DS_RUNNING, DS_COMPLETED, DS_INTERRUPTED, DS_FAILED };

struct drain_vm {
	char vm[64];
	enum drain_vm_state state;
	char target[64];    /* the node of the current or last attempt */
	int attempts;       /* migrations started */
	char mig[40];       /* the current or last migration's id */
	char reason[1024];  /* why it failed, or could not move */
	char tried[DRAIN_TRIED_MAX][64]; /* targets whose migration failed */
	int n_tried;
	uint64_t started_ms; /* monotonic start of the current attempt */
	int timed_out;       /* cancelled for the drain's timeout */
	int memory_mib;      /* the guest's, promised to its target while Migrating */
};

struct drain_run {
	enum drain_state state;
	time_t started, ended;
	int max_attempts, timeout_s;
	int interrupted;
	size_t n;
	struct drain_vm *vms;
};

/* A peer as a target (placement's judgement of it). */
struct drain_cand {
	char name[64];
	int eligible;
	char reason[256];
	int64_t free_mib, load;
};

/* ---- pure decisions ------------------------------------------------------ */

const char *drain_vm_state_name(enum drain_vm_state s);
const char *drain_state_name(enum drain_state s);
/* The migrations the drain may start now: this node's free outbound
 * slots, capped by the cluster's (cluster_limit less every outbound
 * migration, here_out of this node's and peers_out of the peers').
 * Never negative. */
int drain_slots(int outbound_limit, int cluster_limit, int here_out, int peers_out);
/* The index of the Pending VM to start next (queue order), or -1: none
 * left, or the drain is interrupted. */
int drain_next(const struct drain_run *r);
/* The 1-based place of VM i in the queue of Pending ones; 0 if it is not
 * Pending or the drain is interrupted (nothing queued starts). */
int drain_place(const struct drain_run *r, size_t i);
/* The target for v among c: eligible, not a node v failed on, the most
 * free memory, then the least load. Its index, or -1 with the reasons of
 * every node in why ("no eligible node: node-b: cordoned; ..."). */
int drain_pick(const struct drain_vm *v, const struct drain_cand *c, size_t n, char *why, size_t len);
/* The memory the drain's Migrating VMs will take on each node of c,
 * taken off its free_mib: a target's free memory only drops once its QEMU
 * has filled, and two VMs started together would both see it free. */
void drain_reserve(const struct drain_run *r, struct drain_cand *c, size_t n);
/* v's migration to v->target failed with reason: Pending again for
 * another node while attempts remain (and not timed out), else Failed. */
void drain_failed(struct drain_vm *v, int max_attempts, const char *reason);
/* The drain's state once no VM is Pending or Migrating (else Running). */
enum drain_state drain_outcome(const struct drain_run *r);

/* ---- the module (drain.c) ------------------------------------------------ */

/* Reads the cordon from the state dir; agent_init calls it. 0 or -errno. */
int drain_init(struct agent *a);
/* Interrupts a running drain and joins its thread (before agent_shutdown
 * cancels migrations); frees everything. */
void drain_shutdown(struct agent *a);
/* Nonzero when this node is cordoned. */
int drain_cordoned(struct agent *a);
/* "cordoned" and "drain" (the summary, or null) into the node's JSON. */
void drain_node_fields(struct agent *a, struct json_object *o);

#endif
