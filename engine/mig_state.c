/* mig_state: see mig_state.h. Pure data and lookups; no I/O. */
#include "engine/mig_state.h"

#include <stddef.h>

#define S MIG_ROLE_SOURCE
#define T MIG_ROLE_TARGET

static const struct mig_state_info states[MS_COUNT] = {
	/*                          name                   role phase                 mode                    guest          cancel term keep_phase */
	[MS_SRC_PENDING]             = {"pending",             S, MIG_PENDING,          NULL,                   GUEST_HERE,    1, 0, 0},
	[MS_SRC_PREPARING]           = {"preparing",           S, MIG_PREPARING_TARGET, NULL,                   GUEST_HERE,    1, 0, 0},
	[MS_SRC_TARGET_READY]        = {"target_ready",        S, MIG_TARGET_READY,     NULL,                   GUEST_HERE,    1, 0, 0},
	[MS_SRC_MIRRORING]           = {"mirroring",           S, MIG_RUNNING,          "storage",              GUEST_HERE,    1, 0, 0},
	[MS_SRC_PRECOPY]             = {"precopy",             S, MIG_RUNNING,          "pre-copy",             GUEST_HERE,    1, 0, 0},
	[MS_SRC_POSTCOPY]            = {"postcopy",            S, MIG_RUNNING,          "post-copy",            GUEST_SPLIT,   0, 0, 0},
	[MS_SRC_POSTCOPY_RECOVERING] = {"postcopy_recovering", S, MIG_RUNNING,          "post-copy-recovering", GUEST_SPLIT,   0, 0, 0},
	[MS_SRC_SWITCHOVER]          = {"switchover",          S, MIG_RUNNING,          NULL,                   GUEST_STOPPED, 0, 0, 0},
	[MS_SRC_CONFIRMING]          = {"confirming",          S, MIG_RUNNING,          NULL,                   GUEST_STOPPED, 0, 0, 0},
	[MS_SRC_ROLLING_BACK]        = {"rolling_back",        S, MIG_RUNNING,          NULL,                   GUEST_HERE,    1, 0, 1},
	[MS_SRC_SUCCEEDED]           = {"succeeded",           S, MIG_SUCCEEDED,        NULL,                   GUEST_THERE,   0, 1, 0},
	[MS_SRC_FAILED]              = {"failed",              S, MIG_FAILED,           NULL,                   GUEST_HERE,    0, 1, 0},
	[MS_SRC_HELD]                = {"held",                S, MIG_FAILED,           NULL,                   GUEST_STOPPED, 0, 1, 0},
	[MS_TGT_PREPARING]           = {"preparing",           T, MIG_PREPARING_TARGET, NULL,                   GUEST_NONE_HERE, 1, 0, 0},
	[MS_TGT_INCOMING]            = {"incoming",            T, MIG_TARGET_READY,     NULL,                   GUEST_NONE_HERE, 1, 0, 0},
	[MS_TGT_POSTCOPY]            = {"postcopy",            T, MIG_TARGET_READY,     "post-copy",            GUEST_SPLIT,   0, 0, 0},
	[MS_TGT_AWAITING_RESUME]     = {"awaiting_resume",     T, MIG_TARGET_READY,     "post-copy-recovering", GUEST_SPLIT,   0, 0, 0},
	[MS_TGT_LOADED]              = {"loaded",              T, MIG_TARGET_READY,     NULL,                   GUEST_STOPPED, 0, 0, 0},
	[MS_TGT_SUCCEEDED]           = {"succeeded",           T, MIG_SUCCEEDED,        NULL,                   GUEST_HERE,    0, 1, 0},
	[MS_TGT_FAILED]              = {"failed",              T, MIG_FAILED,           NULL,                   GUEST_NONE_HERE, 0, 1, 0},
	[MS_TGT_HELD]                = {"held",                T, MIG_FAILED,           NULL,                   GUEST_SPLIT,   0, 1, 0},
};

/* Every edge, with why it is taken. peer_word: taken only on the other
 * side's explicit word (source: the target says it does not run the
 * guest; target: the source aborted, or never confirmed while the guest
 * had not run here). */
