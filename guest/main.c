/*
 * main.c - the ferry test guest: boot, parse the command line, fill RAM,
 * then pace the dirtying, print heartbeats and answer serial commands.
 *
 * The main loop runs once per timer tick (tick=Hz, default 50) or received
 * serial byte and halts in between. Each pass reads commands, asks the
 * pacer how much work is due by the TSC, does it, and halts again.
 *
 * Why 50 Hz: under TCG on these hosts every wake-up costs QEMU ~0.7 ms of
 * host CPU (timer, vCPU kick, halt), so an idle guest takes ~3.5% of a core
 * at 50 Hz but ~20% at 250 Hz and ~50% at 1000 Hz. Dirtying in 20 ms bursts
 * changes nothing QEMU measures (its dirty rate windows are seconds), and
 * commands do not wait for a tick: serial input raises IRQ4.
 *
 * The disk workload (disk.c) plugs in the same way: its own config keys
 * in options[], a pacer with 512-byte units called from run(), and its
 * check added to cmd_verify(). A disk burst is slower than a RAM one (each
 * sector goes through the IDE data port), so the heartbeat reads the TSC
 * again after both.
 */
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "cpu.h"
#include "disk.h"
#include "lib.h"
#include "multiboot.h"
#include "pages.h"
#include "serial.h"
#include "timer.h"

#define MAX_RATE_MBPS 10000      /* keeps the pacer's arithmetic in 64 bits */
#define MAX_DISK_KBPS 1000000    /* 1000 MB/s: far beyond what PIO does */
#define TOP_MARGIN (1u << 20)    /* left free below the end of RAM */
#define CMD_MAX 80
/*
 * One pass of the main loop writes the disk for this long at most, then
 * goes round again (commands, RAM, heartbeat) without halting while
 * sectors are still due. Without the limit a guest asked for more than
 * PIO can do spent whole 100 ms pacer gaps in the disk, and its RAM
 * dirtying fell to 43% of the set rate.
 */
#define DISK_SLICE_MS 10

extern char _end[];              /* linker.ld: first byte after the kernel */

static struct config {
	uint32_t fill_mib;
	uint32_t wss_mib;            /* UINT32_MAX: whole filled region */
	uint32_t dirty_mbps;
	uint32_t hb_ms;
	uint32_t tick_hz;
	uint32_t mix[PROFILE_COUNT];
	const char *profile;
	enum rewrite rewrite;        /* what dirtying a page rewrites */
	uint32_t disk_kbps;          /* disk write rate, KB/s (1000 B) */
	uint32_t disk_ws_mib;
	uint32_t disk_off_mib;
	uint32_t disk_pio;           /* 16 or 32: data port access width */
	const char *disk_profile;    /* NULL: as the RAM's */
	uint32_t disk_mix[PROFILE_COUNT];
} cfg = {
	.fill_mib = 64,
	.wss_mib = UINT32_MAX,
	.hb_ms = 1000,
	.tick_hz = 50,
	.mix = { 0, 50, 50 },
	.profile = "mix",
	.disk_ws_mib = 64,
	.disk_pio = 32,
};

static char cmdline[512];
static struct pacer ram_pacer, disk_pacer;
static uint32_t disk_due;        /* sectors due, not yet written */
static struct ata_info disk_info;
static int disk_present;         /* an ATA disk with a working set */
static int disk_used;            /* and the disk workload was ever on */
static uint32_t hb_seq;
static uint64_t boot_tsc, next_hb;

/* ---- command line ------------------------------------------------------ */

static int opt_fill(const char *v, size_t n)
{
	return parse_u32(v, n, 4096, &cfg.fill_mib);
}

static int opt_wss(const char *v, size_t n)
{
	return parse_u32(v, n, 4096, &cfg.wss_mib);
}

static int opt_dirty(const char *v, size_t n)
{
	return parse_u32(v, n, MAX_RATE_MBPS, &cfg.dirty_mbps);
}

