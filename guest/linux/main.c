/*
 * main.c - ferry's Linux test guest (docs/guest.md, "The Linux guest"):
 * PID 1 of the initramfs once /init has loaded the drivers. It reads its
 * workload from the kernel command line (the keys of ferry-guest that
 * apply), finds the data disk, fills RAM, then runs:
 *
 *   two RAM writers   each dirties its half of the working set at half
 *                     the `dirty` rate (two vCPUs write);
 *   a disk writer     writes the data disk at the `disk` rate;
 *   this thread       heartbeats on the serial console and its commands.
 *
 * `verify` takes the workload lock exclusively, so it sees no write in
 * flight; the writers hold it shared for each burst. The lock prefers
 * the verifier, or two busy writers could keep it out for ever.
 *
 * The serial protocol is ferry-guest's (READY, HB, verify, ping, dirty,
 * disk, corrupt, corruptdisk): the e2e helpers work with either guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "lguest.h"

#define MAX_RATE_MBPS 10000u
#define MAX_DISK_KBPS 1000000u
/*
 * Writers wake at 20 Hz. Under TCG here every wake-up of a sleeping guest
 * thread costs the host ~6 ms of CPU (measured, cause not found: the work
 * itself is not it, `dirty=1` cost as much as `dirty=20`): at 50 Hz, as
 * ferry-guest ticks, one writer took 80% of a host core; at 20 Hz, 26%.
 * Bursts of 50 ms change nothing QEMU measures (its windows are seconds),
 * and stay inside the pacer's 100 ms gap limit.
 */
#define SLICE_NS 50000000ull
#define DISK_BURST_NS 10000000ull    /* one disk burst writes at most 10 ms */
#define RESERVE_MIB 48u              /* left to the kernel beyond fill */
#define DISK_WAIT_MS 10000u          /* for a data disk a rate was asked for */

static struct config {
	unsigned fill_mib, wss_mib, dirty_mbps, hb_ms;
	unsigned disk_kbps, disk_ws_mib;
	char datadev[32];
} cfg = { .fill_mib = 64, .wss_mib = ~0u, .hb_ms = 1000, .disk_ws_mib = 64 };

static struct mem mem;
static struct disk disk = { .fd = -1 };
static unsigned hb_seq;

static pthread_rwlock_t work_lock;
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rate_cond = PTHREAD_COND_INITIALIZER;

/* ---- options ------------------------------------------------------------ */

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* One key=value of the kernel command line; keys that are not ours (the
 * kernel's own: console=, loglevel=, ...) are left alone. */
static void option(const char *key, const char *val)
{
	static const struct { const char *key; unsigned *dst; unsigned max; } keys[] = {
		{ "fill", &cfg.fill_mib, 1u << 20 },
		{ "wss", &cfg.wss_mib, 1u << 20 },
		{ "dirty", &cfg.dirty_mbps, MAX_RATE_MBPS },
		{ "hb", &cfg.hb_ms, 3600000 },
		{ "diskkbps", &cfg.disk_kbps, MAX_DISK_KBPS },
		{ "diskws", &cfg.disk_ws_mib, 1u << 20 },
	};
	unsigned v;

	if (!strcmp(key, "disk")) {
		if (parse_uint(val, MAX_DISK_KBPS / 1000, &v) == 0)
			cfg.disk_kbps = v * 1000;
		else
			say("FERRY-GUEST WARN bad option %s", key);
		return;
	}
	if (!strcmp(key, "datadev")) {
		if (strlen(val) < sizeof(cfg.datadev) && !strchr(val, '/'))
			snprintf(cfg.datadev, sizeof(cfg.datadev), "%s", val);
		else
			say("FERRY-GUEST WARN bad option %s", key);
		return;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].key))
			continue;
		if (parse_uint(val, keys[i].max, &v) == 0)
			*keys[i].dst = v;
		else
			say("FERRY-GUEST WARN bad option %s", key);
	}
}

static void read_cmdline(void)
{
	char buf[4096], *save = NULL, *tok;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = 0;
		option(tok, eq + 1);
	}
}

