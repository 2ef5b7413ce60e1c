/*
 * disk.h - the disk workload: write stamped sectors over a working set of
 * the first ATA disk, rewrite them in random runs, verify all of them.
 *
 * The generation of every sector of the working set is kept in a table in
 * guest RAM, so it migrates with the guest: after a live migration that
 * moved RAM and disk, verify on the target reads each written sector back
 * and checks it against the table. A disk write the migration lost shows
 * up as a stale sector (its stamp and body carry an older generation).
 */
#ifndef FERRY_GUEST_DISK_H
#define FERRY_GUEST_DISK_H

#include <stdint.h>

#include "ata.h"
#include "content.h"

struct disk_config {
	uint32_t ws_mib;     /* working set, from off_mib on; clamped to disk */
	uint32_t off_mib;    /* where the working set starts on the disk */
	uint32_t io32;       /* 0: 16-bit PIO instead of 32-bit */
	uint32_t mix[PROFILE_COUNT];
};

/*
 * Probe for the disk (ata_probe) and, if there is one, clamp the working
 * set to the disk and to half the free RAM [base, limit), and place the
 * generation table at the top of that RAM. Returns the new top of free
 * RAM (limit itself when there is no disk). *info describes the disk.
 */
uintptr_t disk_setup(uintptr_t base, uintptr_t limit, struct disk_config *cfg,
		     struct ata_info *info);

/* Is there a disk with a working set (ws_mib > 0) to write? */
int disk_ready(void);

/*
 * Write the next n sectors of the workload (runs of 8..256 sectors at
 * random 4 KiB-aligned places in the working set, so sectors get
 * rewritten), and FLUSH CACHE if a second has passed since the last flush
 * and anything was written. Stops early once the TSC passes deadline.
 * Returns the sectors done with: written, or dropped because there is no
 * workload (an I/O error prints a warning and stops it for good).
 */
uint32_t disk_write(uint32_t n, uint64_t deadline);

/* Sectors written since boot (a sector written twice counts twice). */
uint64_t disk_written(void);

/*
 * Read back every sector ever written (generation != 0) and check stamp
 * and body. Returns the number of bad sectors; *first (an LBA) and
 * *reason describe the first, *checked counts the sectors read.
 */
uint32_t disk_verify(uint32_t *first, const char **reason, uint32_t *checked);

/*
 * Test hook: rewrite sector lba (or, for lba = UINT32_MAX, the first
 * written one) with one body byte flipped, behind the table's back, so
 * that a test can watch verify catch it. Returns the LBA, or -EINVAL if
 * the sector was never written, or an ata_write() error.
 */
int64_t disk_corrupt(uint32_t lba);

#endif