static int opt_disk(const char *v, size_t n)
{
	uint32_t mbps;

	if (parse_u32(v, n, MAX_DISK_KBPS / 1000, &mbps))
		return -1;
	cfg.disk_kbps = mbps * 1000;
	return 0;
}

static int opt_diskkbps(const char *v, size_t n)
{
	return parse_u32(v, n, MAX_DISK_KBPS, &cfg.disk_kbps);
}

static int opt_diskws(const char *v, size_t n)
{
	uint32_t mib;

	if (parse_u32(v, n, 0x200000, &mib) || !mib)
		return -1;
	cfg.disk_ws_mib = mib;
	return 0;
}

static int opt_diskoff(const char *v, size_t n)
{
	return parse_u32(v, n, 0x1FFFFF, &cfg.disk_off_mib);
}

static int opt_diskpio(const char *v, size_t n)
{
	uint32_t w;

	if (parse_u32(v, n, 32, &w) || (w != 16 && w != 32))
		return -1;
	cfg.disk_pio = w;
	return 0;
}

static int opt_hb(const char *v, size_t n)
{
	return parse_u32(v, n, 3600000, &cfg.hb_ms);
}

static int opt_tick(const char *v, size_t n)
{
	uint32_t hz;

	/* The PIT divisor is 16 bits: 19 Hz is the slowest it can tick. */
	if (parse_u32(v, n, 1000, &hz) || hz < 20)
		return -1;
	cfg.tick_hz = hz;
	return 0;
}

static int parse_profile(const char *v, size_t n, const char **out)
{
	static const char *const names[] = { "zero", "text", "random", "mix" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_eq(v, n, names[i])) {
			*out = names[i];
			return 0;
		}
	return -1;
}

/* Z,T,R: relative shares of zero, text and random pages (or sectors). */
static int parse_mix(const char *v, size_t n, uint32_t out[PROFILE_COUNT])
{
	uint32_t m[PROFILE_COUNT];
	size_t start = 0;

	for (int k = 0; k < PROFILE_COUNT; k++) {
		size_t end = start;

		while (end < n && v[end] != ',')
			end++;
		if (parse_u32(v + start, end - start, 100, &m[k]))
			return -1;
		if ((k < PROFILE_COUNT - 1) != (end < n))
			return -1;          /* exactly three fields */
		start = end + 1;
	}
	if (!m[0] && !m[1] && !m[2])
		return -1;
	memcpy(out, m, sizeof(m));
	return 0;
}

static const char *const rewrite_names[] = {
	[REWRITE_STAMP] = "stamp",
	[REWRITE_SPARSE] = "sparse",
	[REWRITE_PAGE] = "page",
};

static int opt_rewrite(const char *v, size_t n)
{
	for (uint32_t i = 0; i < sizeof(rewrite_names) / sizeof(rewrite_names[0]); i++)
		if (str_eq(v, n, rewrite_names[i])) {
			cfg.rewrite = (enum rewrite)i;
			return 0;
		}
	return -1;
}

static int opt_profile(const char *v, size_t n)
{
	return parse_profile(v, n, &cfg.profile);
}

static int opt_mix(const char *v, size_t n)
{
	return parse_mix(v, n, cfg.mix);
}

static int opt_diskprofile(const char *v, size_t n)
{
	return parse_profile(v, n, &cfg.disk_profile);
}

static int opt_diskmix(const char *v, size_t n)
{
	return parse_mix(v, n, cfg.disk_mix);
}

static const struct option {
	const char *key;
	int (*parse)(const char *v, size_t n);
} options[] = {
	{ "fill", opt_fill },
	{ "profile", opt_profile },
	{ "mix", opt_mix },
	{ "dirty", opt_dirty },
	{ "wss", opt_wss },
	{ "rewrite", opt_rewrite },
	{ "hb", opt_hb },
	{ "tick", opt_tick },
	{ "disk", opt_disk },
	{ "diskkbps", opt_diskkbps },
	{ "diskws", opt_diskws },
	{ "diskoff", opt_diskoff },
	{ "diskpio", opt_diskpio },
	{ "diskprofile", opt_diskprofile },
	{ "diskmix", opt_diskmix },
};

