/*
 * config.c: the command line into cfg: defaults (the reference scenario,
 * or --quick's), the options over them, and the checks of combinations,
 * all before anything runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

struct bench_cfg cfg;

/* The options that override a scenario's defaults (0/NULL = not given). */
struct overrides {
	const char *modes, *link, *append;
	int mem, repeats, quick;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: ferry-bench [--quick] [--modes a,b,...] [--link L[,L...]] (L: lo 10gbit 1gbit 100mbit)\n"
		"                   [--mem MiB] [--append \"guest cmdline\"] [--repeats N] [--out DIR]\n"
		"                   [--build-dir DIR] [--run-timeout S] [--no-pin] [--series] [--keep-logs]\n"
		"                   [--disk-mib N [--disk-fill-mib M] [--disk-format raw|qcow2]]\n"
		"                   [--guest ferry|linux]\n");
	modes_usage(stderr);
	fprintf(stderr, "the guest's disk writes are its own options, in --append (disk=MB/s diskws=MiB diskoff=MiB)\n");
	fprintf(stderr, "--guest linux: the Linux test guest (q35, UEFI, 2 vCPUs, its boot disk shared; RAM only)\n"
			"               instead of ferry-guest; --append is its workload (fill= dirty= wss=)\n");
}

static int set_modes(const char *list)
{
	char buf[512], *save = NULL, *t;
	struct mode m;

	snprintf(buf, sizeof(buf), "%s", list);
	cfg.nmodes = 0;
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (mode_find(t, &m) < 0) {
			msg("unknown mode %s", t);
			return -1;
		}
		if (cfg.nmodes == MAX_MODES)
			return -1;
		snprintf(cfg.modes[cfg.nmodes++], sizeof(cfg.modes[0]), "%s", t);
	}
	return cfg.nmodes ? 0 : -1;
}

/* --link a,b,...: every name known, none twice (the summary, the plots and
 * the series files are keyed by link). Checked before anything runs. */
static int set_links(const char *list)
{
	char buf[128], *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", list);
	cfg.nlinks = 0;
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!link_known(t)) {
			msg("unknown --link %s (lo|10gbit|1gbit|100mbit)", t);
			return -1;
		}
		for (int i = 0; i < cfg.nlinks; i++)
			if (!strcmp(cfg.links[i], t)) {
				msg("--link %s given twice", t);
				return -1;
			}
		if (cfg.nlinks == MAX_LINKS)
			return -1;
		snprintf(cfg.links[cfg.nlinks++], sizeof(cfg.links[0]), "%s", t);
	}
	return cfg.nlinks ? 0 : -1;
}

/* --append has a disk=N token with N > 0 (diskws=, diskoff= do not count) */
static int guest_writes_disk(const char *append)
{
	const char *p = append;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, "disk=", 5) && atoi(p + 5) > 0)
			return 1;
		while (*p && *p != ' ')
			p++;
	}
	return 0;
}

static int default_build_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *s;

	if (n <= 0)
		return -1;
	exe[n] = 0;
	s = strrchr(exe, '/');
	if (!s)
		return -1;
	*s = 0;
	s = strrchr(exe, '/'); /* .../build/bench/ferry-bench -> .../build */
	if (!s)
		return -1;
	*s = 0;
	snprintf(cfg.build, sizeof(cfg.build), "%s", exe);
	return 0;
}

/* The defaults every scenario shares. */
static void defaults(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.run_timeout_s = 600;
	snprintf(cfg.disk_format, sizeof(cfg.disk_format), "raw");
	cfg.pin = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
	snprintf(cfg.out, sizeof(cfg.out), "bench-out");
	if (default_build_dir() < 0)
		snprintf(cfg.build, sizeof(cfg.build), "build");
}

/* getopt over argv: cfg's own options set, the others into *o. 0, or -1
 * with the exit status in *exit_code. */