static uint64_t meminfo_kib(const char *field)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	size_t len = strlen(field);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':')
			sscanf(line + len + 1, "%llu", &v);
	fclose(f);
	return v;
}

/* ---- writers ------------------------------------------------------------ */

static void nap(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void wait_for_rate(const struct pacer *p, const int *stopped)
{
	pthread_mutex_lock(&rate_lock);
	while (!p->rate || (stopped && *stopped))
		pthread_cond_wait(&rate_cond, &rate_lock);
	pthread_mutex_unlock(&rate_lock);
}

static void *mem_writer(void *arg)
{
	int k = (int)(intptr_t)arg;

	for (;;) {
		wait_for_rate(&mem.part[k].pacer, NULL);
		pthread_rwlock_rdlock(&work_lock);
		mem_dirty(&mem, k, now_ns());
		pthread_rwlock_unlock(&work_lock);
		nap(SLICE_NS);
	}
	return NULL;
}

static void *disk_writer(void *arg)
{
	uint64_t now;

	(void)arg;
	for (;;) {
		wait_for_rate(&disk.pacer, &disk.failed);
		pthread_rwlock_rdlock(&work_lock);
		now = now_ns();
		(void)disk_write(&disk, now, now + DISK_BURST_NS);
		pthread_rwlock_unlock(&work_lock);
		/* still behind after a burst: go on without sleeping */
		if (!disk.due)
			nap(SLICE_NS);
	}
	return NULL;
}

/* Change a rate with every writer outside its burst. */
static void set_rates(int mem_too, uint64_t mem_bps, int disk_too, uint64_t disk_bps)
{
	uint64_t now;

	pthread_rwlock_wrlock(&work_lock);
	pthread_mutex_lock(&rate_lock);
	now = now_ns();
	if (mem_too)
		mem_set_rate(&mem, mem_bps, now);
	if (disk_too)
		disk_set_rate(&disk, disk_bps, now);
	pthread_cond_broadcast(&rate_cond);
	pthread_mutex_unlock(&rate_lock);
	pthread_rwlock_unlock(&work_lock);
}

/* ---- commands ----------------------------------------------------------- */

static void cmd_verify(const char *arg)
{
	uint64_t first = 0, dfirst = 0, sectors = 0, bad, dbad = 0;
	const char *why = "", *dwhy = "";

	(void)arg;
	pthread_rwlock_wrlock(&work_lock);
	bad = mem_verify(&mem, &first, &why);
	if (disk.used)
		dbad = disk_verify(&disk, &dfirst, &dwhy, &sectors);
	pthread_rwlock_unlock(&work_lock);
	if (bad && dbad)
		say("VERIFY FAIL page=%llu reason=%s bad=%llu disk_bad=%llu", (unsigned long long)first,
		    why, (unsigned long long)bad, (unsigned long long)dbad);
	else if (bad)
		say("VERIFY FAIL page=%llu reason=%s bad=%llu", (unsigned long long)first, why,
		    (unsigned long long)bad);
	else if (dbad)
		say("VERIFY FAIL sector=%llu reason=%s bad=%llu", (unsigned long long)dfirst, dwhy,
		    (unsigned long long)dbad);
	else if (disk.used)
		say("VERIFY OK pages=%llu sectors=%llu", (unsigned long long)mem.pages,
		    (unsigned long long)sectors);
	else
		say("VERIFY OK pages=%llu", (unsigned long long)mem.pages);
}

static void cmd_ping(const char *arg)
{
	(void)arg;
	say("PONG seq=%u", hb_seq);
}

static void cmd_dirty(const char *arg)
{
	unsigned v;

	if (parse_uint(arg, MAX_RATE_MBPS, &v) < 0) {
		say("ERR bad rate");
		return;
	}
	set_rates(1, (uint64_t)v * 1000000, 0, 0);
	say("OK dirty=%u", v);
}

static int disk_rate(const char *arg, unsigned max, unsigned *v)
{
	if (disk.fd < 0) {
		say("ERR no data disk");
		return -ENODEV;
	}
	if (parse_uint(arg, max, v) < 0) {
		say("ERR bad rate");
		return -EINVAL;
	}
	return 0;
}

static void cmd_disk(const char *arg)
{
	unsigned v;

	if (disk_rate(arg, MAX_DISK_KBPS / 1000, &v) == 0) {
		set_rates(0, 0, 1, (uint64_t)v * 1000000);
		say("OK disk=%u", v);
	}
}

static void cmd_diskkbps(const char *arg)
{
	unsigned v;

	if (disk_rate(arg, MAX_DISK_KBPS, &v) == 0) {
		set_rates(0, 0, 1, (uint64_t)v * 1000);
		say("OK diskkbps=%u", v);
	}
}

static void cmd_corrupt(const char *arg)
{
	unsigned v;

	if (parse_uint(arg, ~0u, &v) < 0 || mem_corrupt(&mem, v) < 0) {
		say("ERR bad page");
		return;
	}
	say("OK corrupt=%u", v);
}

static void cmd_corruptdisk(const char *arg)
{
	unsigned v = 0;
	uint64_t lba = 0;
	int r;

	if (*arg && parse_uint(arg, ~0u, &v) < 0) {
		say("ERR bad lba");
		return;
	}
	pthread_rwlock_wrlock(&work_lock);
	r = disk_corrupt(&disk, *arg ? (int64_t)v : -1, &lba);
	pthread_rwlock_unlock(&work_lock);
	if (r == -ENODEV)
		say("ERR no data disk");
	else if (r == -EINVAL)
		say("ERR lba not at a block of the working set");
	else if (r < 0)
		say("ERR no written sector there");
	else
		say("OK corruptdisk=%llu", (unsigned long long)lba);
}

static const struct command {
	const char *name;
	void (*run)(const char *arg);
} commands[] = {
	{ "verify", cmd_verify },
	{ "ping", cmd_ping },
	{ "dirty", cmd_dirty },
	{ "disk", cmd_disk },
	{ "diskkbps", cmd_diskkbps },
	{ "corrupt", cmd_corrupt },
	{ "corruptdisk", cmd_corruptdisk },
};

static void command(char *line)
{
	char *arg = strchr(line, ' ');

	if (line[0] == '\x01') {
		say("ERR line too long");
		return;
	}
	if (arg)
		*arg++ = 0;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(line, commands[i].name)) {
			commands[i].run(arg ? arg : "");
			return;
		}
	say("ERR unknown command");
}