static void apply_option(const char *tok, size_t n)
{
	size_t k = 0;

	while (k < n && tok[k] != '=')
		k++;
	if (k == n)
		return;             /* QEMU puts the kernel's path first */
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		if (!str_eq(tok, k, options[i].key))
			continue;
		if (options[i].parse(tok + k + 1, n - k - 1))
			kprintf("FERRY-GUEST WARN bad option %s\n", options[i].key);
		return;
	}
}

/* A named profile overrides any mix given with it. */
static void one_profile(const char *profile, uint32_t mix[PROFILE_COUNT])
{
	if (profile[0] == 'm')
		return;
	for (int k = 0; k < PROFILE_COUNT; k++)
		mix[k] = 0;
	mix[profile[0] == 'z' ? PROFILE_ZERO :
	    profile[0] == 't' ? PROFILE_TEXT : PROFILE_RANDOM] = 100;
}

static void parse_cmdline(const char *s)
{
	static const uint32_t default_mix[PROFILE_COUNT] = { 0, 50, 50 };
	uint32_t disk_mix_given;

	while (*s) {
		size_t n = 0;

		while (*s == ' ')
			s++;
		while (s[n] && s[n] != ' ')
			n++;
		if (n)
			apply_option(s, n);
		s += n;
	}
	one_profile(cfg.profile, cfg.mix);
	/* The disk's content follows the RAM's unless told otherwise. */
	disk_mix_given = cfg.disk_mix[0] + cfg.disk_mix[1] + cfg.disk_mix[2];
	if (!cfg.disk_profile && !disk_mix_given) {
		cfg.disk_profile = cfg.profile;
		memcpy(cfg.disk_mix, cfg.mix, sizeof(cfg.mix));
		return;
	}
	if (!cfg.disk_profile)
		cfg.disk_profile = "mix";
	if (!disk_mix_given)
		memcpy(cfg.disk_mix, default_mix, sizeof(default_mix));
	one_profile(cfg.disk_profile, cfg.disk_mix);
}

/* ---- boot information -------------------------------------------------- */

/*
 * End of the usable RAM block the kernel sits in. QEMU puts the multiboot
 * info and command line just after the kernel, in the RAM we are about to
 * fill, so everything needed from it is copied out first.
 */
static uintptr_t ram_limit(const struct mb_info *mbi)
{
	uint64_t kend = (uintptr_t)_end, limit = 0;

	if (mbi->flags & MB_INFO_MMAP) {
		uint32_t off = 0;

		while (off + sizeof(struct mb_mmap_entry) <= mbi->mmap_length) {
			const struct mb_mmap_entry *e =
				(const void *)(uintptr_t)(mbi->mmap_addr + off);

			if (e->type == MB_MMAP_AVAILABLE && e->addr <= kend &&
			    kend < e->addr + e->len)
				limit = e->addr + e->len;
			off += e->size + 4;
		}
	} else if (mbi->flags & MB_INFO_MEM) {
		limit = (1u << 20) + (uint64_t)mbi->mem_upper * 1024;
	}
	if (limit > 0xFFFFF000u)    /* no paging: only the low 4 GiB */
		limit = 0xFFFFF000u;
	return limit > kend + TOP_MARGIN ? (uintptr_t)(limit - TOP_MARGIN) : 0;
}

/* ---- serial commands ---------------------------------------------------- */

static void disk_set_rate(uint32_t kbps)
{
	cfg.disk_kbps = kbps;
	if (kbps && disk_present)
		disk_used = 1;
	pacer_set(&disk_pacer, (uint64_t)kbps * 1000, SECTOR_SIZE, rdtsc());
	disk_due = 0;
}

/*
 * RAM first, then the disk if its workload ever ran. Without one the
 * reply is exactly what it was before the disk workload existed.
 */