static int parse_options(int argc, char **argv, struct overrides *o, int *exit_code)
{
	static const struct option opts[] = {{"quick", no_argument, NULL, 'q'},
					     {"modes", required_argument, NULL, 'm'},
					     {"link", required_argument, NULL, 'l'},
					     {"mem", required_argument, NULL, 'M'},
					     {"append", required_argument, NULL, 'a'},
					     {"repeats", required_argument, NULL, 'r'},
					     {"out", required_argument, NULL, 'o'},
					     {"build-dir", required_argument, NULL, 'b'},
					     {"run-timeout", required_argument, NULL, 't'},
					     {"no-pin", no_argument, NULL, 'P'},
					     {"series", no_argument, NULL, 'S'},
					     {"keep-logs", no_argument, NULL, 'K'},
					     {"disk-mib", required_argument, NULL, 'D'},
					     {"disk-fill-mib", required_argument, NULL, 'F'},
					     {"disk-format", required_argument, NULL, 'T'},
					     {"guest", required_argument, NULL, 'g'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q': o->quick = 1; break;
		case 'm': o->modes = optarg; break;
		case 'l': o->link = optarg; break;
		case 'M': o->mem = atoi(optarg); break;
		case 'a': o->append = optarg; break;
		case 'r': o->repeats = atoi(optarg); break;
		case 'o': snprintf(cfg.out, sizeof(cfg.out), "%s", optarg); break;
		case 'b': snprintf(cfg.build, sizeof(cfg.build), "%s", optarg); break;
		case 't': cfg.run_timeout_s = atoi(optarg); break;
		case 'P': cfg.pin = 0; break;
		case 'S': cfg.series = 1; break;
		case 'K': cfg.keep_logs = 1; break;
		case 'D': cfg.disk_mib = atoi(optarg); break;
		case 'F': cfg.disk_fill_mib = atoi(optarg); break;
		case 'T': snprintf(cfg.disk_format, sizeof(cfg.disk_format), "%s", optarg); break;
		case 'g':
			if (strcmp(optarg, "ferry") && strcmp(optarg, "linux")) {
				msg("--guest %s: ferry or linux", optarg);
				*exit_code = 2;
				return -1;
			}
			cfg.linux_guest = !strcmp(optarg, "linux");
			break;
		case 'h': usage(); *exit_code = 0; return -1;
		default: usage(); *exit_code = 2; return -1;
		}
	}
	if (optind < argc) {
		usage();
		*exit_code = 2;
		return -1;
	}
	return 0;
}

/* The scenario: --quick's or the reference one. */
static void scenario(int quick)
{
	char full[512];

	if (quick) {
		set_modes("native-unix,ferry");
		set_links("lo");
		cfg.mem_mib = 256;
		snprintf(cfg.append, sizeof(cfg.append), "fill=128 profile=mix mix=0,50,50 dirty=20 wss=64");
		cfg.repeats = 1;
		if (cfg.run_timeout_s > 180)
			cfg.run_timeout_s = 180;
	} else {
		modes_full_list(full, sizeof(full));
		set_modes(full);
		set_links("lo");
		cfg.mem_mib = 2048;
		snprintf(cfg.append, sizeof(cfg.append), "fill=1536 profile=mix mix=0,50,50 dirty=20 wss=256");
		cfg.repeats = 3;
	}
}

/* The options over the scenario, then the checks of combinations: 0, or
 * the exit status. */
static int apply(const struct overrides *o)
{
	char path[PATH_MAX + 32];

	if ((o->modes && set_modes(o->modes) < 0) || (o->link && set_links(o->link) < 0)) {
		usage();
		return 2;
	}
	if (o->mem > 0)
		cfg.mem_mib = o->mem;
	if (o->append)
		snprintf(cfg.append, sizeof(cfg.append), "%s", o->append);
	if (o->repeats > 0)
		cfg.repeats = o->repeats;
	if (cfg.repeats * cfg.nmodes * cfg.nlinks > MAX_RUNS) {
		msg("too many runs");
		return 2;
	}
	if (cfg.disk_mib < 0 || cfg.disk_fill_mib < 0 || cfg.disk_fill_mib > cfg.disk_mib ||
	    (strcmp(cfg.disk_format, "raw") && strcmp(cfg.disk_format, "qcow2"))) {
		msg("--disk-mib N >= 0, --disk-fill-mib M <= N, --disk-format raw|qcow2");
		usage();
		return 2;
	}
	cfg.guest_writes_disk = guest_writes_disk(cfg.append);
	if (cfg.guest_writes_disk && !cfg.disk_mib) {
		msg("--append asks the guest to write to its disk (disk=) but there is no --disk-mib");
		return 2;
	}
	if (cfg.linux_guest && cfg.disk_mib) {
		msg("--guest linux takes no --disk-mib: its boot disk is shared by both sides and it writes only RAM");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/guest/ferry-guest.elf", cfg.build);
	if (access(path, R_OK)) {
		msg("%s missing (build first, or --build-dir)", path);
		return 2;
	}
	return 0;
}

int config_parse(int argc, char **argv, int *exit_code)
{
	struct overrides o = {0};

	defaults();
	if (parse_options(argc, argv, &o, exit_code) < 0)
		return -1;
	scenario(o.quick);
	*exit_code = apply(&o);
	return *exit_code ? -1 : 0;
}
