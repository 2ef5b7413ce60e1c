/* Storage migration: the disks that are local to the source host travel with
 * the VM (the sequence libvirt uses).
 *
 * Target: an empty image of the same format and virtual size under the
 * agent's state dir for every local disk, QEMU started on those images with
 * -incoming defer, and an NBD server on a unix socket exporting them
 * (writable). Source: an NBD client node per disk pointing at the source
 * agent's NBD socket, and a blockdev-mirror job from the disk into it. The
 * agents carry each NBD connection as one more relay stream, so mirror
 * traffic is compressed and checked like RAM.
 *
 * Switchover: every job READY before RAM pre-copy starts; at QEMU's
 * pre-switchover pause each job is cancelled gracefully (which for a READY
 * mirror means "finish: the target is a consistent copy") and its NBD node
 * removed; then the migration continues. On any failure the jobs are
 * force-cancelled, the NBD nodes removed and the target's images deleted:
 * the source disk is only ever read.
 *
 * Shared disks are not copied; the target must see the same path. */
#ifndef FERRY_ENGINE_STORAGE_H
#define FERRY_ENGINE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct qmp;
struct qmp_event;
struct vm_spec;

struct stor; /* opaque: the disks of one migration, one end */

/* Progress of the mirror jobs together (source). */
struct stor_progress {
	uint64_t total;     /* bytes the jobs must copy so far (QEMU's len, grows as the guest writes) */
	uint64_t copied;    /* bytes copied (QEMU's offset) */
	uint64_t remaining; /* total - copied */
	int ready;          /* every job READY */
	int write_blocking; /* every job was switched to copy guest writes synchronously */
	int actively_synced; /* ... and every job says it does (QEMU 8.2+) */
};

/* The disks of spec that must be copied: type disk, storage local. *out is
 * NULL-free even when there are none (stor_count() == 0). */
int stor_plan(const struct vm_spec *spec, struct stor **out);
size_t stor_count(const struct stor *st);
void stor_free(struct stor *st);
/* Sum of the virtual sizes of the copied disks (known once sized). */
uint64_t stor_bytes(const struct stor *st);

/* ---- source ---------------------------------------------------------- */

/* Learns each copied disk's virtual size from QEMU. */
int stor_source_size(struct stor *st, struct qmp *q, char *err, size_t errlen);
/* [{"name","format","size"}] for the prepare message. */
struct json_object *stor_to_json(const struct stor *st);
/* A failed earlier attempt may have left ferry's mirror jobs or NBD nodes
 * in the source QEMU (an agent killed mid-mirror): remove them so this
 * attempt can start. Returns how many were found, or -errno. */
int stor_source_clear_leftovers(struct qmp *q, char *err, size_t errlen);
/* NBD client nodes to nbd_sock and one mirror job per disk. speed_bps 0 =
 * unlimited. write_blocking: copy mode from the start. has_job_change:
 * QEMU can change a running job's copy mode (QCAP_BLOCK_JOB_CHANGE). */
int stor_source_start(struct stor *st, struct qmp *q, const char *nbd_sock, uint64_t speed_bps,
		      int write_blocking, int has_job_change, char *err, size_t errlen);
/* Reads the jobs' progress (query-block-jobs). -EIO with err when a job
 * failed or vanished. */
int stor_source_poll(struct stor *st, struct qmp *q, struct stor_progress *p, char *err,
		     size_t errlen);
/* Feeds a QMP event; 1 if it was a job event of ours (consumed), -EIO with
 * err when it says a job failed. */
int stor_source_event(struct stor *st, const struct qmp_event *ev, char *err, size_t errlen);
/* Switches every job to write-blocking: in place where QEMU has
 * block-job-change, else by restarting the jobs in that mode (which copies
 * the disks again; only before RAM pre-copy starts). */
int stor_source_write_blocking(struct stor *st, struct qmp *q, char *err, size_t errlen);
/* Can the copy mode still change? (QEMU has block-job-change, or RAM
 * pre-copy has not started: pass ram_started.) */
int stor_source_can_switch(const struct stor *st, int ram_started);
/* The graceful end at pre-switchover: cancel each READY job, wait for its
 * COMPLETED, remove the NBD nodes. */
int stor_source_complete(struct stor *st, struct qmp *q, int timeout_ms, char *err, size_t errlen);
/* Failure or cancel: force-cancel the jobs, remove the NBD nodes. Safe to
 * call at any stage. */
void stor_source_abort(struct stor *st, struct qmp *q);

/* ---- target ---------------------------------------------------------- */

/* Creates the target images for the disks the source lists (disks: the
 * prepare message's array) under state_dir/disks/<vm>/, points spec's
 * disks at them, and checks that every shared disk's path exists here.
 * Leftovers of an earlier attempt at the same paths are replaced. The
 * source's list must name each local disk of the spec exactly once. On
 * failure nothing created stays and the spec is untouched. */
int stor_target_prepare(struct vm_spec *spec, struct json_object *disks, const char *state_dir,
			struct stor **out, char *err, size_t errlen);
/* nbd-server-start on sock and a writable export per copied disk. */
int stor_target_export(struct stor *st, struct qmp *q, const char *sock, char *err, size_t errlen);
/* The migration finished here: stop exporting. */
void stor_target_unexport(struct stor *st, struct qmp *q);
/* The migration failed: delete the images stor_target_prepare created. */
void stor_target_remove_images(struct stor *st);

/* Images ferry created for a VM live in state_dir/disks/<vm>/; images the
 * user gave (anywhere else) are never deleted. This removes that directory:
 * after the VM left this node, was deleted here, or its incoming migration
 * died with the agent. Returns how many images went. */
int stor_remove_vm_images(const char *state_dir, const char *vm);

#endif
