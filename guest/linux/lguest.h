/*
 * lguest.h - the workload of ferry's Linux test guest (docs/guest.md,
 * "The Linux guest"): a static program that runs as PID 1 of a small
 * Debian-kernel initramfs, fills and dirties RAM with two threads, writes
 * a data disk with a third, keeps a checksum of every page and block it
 * wrote, and answers `verify` on the serial console.
 *
 * The pieces: content.c (what a page or block holds, its checksum, the
 * pacer), mem.c (the RAM workload), disk.c (the disk workload), tty.c
 * (the serial console) and main.c (options, threads, heartbeat, commands).
 */
#ifndef FERRY_LGUEST_H
#define FERRY_LGUEST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define LG_PAGE 4096u            /* unit of the RAM workload */
#define LG_BLOCK 4096u           /* unit of the disk workload */
#define LG_WORDS (LG_PAGE / 8)

/* ---- content.c ---------------------------------------------------------- */

/*
 * A page or block holds a 16-byte stamp (magic, index, generation, a hash
 * of the three) and then pseudo-random words seeded by index and
 * generation; *csum gets a checksum of all of it. The writer keeps that
 * checksum; verify checksums what it reads back and compares.
 */
#define LG_MAGIC_PAGE 0x584c5246u  /* "FRLX" */
#define LG_MAGIC_BLOCK 0x444c5246u /* "FRLD" */

uint32_t content_fill(uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen);
uint32_t content_csum(const uint64_t *w);
/* Rewrites only the first CONTENT_TOUCH_WORDS words (stamp included) for
 * generation gen, the rest left as it was; returns the new checksum,
 * updated from csum, the unit's checksum before. */
#define CONTENT_TOUCH_WORDS 8
uint32_t content_touch(uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen, uint32_t csum);
/* Why a unit whose checksum differs is bad: "magic", "index", "gen" (an
 * older or newer generation: a lost or replayed write) or "csum" (the
 * stamp is right, the body is not). */
const char *content_why(const uint64_t *w, uint32_t magic, uint64_t index, uint32_t gen);
uint64_t mix64(uint64_t x);

/*
 * Rate pacing from CLOCK_MONOTONIC: units of work due since the last call,
 * the remainder kept in bytes x ns so slow rates do not drift. A gap over
 * PACER_MAX_GAP_NS (a verify, the pause of a migration, a starved vCPU)
 * counts as only that long: the guest goes on at its rate, no burst.
 */
#define PACER_MAX_GAP_NS 100000000ull

struct pacer {
	uint64_t rate;    /* bytes per second; 0 = off */
	uint32_t unit;    /* bytes per unit of work */
	uint64_t last;    /* ns at the previous pacer_take() */
	uint64_t credit;  /* owed work in bytes x ns */
};

void pacer_set(struct pacer *p, uint64_t rate, uint32_t unit, uint64_t now);
uint64_t pacer_take(struct pacer *p, uint64_t now);
uint64_t now_ns(void);

/* ---- mem.c -------------------------------------------------------------- */

struct mem_slot {
	uint32_t gen;
	uint32_t csum;
};

struct mem_part {                /* one writer thread's share of the pages */
	uint64_t first, end;     /* pages [first, end) of the working set */
	uint64_t cursor;         /* next page to dirty */
	struct pacer pacer;
};

#define MEM_WRITERS 2

struct mem {
	uint8_t *base;
	uint64_t pages;          /* filled */
	uint64_t wss_pages;      /* dirtied: the first wss_pages */
	struct mem_slot *tab;
	struct mem_part part[MEM_WRITERS];
	uint64_t dirtied;        /* pages dirtied since boot (atomic) */
};

int mem_setup(struct mem *m, uint64_t pages, uint64_t wss_pages);
void mem_set_rate(struct mem *m, uint64_t bytes_per_s, uint64_t now);
/* Dirty the pages due for writer k; returns how many. */
uint64_t mem_dirty(struct mem *m, int k, uint64_t now);
uint64_t mem_verify(struct mem *m, uint64_t *first, const char **why);
int mem_corrupt(struct mem *m, uint64_t page);

/* ---- disk.c ------------------------------------------------------------- */

struct disk_slot {
	uint32_t gen;            /* 0: never written */
	uint32_t csum;
};

struct disk {
	int fd;                  /* -1: no data disk */
	char name[32];           /* vdb, sda, ... */
	const char *bus;         /* virtio, scsi, ata */
	uint64_t size;           /* bytes */
	uint64_t off;            /* working set start, bytes */
	uint64_t blocks;         /* working set, blocks */
	struct disk_slot *tab;
	uint64_t *buf;           /* LG_BLOCK-aligned, DISK_RUN_MAX blocks */
	uint64_t seq;            /* picks the next run's place */
	uint64_t due;            /* blocks due, not yet written */
	uint64_t written;        /* blocks written since boot */
	uint64_t unsynced;       /* blocks written since the last flush */
	uint64_t last_sync;
	int failed;              /* a write failed: the workload stopped */
	int used;                /* the workload has run */
	struct pacer pacer;
};

#define DISK_RUN_MAX 32u         /* blocks per write: 4..128 KiB */
#define DISK_SKIP (1u << 20)     /* the first MiB is never written */

/* Find the data disk (name, or the first whole disk without partitions)
 * and open it; 0 with d->fd == -1 when there is none. */
int disk_open(struct disk *d, const char *want);
int disk_setup(struct disk *d, uint64_t ws_bytes);
void disk_set_rate(struct disk *d, uint64_t bytes_per_s, uint64_t now);
/* Write what is due, at most until deadline (ns); returns blocks written,
 * or -errno after printing the failure (the workload stops). */
int64_t disk_write(struct disk *d, uint64_t now, uint64_t deadline);
uint64_t disk_verify(struct disk *d, uint64_t *first_lba, const char **why, uint64_t *sectors);
int disk_corrupt(struct disk *d, int64_t lba, uint64_t *done_lba);

/* ---- tty.c -------------------------------------------------------------- */

int tty_open(const char *path);
/* One line to the console, in a single write, from any thread. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bytes arrived: returns a complete command line (NUL-terminated) or NULL. */
char *tty_line(int fd, int *eof);

#endif