/* ---- boot --------------------------------------------------------------- */

static void find_disk(void)
{
	int asked = cfg.disk_kbps || cfg.datadev[0];
	uint64_t deadline = now_ns() + (asked ? DISK_WAIT_MS : 500) * 1000000ull;
	int r;

	/* The drivers are loaded; a SATA or SCSI disk may still be probing. */
	while ((r = disk_open(&disk, cfg.datadev)) == 0 && disk.fd < 0 && now_ns() < deadline)
		nap(100000000);
	if (r < 0) {
		say("FERRY-GUEST WARN data disk %s: %s", disk.name, strerror(-r));
		disk.fd = -1;
	}
	if (disk.fd >= 0 && (r = disk_setup(&disk, (uint64_t)cfg.disk_ws_mib << 20)) < 0) {
		say("FERRY-GUEST WARN data disk %s too small or no memory: %s", disk.name, strerror(-r));
		close(disk.fd);
		disk.fd = -1;
	}
	if (disk.fd >= 0)
		say("FERRY-GUEST DISK dev=%s bus=%s mib=%llu", disk.name, disk.bus,
		    (unsigned long long)(disk.size >> 20));
	else if (asked)
		say("FERRY-GUEST WARN no data disk");
}

static void fill_ram(void)
{
	uint64_t avail_mib = meminfo_kib("MemAvailable") / 1024, pages;
	int r;

	if (cfg.fill_mib + RESERVE_MIB > avail_mib)
		cfg.fill_mib = avail_mib > RESERVE_MIB ? (unsigned)(avail_mib - RESERVE_MIB) : 0;
	if (cfg.wss_mib > cfg.fill_mib)
		cfg.wss_mib = cfg.fill_mib;
	pages = (uint64_t)cfg.fill_mib << 20 >> 12;
	r = mem_setup(&mem, pages, (uint64_t)cfg.wss_mib << 20 >> 12);
	if (r < 0) {
		say("FERRY-GUEST PANIC fill=%u: %s", cfg.fill_mib, strerror(-r));
		for (;;)
			pause();
	}
}

