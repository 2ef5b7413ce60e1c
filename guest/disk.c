/*
 * disk.c - see disk.h.
 */
#include <stddef.h>

#include "arch.h"
#include "disk.h"
#include "lib.h"
#include "serial.h"
#include "timer.h"

#define SECTORS_PER_MIB (1048576u / SECTOR_SIZE)
#define BUF_SECTORS 128u         /* per ATA command: 64 KiB */
#define RUN_ALIGN 8u             /* runs start on 4 KiB boundaries */
#define RUN_MAX 256u             /* and are 8..256 sectors (4..128 KiB) */
#define FLUSH_MS 1000

static uint32_t *gens;           /* generation per working-set sector */
static uint32_t ws_sectors;
static uint32_t first_lba;       /* LBA of working-set sector 0 */
static uint32_t mix[PROFILE_COUNT];
static int failed;
/*
 * The current run, and a counter whose hash picks the next one: all in
 * RAM, so the pattern carries on across a migration.
 */
static uint32_t run_pos, run_left, runs;
static uint64_t written;
static uint64_t last_flush;
static int unflushed;
static uint8_t buf[BUF_SECTORS * SECTOR_SIZE] __attribute__((aligned(16)));
static uint8_t scratch[SECTOR_SIZE] __attribute__((aligned(16)));

uintptr_t disk_setup(uintptr_t base, uintptr_t limit, struct disk_config *cfg,
		     struct ata_info *info)
{
	uint64_t disk_mib, max_mib;
	uint32_t bytes;

	ws_sectors = 0;
	if (ata_probe(cfg->io32, info))
		return limit;
	cfg->io32 = info->io32;
	/* Stamps hold 32-bit LBAs: use the first 2 TiB at most. */
	disk_mib = info->sectors / SECTORS_PER_MIB;
	if (disk_mib > 0x200000)
		disk_mib = 0x200000;
	if (cfg->off_mib >= disk_mib)
		cfg->ws_mib = 0;
	else if (cfg->ws_mib > disk_mib - cfg->off_mib)
		cfg->ws_mib = (uint32_t)(disk_mib - cfg->off_mib);
	/* 4 bytes of table per sector: 8 KiB per MiB of working set. */
	max_mib = limit > base ? (limit - base) / 2 / (SECTORS_PER_MIB * 4) : 0;
	if (cfg->ws_mib > max_mib)
		cfg->ws_mib = (uint32_t)max_mib;
	ws_sectors = cfg->ws_mib * SECTORS_PER_MIB;
	first_lba = cfg->off_mib * SECTORS_PER_MIB;
	memcpy(mix, cfg->mix, sizeof(mix));
	if (!ws_sectors)
		return limit;

	/*
	 * At the top of free RAM, not after the kernel: the RAM workload's
	 * pages stay where they are with or without a disk.
	 */
	bytes = ws_sectors * 4;
	limit = (limit - bytes) & ~(uintptr_t)(PAGE_SIZE - 1);
	gens = (uint32_t *)limit;
	memset(gens, 0, bytes);
	last_flush = rdtsc();
	return limit;
}

int disk_ready(void)
{
	return ws_sectors && !failed;
}

static void next_run(void)
{
	uint32_t r = content_mix32(++runs ^ 0x4449534BU);

	run_pos = r % (ws_sectors / RUN_ALIGN) * RUN_ALIGN;
	run_left = RUN_ALIGN * (1 + content_mix32(r) % (RUN_MAX / RUN_ALIGN));
	if (run_left > ws_sectors - run_pos)
		run_left = ws_sectors - run_pos;
}

static void report_error(const char *what, uint32_t lba, int err)
{
	uint32_t st, er;

	ata_last_error(&st, &er);
	kprintf("FERRY-GUEST WARN disk %s error lba=%u err=%u status=0x%x"
		" error=0x%x: disk workload stopped\n", what, lba,
		(uint32_t)-err, st, er);
	failed = 1;
}

uint32_t disk_write(uint32_t n, uint64_t deadline)
{
	uint32_t done = 0;
	int r;

	if (!disk_ready())
		return n;
	while (done < n && (!done || rdtsc() < deadline)) {
		uint32_t c = n - done < BUF_SECTORS ? n - done : BUF_SECTORS;
		uint32_t lba;


		if (!run_left)
			next_run();
		if (c > run_left)
			c = run_left;
		lba = first_lba + run_pos;
		/*
		 * The table changes before the disk does; neither a
		 * migration (the VM stops between instructions, QEMU drains
		 * the write and carries the PIO state over) nor verify (it
		 * runs between bursts) can see the two apart.
		 */
		for (uint32_t k = 0; k < c; k++) {
			uint32_t g = gens[run_pos + k] + 1;

			if (!g)   /* 0 means "never written"; skip it on wrap */
				g = 1;
			gens[run_pos + k] = g;
			content_sector(buf + k * SECTOR_SIZE, lba + k, g,
				       content_profile(lba + k, mix));
		}
		r = ata_write(lba, c, buf);
		if (r) {
			report_error("write", lba, r);
			return n;
		}
		written += c;
		run_pos += c;
		run_left -= c;
		done += c;
		unflushed = 1;
	}
	if (unflushed && rdtsc() - last_flush >= tsc_hz * FLUSH_MS / 1000) {
		r = ata_flush();
		if (r) {
			report_error("flush", 0, r);
			return n;
		}
		last_flush = rdtsc();
		unflushed = 0;
	}
	return done;
}

uint64_t disk_written(void)
{
	return written;
}

/* NULL if sec holds sector lba at generation gen, else why not. */
static const char *check_sector(const uint8_t *sec, uint32_t lba, uint32_t gen)
{
	const uint32_t *x = (const uint32_t *)sec, *y = (const uint32_t *)scratch;
	const char *why = content_check_sector_stamp(sec, lba, gen);

	if (why)
		return why;
	content_sector(scratch, lba, gen, content_profile(lba, mix));
	for (uint32_t i = STAMP_SIZE / 4; i < SECTOR_SIZE / 4; i++)
		if (x[i] != y[i])
			return "body";
	return NULL;
}

uint32_t disk_verify(uint32_t *first, const char **reason, uint32_t *checked)
{
	uint32_t bad = 0, i = 0;

	*checked = 0;
	while (i < ws_sectors) {
		uint32_t c = 0;
		int r;

		/* One read per run of written sectors, up to BUF_SECTORS. */
		while (i + c < ws_sectors && c < BUF_SECTORS && gens[i + c])
			c++;
		if (!c) {
			i++;
			continue;
		}
		r = ata_read(first_lba + i, c, buf);
		for (uint32_t k = 0; k < c; k++) {
			const char *why = r ? "io" :
				check_sector(buf + k * SECTOR_SIZE,
					     first_lba + i + k, gens[i + k]);

			if (why && !bad++) {
				*first = first_lba + i + k;
				*reason = why;
			}
		}
		*checked += c;
		i += c;
	}
	return bad;
}

int64_t disk_corrupt(uint32_t lba)
{
	uint32_t i;
	int r;

	if (lba == UINT32_MAX) {
		for (i = 0; i < ws_sectors && !gens[i]; i++)
			;
	} else {
		i = lba - first_lba;      /* wraps to a huge value below */
	}
	if (!ws_sectors || i >= ws_sectors || !gens[i])
		return -EINVAL;
	lba = first_lba + i;
	content_sector(buf, lba, gens[i], content_profile(lba, mix));
	buf[SECTOR_SIZE / 2] ^= 0x5A;
	r = ata_write(lba, 1, buf);
	return r ? r : (int64_t)lba;
}