static void cmd_verify(const char *arg, size_t n)
{
	uint32_t first = 0, bad, dfirst = 0, dbad = 0, sectors = 0;
	const char *why = "", *dwhy = "";

	(void)arg;
	(void)n;
	bad = pages_verify(&first, &why);
	if (disk_used)
		dbad = disk_verify(&dfirst, &dwhy, &sectors);
	if (bad && dbad)
		kprintf("VERIFY FAIL page=%u reason=%s bad=%u disk_bad=%u\n",
			first, why, bad, dbad);
	else if (bad)
		kprintf("VERIFY FAIL page=%u reason=%s bad=%u\n", first, why, bad);
	else if (dbad)
		kprintf("VERIFY FAIL sector=%u reason=%s bad=%u\n", dfirst,
			dwhy, dbad);
	else if (disk_used)
		kprintf("VERIFY OK pages=%u sectors=%u\n", pages_count(),
			sectors);
	else
		kprintf("VERIFY OK pages=%u\n", pages_count());
	/* Dirtying paused meanwhile; do not make up for it in one burst. */
	pacer_set(&ram_pacer, ram_pacer.rate, PAGE_SIZE, rdtsc());
	pacer_set(&disk_pacer, disk_pacer.rate, SECTOR_SIZE, rdtsc());
	disk_due = 0;
}

static void cmd_dirty(const char *arg, size_t n)
{
	uint32_t mbps;

	if (parse_u32(arg, n, MAX_RATE_MBPS, &mbps)) {
		kprintf("ERR usage: dirty <MBps 0..%u>\n", MAX_RATE_MBPS);
		return;
	}
	cfg.dirty_mbps = mbps;
	pacer_set(&ram_pacer, (uint64_t)mbps * 1000000, PAGE_SIZE, rdtsc());
	kprintf("OK dirty=%u\n", mbps);
}

static void cmd_disk(const char *arg, size_t n)
{
	uint32_t mbps;

	if (!disk_present) {
		kprintf("ERR no ATA disk\n");
		return;
	}
	if (parse_u32(arg, n, MAX_DISK_KBPS / 1000, &mbps)) {
		kprintf("ERR usage: disk <MBps 0..%u>\n", MAX_DISK_KBPS / 1000);
		return;
	}
	disk_set_rate(mbps * 1000);
	kprintf("OK disk=%u\n", mbps);
}

static void cmd_diskkbps(const char *arg, size_t n)
{
	uint32_t kbps;

	if (!disk_present) {
		kprintf("ERR no ATA disk\n");
		return;
	}
	if (parse_u32(arg, n, MAX_DISK_KBPS, &kbps)) {
		kprintf("ERR usage: diskkbps <KBps 0..%u>\n", MAX_DISK_KBPS);
		return;
	}
	disk_set_rate(kbps);
	kprintf("OK diskkbps=%u\n", kbps);
}

static void cmd_ping(const char *arg, size_t n)
{
	(void)arg;
	(void)n;
	kprintf("PONG seq=%u\n", hb_seq);
}

/* Test hook (see pages_corrupt): lets a test prove that verify can fail. */
static void cmd_corrupt(const char *arg, size_t n)
{
	uint32_t idx;

	if (parse_u32(arg, n, UINT32_MAX, &idx) || pages_corrupt(idx)) {
		kprintf("ERR usage: corrupt <page 0..%u>\n", pages_count() - 1);
		return;
	}
	kprintf("OK corrupt=%u\n", idx);
}

/*
 * Test hook (see disk_corrupt): corruptdisk [LBA], by default the first
 * written sector. Stop the workload first (disk 0), or it may rewrite the
 * sector before verify looks.
 */
static void cmd_corruptdisk(const char *arg, size_t n)
{
	uint32_t lba = UINT32_MAX;
	int64_t r;

	if (n && parse_u32(arg, n, UINT32_MAX - 1, &lba)) {
		kprintf("ERR usage: corruptdisk [<lba>]\n");
		return;
	}
	r = disk_present ? disk_corrupt(lba) : -ENODEV;
	if (r == -EINVAL)
		kprintf("ERR no written sector there\n");
	else if (r < 0)
		kprintf("ERR disk error %u\n", (uint32_t)-r);
	else
		kprintf("OK corruptdisk=%u\n", (uint32_t)r);
}