static void ready(void)
{
	char diskpart[160] = "";

	if (disk.fd >= 0) {
		if (cfg.disk_kbps % 1000 == 0)
			snprintf(diskpart, sizeof(diskpart), " disk=%u", cfg.disk_kbps / 1000);
		else
			snprintf(diskpart, sizeof(diskpart), " diskkbps=%u", cfg.disk_kbps);
		snprintf(diskpart + strlen(diskpart), sizeof(diskpart) - strlen(diskpart),
			 " diskws=%llu dev=%s", (unsigned long long)(disk.blocks * LG_BLOCK >> 20), disk.name);
	}
	say("FERRY-GUEST READY fill=%u pages=%llu dirty=%u wss=%u hb=%u vcpus=%ld os=linux%s",
	    cfg.fill_mib, (unsigned long long)mem.pages, cfg.dirty_mbps, cfg.wss_mib, cfg.hb_ms,
	    sysconf(_SC_NPROCESSORS_ONLN), diskpart);
}

static void start_writers(void)
{
	pthread_rwlockattr_t attr;
	pthread_t th;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&work_lock, &attr);
	for (int k = 0; k < MEM_WRITERS; k++)
		if (pthread_create(&th, NULL, mem_writer, (void *)(intptr_t)k) == 0)
			pthread_detach(th);
	if (disk.fd >= 0 && pthread_create(&th, NULL, disk_writer, NULL) == 0)
		pthread_detach(th);
	set_rates(1, (uint64_t)cfg.dirty_mbps * 1000000, disk.fd >= 0, (uint64_t)cfg.disk_kbps * 1000);
}

static uint64_t uptime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void heartbeat(void)
{
	unsigned long long dirtied = __atomic_load_n(&mem.dirtied, __ATOMIC_RELAXED);

	if (disk.fd >= 0)
		say("HB seq=%u dirtied=%llu uptime_ms=%llu disk_sectors=%llu", ++hb_seq, dirtied,
		    (unsigned long long)uptime_ms(),
		    (unsigned long long)__atomic_load_n(&disk.written, __ATOMIC_RELAXED) * (LG_BLOCK / 512));
	else
		say("HB seq=%u dirtied=%llu uptime_ms=%llu", ++hb_seq, dirtied,
		    (unsigned long long)uptime_ms());
}

static void run(int tty)
{
	uint64_t period = (uint64_t)cfg.hb_ms * 1000000ull, next = now_ns() + period;

	for (;;) {
		struct pollfd pfd = { .fd = tty, .events = POLLIN };
		uint64_t now = now_ns();
		int timeout = !period ? -1 : next > now ? (int)((next - now + 999999) / 1000000) : 0;
		char *line;
		int eof;

		if (tty >= 0 && poll(&pfd, 1, timeout) > 0) {
			while ((line = tty_line(tty, &eof)))
				command(line);
		} else if (tty < 0) {
			nap((uint64_t)timeout * 1000000ull);
		}
		now = now_ns();
		if (period && now >= next) {
			heartbeat();
			/* after a verify: realign rather than burst */
			next = next + period > now ? next + period : now + period;
		}
	}
}

int main(void)
{
	struct utsname u;
	int tty;

	tty = tty_open("/dev/ttyS0");
	if (tty < 0)
		tty = tty_open("/dev/console");
	read_cmdline();
	uname(&u);
	say("FERRY-GUEST BOOT linux=%s cpus=%ld mem_mib=%llu", u.release,
	    sysconf(_SC_NPROCESSORS_ONLN), (unsigned long long)(meminfo_kib("MemTotal") / 1024));
	find_disk();
	fill_ram();
	/* From here on the console is the protocol's: only emergencies from
	 * the kernel, which would otherwise cut into a line. */
	(void)klogctl(8 /* SYSLOG_ACTION_CONSOLE_LEVEL */, NULL, 1);
	start_writers();
	ready();
	run(tty);
	return 0;
}
