/* mig_state: the states of one migration, per role, and the transitions
 * between them as one checked table.
 *
 * Every state says which public phase (KubeVirt's) and mode it shows, where
 * the guest is from this side's point of view, and whether a cancel is still
 * taken. A migration moves only along an edge of the table (mig_enter in
 * migration.c checks it, logs it once as event=state, persists the record
 * when the public phase changes). The table is data, so the rule "a VM never
 * runs on two hosts and never on none" is checked on it by a unit test
 * (tests/unit/test_mig_state.c): no edge resumes the guest on the source once
 * the target may run it, except on the target's own word that it does not.
 *
 * Source:
 *
 *   PENDING <-> PREPARING -> TARGET_READY -> MIRRORING -> PRECOPY
 *                                   \______________________^   |  \
 *                                                              |   POSTCOPY <-> POSTCOPY_RECOVERING
 *                                                              v      |               |
 *                                                         SWITCHOVER  |               |
 *                                                              |      v               v
 *                                                         CONFIRMING <-----------  HELD
 *                                                          |   |   \
 *                                                 SUCCEEDED  ROLLING_BACK -> FAILED
 *   (any state before SWITCHOVER) -> ROLLING_BACK -> FAILED
 *
 * Target:
 *
 *   PREPARING -> INCOMING -> LOADED -> SUCCEEDED
 *                   |   \       \
 *                   |    POSTCOPY <-> AWAITING_RESUME -> HELD
 *                   v        |
 *                 FAILED  <--+ (before the guest ran here)
 */
#ifndef FERRY_ENGINE_MIG_STATE_H
#define FERRY_ENGINE_MIG_STATE_H

#include "engine/migration.h"

enum mig_role { MIG_ROLE_SOURCE, MIG_ROLE_TARGET };

enum mig_state {
	/* source */
	MS_SRC_PENDING,             /* waiting for a slot here or at the target */
	MS_SRC_PREPARING,           /* the target prepares its QEMU */
	MS_SRC_TARGET_READY,        /* the target listens; QEMU set up here */
	MS_SRC_MIRRORING,           /* local disks copy; RAM has not started */
	MS_SRC_PRECOPY,             /* `migrate` issued: RAM pre-copy */
	MS_SRC_POSTCOPY,            /* migrate-start-postcopy issued: the guest runs there */
	MS_SRC_POSTCOPY_RECOVERING, /* post-copy's link broke: resuming it */
	MS_SRC_SWITCHOVER,          /* QEMU stopped the guest for the last copy */
	MS_SRC_CONFIRMING,          /* QEMU completed: waiting for the target's word */
	MS_SRC_ROLLING_BACK,        /* failed before the switchover: undoing, the guest resumes here */
	MS_SRC_SUCCEEDED,           /* the guest runs on the target; ours is gone */
	MS_SRC_FAILED,              /* the guest runs here */
	MS_SRC_HELD,                /* the guest is kept paused here: its true home is unknown or split */
	/* target */
	MS_TGT_PREPARING,       /* images and QEMU -incoming */
	MS_TGT_INCOMING,        /* channels arrive, QEMU loads */
	MS_TGT_POSTCOPY,        /* the guest runs here and fetches missing pages */
	MS_TGT_AWAITING_RESUME, /* post-copy's link broke: waiting for the source */
	MS_TGT_LOADED,          /* QEMU completed: waiting for the source to let go */
	MS_TGT_SUCCEEDED,       /* the guest runs here, handed to the agent */
	MS_TGT_FAILED,          /* nothing of the guest stays here */
	MS_TGT_HELD,            /* post-copy broke for good: our part is kept, paused */
	MS_COUNT
};

/* Where the guest is, seen from the side in that state. */
enum mig_guest {
	GUEST_HERE,    /* runs (or may run) on this side only */
	GUEST_THERE,   /* runs on the other side only */
	GUEST_STOPPED, /* stopped here; the other side may be starting it */
	GUEST_SPLIT,   /* post-copy: running on the target, pages on both */
	GUEST_NONE_HERE, /* target before it has any of it, or after giving it up */
};

struct mig_state_info {
	const char *name;      /* for logs: "precopy" */
	enum mig_role role;
	enum mig_phase phase;  /* the public phase it shows (unless keep_phase) */
	const char *mode;      /* the status mode it sets, NULL keeps the last */
	enum mig_guest guest;
	unsigned cancellable : 1; /* mig_cancel is taken */
	unsigned terminal : 1;
	unsigned keep_phase : 1;  /* shows the phase it came from (a short undo) */
};

const struct mig_state_info *mstate_info(enum mig_state s);
const char *mstate_name(enum mig_state s);

/* 1 when the table has the edge from -> to. */
int mstate_edge(enum mig_state from, enum mig_state to);
/* 1 when the edge may resume the guest on the source after it was
 * stopped there: only on the target's explicit word that it does not
 * run the guest. */
int mstate_edge_needs_target_nack(enum mig_state from, enum mig_state to);

/* The states a role starts in. */
#define MS_SRC_FIRST MS_SRC_PENDING
#define MS_TGT_FIRST MS_TGT_PREPARING

#endif