static const struct command {
	const char *name;
	void (*fn)(const char *arg, size_t n);
} commands[] = {
	{ "verify", cmd_verify },
	{ "dirty", cmd_dirty },
	{ "ping", cmd_ping },
	{ "corrupt", cmd_corrupt },
	{ "disk", cmd_disk },
	{ "diskkbps", cmd_diskkbps },
	{ "corruptdisk", cmd_corruptdisk },
};

static void run_command(const char *line, size_t n)
{
	size_t k = 0, a;

	while (k < n && line[k] != ' ')
		k++;
	for (a = k; a < n && line[a] == ' '; a++)
		;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (str_eq(line, k, commands[i].name)) {
			commands[i].fn(line + a, n - a);
			return;
		}
	kprintf("ERR unknown command\n");
}

static void poll_commands(void)
{
	static char line[CMD_MAX];
	static size_t len;
	static int overflow;
	int c;

	while ((c = serial_getc()) >= 0) {
		if (c != '\n' && c != '\r') {
			if (len < CMD_MAX)
				line[len++] = (char)c;
			else
				overflow = 1;
			continue;
		}
		if (overflow)
			kprintf("ERR line too long\n");
		else if (len)
			run_command(line, len);
		len = 0;
		overflow = 0;
	}
}

/* ---- disk --------------------------------------------------------------- */

/*
 * Probe before the RAM fill: the generation table comes off the top of
 * free RAM. The DISK line tells a test where the guest found its disk.
 */
static uintptr_t setup_disk(uintptr_t base, uintptr_t limit)
{
	struct disk_config dc = {
		.ws_mib = cfg.disk_ws_mib,
		.off_mib = cfg.disk_off_mib,
		.io32 = cfg.disk_pio == 32,
	};

	memcpy(dc.mix, cfg.disk_mix, sizeof(dc.mix));
	limit = disk_setup(base, limit, &dc, &disk_info);
	if (!disk_info.sectors) {
		if (cfg.disk_kbps)
			kprintf("FERRY-GUEST WARN no ATA disk\n");
		return limit;
	}
	cfg.disk_ws_mib = dc.ws_mib;
	cfg.disk_pio = dc.io32 ? 32 : 16;
	disk_present = disk_ready();
	kprintf("FERRY-GUEST DISK ide=%u.%u sectors=%llu mib=%llu lba48=%u"
		" mult=%u pio=%u\n", disk_info.channel, disk_info.unit,
		disk_info.sectors, disk_info.sectors / 2048, disk_info.lba48,
		disk_info.mult, cfg.disk_pio);
	if (!disk_present)
		kprintf("FERRY-GUEST WARN diskoff=%u beyond the disk\n",
			cfg.disk_off_mib);
	return limit;
}

/* ---- main loop ----------------------------------------------------------- */

static void heartbeat(uint64_t now)
{
	uint64_t period = (uint64_t)cfg.hb_ms * tsc_hz / 1000;

	if (!period || now < next_hb)
		return;
	if (disk_present)
		kprintf("HB seq=%u dirtied=%llu uptime_ms=%llu disk_sectors=%llu\n",
			++hb_seq, pages_dirtied(), tsc_to_ms(now - boot_tsc),
			disk_written());
	else
		kprintf("HB seq=%u dirtied=%llu uptime_ms=%llu\n", ++hb_seq,
			pages_dirtied(), tsc_to_ms(now - boot_tsc));
	next_hb += period;
	if (next_hb <= now)          /* after a pause: no burst of beats */
		next_hb = now + period;
}

/*
 * What the disk could not write in its slice stays due, up to the pacer's
 * own limit of PACER_MAX_GAP_MS worth: beyond what PIO can do, the rest is
 * dropped, as the pacer drops long gaps.
 */
static void write_disk(uint64_t now)
{
	uint64_t max = (uint64_t)cfg.disk_kbps * 1000 * PACER_MAX_GAP_MS /
		       1000 / SECTOR_SIZE;

	disk_due += pacer_take(&disk_pacer, now);
	if (disk_due > max)
		disk_due = (uint32_t)max;
	if (disk_due)
		disk_due -= disk_write(disk_due,
				       rdtsc() + tsc_hz * DISK_SLICE_MS / 1000);
}

