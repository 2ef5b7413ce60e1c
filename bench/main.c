/*
 * main.c: ferry-bench's set-up (signals, the work directory, the agents'
 * cluster key, the disk template, the result files), the loop over links,
 * repeats and modes, and the report. bench.h says where the rest lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "util/log.h"
#include "util/timeutil.h"

volatile sig_atomic_t g_stop;

static void sig_handler(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The agents' cluster key in the work directory: 48 random bytes, base64. */
static int copy_kernel(void)
{
	char src[PATH_MAX + 32];
	char *argv[] = {"install", "-m", "0644", src, cfg.kernel, NULL};

	snprintf(src, sizeof(src), "%s/guest/ferry-guest.elf", cfg.build);
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s/ferry-guest.elf", cfg.work);
	if (run(argv, -1, 0, NULL, NULL, 30) != 0) {
		msg("cannot copy %s into %s", src, cfg.work);
		return -1;
	}
	return 0;
}

static int write_cluster_key(void)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char k[48];
	char text[80], path[PATH_MAX + 32];
	int fd = open("/dev/urandom", O_RDONLY), o = 0;

	if (fd < 0 || read(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
		msg("cannot read /dev/urandom");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	for (int i = 0; i < 48; i += 3) {
		unsigned v = (unsigned)k[i] << 16 | (unsigned)k[i + 1] << 8 | k[i + 2];

		text[o++] = b64[v >> 18 & 63];
		text[o++] = b64[v >> 12 & 63];
		text[o++] = b64[v >> 6 & 63];
		text[o++] = b64[v & 63];
	}
	text[o++] = '\n';
	text[o] = 0;
	snprintf(path, sizeof(path), "%s/cluster.key", cfg.work);
	if (write_text(path, text) || chmod(path, 0600))
		return -1;
	return 0;
}

/* With --disk-mib: the template every run copies, and a line about it. */
static int make_disk(void)
{
	uint64_t t = time_mono_ms();

	if (disk_make_template() < 0)
		return -1;
	msg("disk: %d MiB %s, %d MiB filled (template in %llu ms); disk check: %s", cfg.disk_mib, cfg.disk_format,
	    cfg.disk_fill_mib, (unsigned long long)(time_mono_ms() - t),
	    cfg.guest_writes_disk ? "the guest's verify (--append has disk=, so the guest writes on after "
				    "the migration and the images may differ)"
				  : "qemu-img compare of the source and target images");
	return 0;
}

/* Everything before the first run: the output and work directories, the
 * key, the disk template, the ports. */
static int setup(void)
{
	mkdir(cfg.out, 0755);
	snprintf(cfg.work, sizeof(cfg.work), "/tmp/ferry-bench.XXXXXX");
	{
		struct passwd *pw = getpwnam("ferry-qemu");

		snprintf(cfg.qemu_user, sizeof(cfg.qemu_user), "%s", pw ? "ferry-qemu" : "root");
		cfg.qemu_uid = pw ? (int)pw->pw_uid : 0;
		cfg.qemu_gid = pw ? (int)pw->pw_gid : 0;
	}
	if (!mkdtemp(cfg.work)) {
		msg("mkdtemp: %s", strerror(errno));
		cfg.work[0] = 0;
		return -1;
	}
	chmod(cfg.work, 0711); /* the agents' unprivileged QEMU passes through */
	/* ...and reads the kernel: a copy here, whatever the permissions of
	 * the build tree's parents. */
	if (copy_kernel() < 0)
		return -1;
	if (write_cluster_key() < 0)
		return -1;
	if (cfg.disk_mib > 0 && make_disk() < 0)
		return -1;
	if (cfg.linux_guest && linux_guest_setup() < 0)
		return -1;
	/* Above the kernel's ephemeral range (32768-60999), where outgoing
	 * connections could hold a port, and away from the e2e tests' blocks
	 * (20000-32767). */
	cfg.port_base = 61000 + (int)(getpid() % 500) * 4; /* + up to 998 per run */
	return 0;
}

/* results.jsonl and results.csv (with its header), opened for writing. */
static int open_results(FILE **jl, FILE **csv)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/results.jsonl", cfg.out);
	*jl = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/results.csv", cfg.out);
	*csv = fopen(path, "w");
	if (!*jl || !*csv) {
		msg("cannot write into %s", cfg.out);
		if (*jl)
			fclose(*jl);
		if (*csv)
			fclose(*csv);
		return -1;
	}
	csv_header(*csv);
	return 0;
}

/* Every repeat of every mode on link, the modes alternated within each
 * repeat; results go on at results[*nres]. Returns the number of failed
 * runs. */
static int run_link(const char *link, struct result *results, int *nres, FILE *jl, FILE *csv)
{
	int failed = 0;

	for (int rep = 0; rep < cfg.repeats && !g_stop; rep++)
		for (int m = 0; m < cfg.nmodes && !g_stop; m++) {
			failed += run_one(&results[*nres], *nres, cfg.modes[m], rep + 1, link, jl, csv) < 0;
			(*nres)++;
		}
	return failed;
}

/* The links one at a time: a link's namespace exists only while its runs
 * go. *no_link: a namespace could not be made or deleted. Returns the
 * number of failed runs. */
static int run_all(struct result *results, int *nres, FILE *jl, FILE *csv, int *no_link)
{
	char links[MAX_LINKS * 16 + 8];
	int failed = 0;

	links_str(links, sizeof(links));
	msg("%d mode(s) x %d repeat(s), %s %s, %d MiB, append \"%s\", pinning %s", cfg.nmodes, cfg.repeats,
	    cfg.nlinks > 1 ? "links" : "link", links, cfg.mem_mib, cfg.append,
	    cfg.pin ? "source cpu0 / target cpu1" : "off");
	for (int l = 0; l < cfg.nlinks && !g_stop; l++) {
		if (netns_create(cfg.links[l]) < 0) {
			*no_link = 1;
			break;
		}
		failed += run_link(cfg.links[l], results, nres, jl, csv);
		if (netns_del() < 0) {
			*no_link = 1;
			break;
		}
	}
	return failed;
}

static void print_summary(void)
{
	char path[PATH_MAX + 32], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/summary.md", cfg.out);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		fputs(line, stdout);
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	static struct result results[MAX_RUNS];
	int nres = 0, failed, no_link = 0, code;
	FILE *jl, *csv;

	if (config_parse(argc, argv, &code) < 0)
		return code;
	/* ferry's QMP client logs its connects at info; the bench's own lines
	 * are the log here (FERRY_LOG=debug still shows everything) */
	log_set_level(LOG_WARN);
	signals();
	if (setup() < 0 || open_results(&jl, &csv) < 0) {
		cleanup_all();
		return 1;
	}
	failed = run_all(results, &nres, jl, csv, &no_link);
	fclose(jl);
	fclose(csv);
	/* a namespace that could not be made before any run leaves nothing
	 * to summarise (and OUT may hold an older summary.md) */
	if (no_link && !nres) {
		cleanup_all();
		return 1;
	}
	write_summary(results, nres);
	cleanup_all();
	if (g_stop) {
		msg("interrupted");
		return 130;
	}
	print_summary();
	return failed || no_link ? 1 : 0;
}
