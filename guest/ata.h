/*
 * ata.h - one ATA disk on the legacy IDE ports, by PIO.
 *
 * The guest runs on machine pc, whose PIIX IDE controller answers on the
 * ISA ports of old: primary channel 0x1F0-0x1F7 (control 0x3F6), secondary
 * 0x170-0x177 (control 0x376), a master and a slave on each. ferry puts a
 * VM's disks there in order (ide.0 unit 0, ide.0 unit 1, ide.1 unit 0, ...,
 * engine/vmspec.c), and plain QEMU adds an empty CD-ROM as secondary
 * master. The probe takes the first ATA (not ATAPI) device in that order.
 *
 * Each wait for the disk (a DRQ block, the end of a command) halts until
 * the channel's IRQ (14 or 15) ends it, with a TSC deadline; polling the
 * status register instead costs QEMU far more host CPU (see ata.c). The
 * halt runs with interrupts on, so it also consumes timer and serial
 * IRQs: a caller must not rely on those staying pending. Commands use LBA48
 * when the disk offers it and READ/WRITE MULTIPLE (one DRQ block of
 * several sectors, so one block-layer request in QEMU per block instead of
 * per sector) when it can; the data port is read and written 32 bits at a
 * time when the disk says it can (QEMU does), half the device accesses of
 * 16-bit transfers.
 */
#ifndef FERRY_GUEST_ATA_H
#define FERRY_GUEST_ATA_H

#include <stdint.h>

/* Sectors per ata_read()/ata_write() call at most (LBA28's limit). */
#define ATA_MAX_COUNT 256u

struct ata_info {
	uint32_t channel;    /* 0 primary, 1 secondary: QEMU's ide.0, ide.1 */
	uint32_t unit;       /* 0 master, 1 slave */
	uint64_t sectors;    /* capacity in 512-byte sectors */
	uint32_t lba48;      /* 1: LBA48 commands, else LBA28 */
	uint32_t mult;       /* sectors per DRQ block; 1 = READ/WRITE SECTORS */
	uint32_t io32;       /* 1: 32-bit data port accesses */
};

/*
 * Find the first ATA disk, set it up (multiple mode) and describe it in
 * *info. io32 = 0 forces 16-bit data transfers. -ENODEV if there is none.
 */
int ata_probe(int io32, struct ata_info *info);

/*
 * Read or write count (1..ATA_MAX_COUNT) sectors at lba from or to buf.
 * 0, -EIO (the disk reported an error) or -ETIMEDOUT (no answer in 30 s).
 */
int ata_read(uint64_t lba, uint32_t count, void *buf);
int ata_write(uint64_t lba, uint32_t count, const void *buf);

/* FLUSH CACHE: the disk's write cache reaches the medium (QEMU: fsync). */
int ata_flush(void);

/* Status and error registers as the last failed command left them. */
void ata_last_error(uint32_t *status, uint32_t *error);

#endif