static __attribute__((noreturn)) void run(void)
{
	next_hb = rdtsc() + (uint64_t)cfg.hb_ms * tsc_hz / 1000;
	pacer_set(&ram_pacer, (uint64_t)cfg.dirty_mbps * 1000000, PAGE_SIZE,
		  rdtsc());
	disk_set_rate(cfg.disk_kbps);
	timer_start(cfg.tick_hz);
	for (;;) {
		uint64_t now;

		/*
		 * Work with interrupts off: one that arrives meanwhile stays
		 * pending and ends the next hlt at once, so no wake-up (a
		 * command byte above all) is slept through.
		 */
		__asm__ volatile("cli");
		poll_commands();
		now = rdtsc();
		pages_dirty(pacer_take(&ram_pacer, now));
		write_disk(now);
		heartbeat(rdtsc());
		/* A disk wait may have taken the serial IRQ (ata.h). */
		if (!serial_rx_ready() && !disk_due)
			wait_for_interrupt();
	}
}

void kmain(uint32_t magic, const struct mb_info *mbi)
{
	struct pages_config pc;
	uintptr_t limit;
	uint32_t n;

	serial_init();
	if (magic != MB_BOOT_MAGIC) {
		kprintf("FERRY-GUEST PANIC not started by a multiboot loader\n");
		halt_forever();
	}
	if (mbi->flags & MB_INFO_CMDLINE) {
		const char *s = (const char *)(uintptr_t)mbi->cmdline;
		size_t i;

		for (i = 0; s[i] && i < sizeof(cmdline) - 1; i++)
			cmdline[i] = s[i];
		cmdline[i] = '\0';
	}
	limit = ram_limit(mbi);
	/* mbi is not touched after this point: its memory gets filled. */

	cpu_init();
	timer_calibrate();
	if (tsc_hz < 20000000) {
		/* port 0x61 missing or stuck: every rate would be wrong */
		kprintf("FERRY-GUEST PANIC tsc calibration tsc_khz=%llu\n",
			tsc_hz / 1000);
		halt_forever();
	}
	boot_tsc = rdtsc();
	parse_cmdline(cmdline);
	kprintf("FERRY-GUEST BOOT ram_limit_mib=%u tsc_khz=%llu\n",
		(uint32_t)(limit >> 20), tsc_hz / 1000);

	limit = setup_disk((uintptr_t)_end, limit);
	pc.fill_mib = cfg.fill_mib;
	pc.wss_mib = cfg.wss_mib;
	memcpy(pc.mix, cfg.mix, sizeof(pc.mix));
	pc.rewrite = cfg.rewrite;
	n = pages_setup((uintptr_t)_end, limit, &pc);
	cfg.fill_mib = pc.fill_mib;
	cfg.wss_mib = pc.wss_mib;

	kprintf("FERRY-GUEST READY fill=%u pages=%u profile=%s dirty=%u wss=%u"
		" mix=%u,%u,%u hb=%u tick=%u rewrite=%s", cfg.fill_mib, n,
		cfg.profile, cfg.dirty_mbps, cfg.wss_mib, cfg.mix[0], cfg.mix[1],
		cfg.mix[2], cfg.hb_ms, cfg.tick_hz, rewrite_names[cfg.rewrite]);
	if (disk_present && cfg.disk_kbps % 1000)
		kprintf(" diskkbps=%u", cfg.disk_kbps);
	else if (disk_present)
		kprintf(" disk=%u", cfg.disk_kbps / 1000);
	if (disk_present)
		kprintf(" diskws=%u diskoff=%u diskprofile=%s diskmix=%u,%u,%u",
			cfg.disk_ws_mib, cfg.disk_off_mib, cfg.disk_profile,
			cfg.disk_mix[0], cfg.disk_mix[1], cfg.disk_mix[2]);
	kprintf("\n");
	run();
}