static const struct edge {
	enum mig_state from, to;
	unsigned peer_word : 1;
	const char *why;
} edges[] = {
	{MS_SRC_PENDING, MS_SRC_PREPARING, 0, "a slot here; ask the target"},
	{MS_SRC_PREPARING, MS_SRC_PENDING, 0, "the target is at its inbound limit"},
	{MS_SRC_PREPARING, MS_SRC_TARGET_READY, 0, "the target prepared"},
	{MS_SRC_TARGET_READY, MS_SRC_MIRRORING, 0, "local disks: mirrors first"},
	{MS_SRC_TARGET_READY, MS_SRC_PRECOPY, 0, "no local disks: RAM at once"},
	{MS_SRC_MIRRORING, MS_SRC_PRECOPY, 0, "every mirror in sync"},
	{MS_SRC_PRECOPY, MS_SRC_POSTCOPY, 0, "the post-copy escalation"},
	{MS_SRC_PRECOPY, MS_SRC_SWITCHOVER, 0, "QEMU stopped the guest (STOP)"},
	{MS_SRC_PRECOPY, MS_SRC_CONFIRMING, 0, "QEMU completed before its STOP was seen"},
	{MS_SRC_POSTCOPY, MS_SRC_POSTCOPY_RECOVERING, 0, "post-copy's link broke"},
	{MS_SRC_POSTCOPY_RECOVERING, MS_SRC_POSTCOPY, 0, "post-copy resumed"},
	{MS_SRC_POSTCOPY, MS_SRC_CONFIRMING, 0, "QEMU completed"},
	{MS_SRC_POSTCOPY_RECOVERING, MS_SRC_CONFIRMING, 0, "QEMU completed"},
	{MS_SRC_POSTCOPY, MS_SRC_HELD, 0, "post-copy failed: each side holds part of the guest"},
	{MS_SRC_POSTCOPY_RECOVERING, MS_SRC_HELD, 0, "recovery failed: each side holds part of the guest"},
	{MS_SRC_SWITCHOVER, MS_SRC_CONFIRMING, 0, "QEMU completed"},
	{MS_SRC_SWITCHOVER, MS_SRC_ROLLING_BACK, 0, "QEMU failed before it completed: the target cannot run the guest"},
	{MS_SRC_CONFIRMING, MS_SRC_SUCCEEDED, 0, "the target runs the guest"},
	{MS_SRC_CONFIRMING, MS_SRC_ROLLING_BACK, 1, "the target says it could not run the guest"},
	{MS_SRC_CONFIRMING, MS_SRC_HELD, 0, "no word from the target: the guest stays paused here"},
	{MS_SRC_PENDING, MS_SRC_ROLLING_BACK, 0, "failed or cancelled"},
	{MS_SRC_PREPARING, MS_SRC_ROLLING_BACK, 0, "failed or cancelled"},
	{MS_SRC_TARGET_READY, MS_SRC_ROLLING_BACK, 0, "failed or cancelled"},
	{MS_SRC_MIRRORING, MS_SRC_ROLLING_BACK, 0, "failed or cancelled"},
	{MS_SRC_PRECOPY, MS_SRC_ROLLING_BACK, 0, "failed or cancelled"},
	{MS_SRC_ROLLING_BACK, MS_SRC_FAILED, 0, "undone: the guest runs here"},
	{MS_TGT_PREPARING, MS_TGT_INCOMING, 0, "QEMU listens"},
	{MS_TGT_PREPARING, MS_TGT_FAILED, 0, "could not prepare"},
	{MS_TGT_INCOMING, MS_TGT_LOADED, 0, "QEMU completed"},
	{MS_TGT_INCOMING, MS_TGT_POSTCOPY, 0, "the guest runs here before all its pages came"},
	{MS_TGT_INCOMING, MS_TGT_FAILED, 0, "failed or cancelled before the guest ran here"},
	{MS_TGT_POSTCOPY, MS_TGT_LOADED, 0, "QEMU completed"},
	{MS_TGT_POSTCOPY, MS_TGT_AWAITING_RESUME, 0, "post-copy's link broke"},
	{MS_TGT_AWAITING_RESUME, MS_TGT_POSTCOPY, 0, "the source resumed"},
	{MS_TGT_AWAITING_RESUME, MS_TGT_HELD, 0, "the source did not resume"},
	{MS_TGT_POSTCOPY, MS_TGT_HELD, 0, "recovery impossible"},
	{MS_TGT_LOADED, MS_TGT_SUCCEEDED, 0, "the source let go, or the guest runs here"},
	{MS_TGT_LOADED, MS_TGT_FAILED, 1, "the source aborted, or never confirmed and the guest never ran here"},
};

const struct mig_state_info *mstate_info(enum mig_state s)
{
	return (unsigned)s < MS_COUNT ? &states[s] : NULL;
}

const char *mstate_name(enum mig_state s)
{
	return (unsigned)s < MS_COUNT ? states[s].name : "unknown";
}

static const struct edge *find(enum mig_state from, enum mig_state to)
{
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		if (edges[i].from == from && edges[i].to == to)
			return &edges[i];
	return NULL;
}

int mstate_edge(enum mig_state from, enum mig_state to)
{
	return find(from, to) != NULL;
}

int mstate_edge_needs_target_nack(enum mig_state from, enum mig_state to)
{
	const struct edge *e = find(from, to);

	return e && e->peer_word;
}
