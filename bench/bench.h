/*
 * ferry-bench: ferry against QEMU's own migration, side by side.
 *
 * Runs every migration as real child processes (QEMU, socat, ferryd,
 * ferryctl, guest-serial, qemu-img), alternating modes within one
 * invocation, N repeats, on one emulated link or several in turn, and
 * writes results.jsonl, results.csv, summary.md and gnuplot plots into
 * --out. With --disk-mib the guest has a local disk:
 * native modes mirror it over NBD directly between the two QEMUs (the
 * libvirt sequence), ferry modes through the agents, and every run ends
 * with the images compared. With --guest linux the workload is ferry's
 * Linux test guest (q35, UEFI, 2 vCPUs) instead of ferry-guest. Every wait is bounded; every child, the network
 * namespace, the images and the work directory are removed on every exit
 * path.
 *
 * The files, one concern each (docs/benchmarks.md describes the method):
 *   config.c    the command line into `cfg`
 *   modes.c     the table of modes
 *   children.c  child processes, and the cleanup of everything on exit
 *   procstat.c  CPU time and peak RSS from /proc
 *   qmpwatch.c  a QMP session (ferry's qmp/ client) and what its events said
 *   run.c       one run: its directory, the mode's driver, its result
 *   run_native.c, run_ferry.c   the two drivers
 *   disks.c     the guest's local disk: template, images, compare
 *   linux.c     --guest linux: the Linux test guest's disk, QEMU arguments, spec
 *   outputs.c   results.jsonl, results.csv, summary.md
 *   plots.c     plot data and gnuplot scripts (summary and --series)
 *   netns.c     the emulated links: a shaped network namespace
 *   main.c      set-up, the loop over links, the report
 */
#ifndef FERRY_BENCH_BENCH_H
#define FERRY_BENCH_BENCH_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define MAX_CHILD 64
#define MAX_MODES 16
#define MAX_RUNS 512
#define MAX_LINKS 4 /* lo, 10gbit, 1gbit, 100mbit, each at most once */

/* ---------- configuration (config.c) ---------- */

/*
 * The invocation's configuration: the one global besides the signal flag.
 * config_parse fills the options, main the set-up part before the first
 * run; nothing changes it after that (cleanup_all only clears `work` once
 * it has removed the directory).
 */
struct bench_cfg {
	char build[PATH_MAX];
	char modes[MAX_MODES][32];
	int nmodes;
	char links[MAX_LINKS][16]; /* --link, in the order given */
	int nlinks;
	int mem_mib;
	char append[512];
	int repeats;
	char out[PATH_MAX];
	int run_timeout_s;
	int pin;
	int series; /* write a time series per run (costs a status poll) */
	int keep_logs; /* --keep-logs: every run's logs to OUT/runIDX, not only failed ones */
	int disk_mib;      /* virtual size of the guest's local disk, 0 = none */
	int disk_fill_mib; /* written into the image before every run */
	char disk_format[8];
	int guest_writes_disk; /* --append has disk=N>0: the guest writes to it */
	int linux_guest;   /* --guest linux: the Linux test guest, not ferry-guest */
	/* set up by main */
	char work[PATH_MAX];          /* temp dir, removed at exit */
	/* ferry's agents run QEMU as this user (as in production), when the
	 * host has it (scripts/setup.sh makes ferry-qemu); else root. */
	char qemu_user[32];
	char kernel[PATH_MAX + 32]; /* the guest kernel, copied into work */
	int qemu_uid, qemu_gid;
	char template[PATH_MAX + 32]; /* the filled raw image every run copies */
	int port_base;
	char linux_boot[PATH_MAX + 32]; /* --guest linux: its boot disk, in work */
};

extern struct bench_cfg cfg;
/* Set by SIGINT/SIGTERM/SIGHUP: every wait ends early, no new run starts. */
extern volatile sig_atomic_t g_stop;

/* Parses argv into cfg and checks it. Returns 0 to go on, or -1 with the
 * exit status in *exit_code (0 after --help, 2 on a bad command line). */
int config_parse(int argc, char **argv, int *exit_code);

/* ---------- modes (modes.c) ---------- */

struct result;
struct mode;

/* How the native modes carry the migration stream (and the NBD mirror). */
enum native_path { PATH_UNIX, PATH_TCP, PATH_RELAY };

/*
 * A mode, as resolved from its --modes name. A new mode is a row in
 * modes.c's table (and, for a new knob, a field here and its use in the
 * driver): no name is compared anywhere else, except the summary's two
 * baselines (native-unix, native-tcp).
 */
struct mode {
	const char *name;   /* the --modes name; numbered: the prefix of NAME<N> */
	const char *usage;  /* how --help lists it */
	int numbered;       /* NAME<N>, N > 0: channels = N */
	int in_full;        /* run without --quick and --modes (numbered: as NAME<channels>) */
	int (*run)(const char *dir, const struct mode *m, int port, struct result *res);
	/* native modes */
	enum native_path path;
	const char *multifd_compression; /* NULL = none */
	/* both */
	int channels;    /* multifd channels, 0 = multifd off */
	/* ferry modes */
	int no_compress; /* ferryctl migrate --no-compress */
	int no_pages;    /* ferryctl migrate --page-cache 0: QEMU's stream as opaque chunks */
	int insecure;    /* the agents' insecure_transport: frames not sealed */
};

/* The row of name into *out (channels filled in for NAME<N>); -1 if unknown. */
int mode_find(const char *name, struct mode *out);
/* "a,b,..." of the modes a full run has, into buf. */
void modes_full_list(char *buf, size_t len);
/* The names for --help, wrapped like the rest of the usage text. */
void modes_usage(FILE *f);

/* ---------- children (children.c) ---------- */

void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sleep_ms(int ms);
pid_t spawn(char *const argv[], int cpu, int in_netns, const char *out, const char *err);
int child_wait(pid_t p, int ms);
void child_stop(pid_t p, int grace_ms);
int run(char *const argv[], int cpu, int in_netns, const char *out, const char *err, int timeout_s);
/* While set, run() finishes its commands despite g_stop; returns the old value. */
int children_cleaning(int on);
void kill_foreign(pid_t p);
void kill_pidfiles(const char *state_dir);
pid_t read_qemu_pid(const char *state_dir);
void rm_rf(const char *dir);
int wait_file(const char *path, int ms);
int write_text(const char *path, const char *text);
void cleanup_all(void);

/* ---------- /proc sampling (procstat.c) ---------- */

struct psample {
	pid_t pid;
	double cpu0;  /* CPU seconds at the start of the migration */
	double cpu;   /* latest */
	long hwm_kib; /* latest VmHWM */
};

void ps_begin(struct psample *s, pid_t p);
void ps_update(struct psample *s);

/* ---------- one run (run.c) ---------- */

struct result {
	char mode[32];
	char link[16]; /* the link this run used (--link may list several) */
	int rep;
	int ok, verified;
	int64_t total_ms, e2e_ms, wall_ms, pause_ms, raw, wire, iterations;
	/* ferry's page coding: pages seen, and how many went as zero,
	 * duplicate, delta (all 0 when it was off) */
	int64_t pages, pages_zero, pages_dup, pages_delta;
	double qemu_cpu, agent_cpu;
	long agent_hwm_kib;
	/* disks (--disk-mib): virtual size; the mirror's own count at the end
	 * (QEMU's job offset: zero areas count as copied though they travel as
	 * NBD write-zeroes); the data that travelled (allocated data of the
	 * source image + what the guest re-dirtied during the copy) */
	int64_t disk_total, disk_copied, disk_data;
	char disk_check[16]; /* "compare", "guest-verify", "" */
	int64_t link_bytes;  /* bytes through the namespace's loopback (both ways), -1 = no namespace */
	char error[200];
};

/* Records why the run failed in res->error; returns -1. The caller then
 * goes to its cleanup itself. */
int res_fail(struct result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int guest_serial(const char *sock, int timeout_s, int verify, const char *log);
int run_one(struct result *r, int idx, const char *mode, int rep, const char *link, FILE *jl, FILE *csv);

int run_native(const char *dir, const struct mode *m, int port, struct result *res);
int run_ferry(const char *dir, const struct mode *m, int port, struct result *res);

/* ---------- disks (disks.c) ---------- */

int disk_make_template(void);
int disk_prepare(const char *dir, char *src, char *dst, size_t len);
int64_t disk_data_bytes(const char *dir, const char *img);
int disk_check(const char *dir, const char *src, const char *dst, struct result *res, char *err, size_t len);
void disk_remove_images(const char *dir);
/* The disk data that travelled: the image's data plus what the guest wrote
 * again during the copy (beyond the virtual size in the mirror's count). */
int64_t disk_data_sent(int64_t data0, int64_t copied, int64_t total);

/* ---------- outputs (outputs.c, plots.c) ---------- */

struct stat3 {
	double med, min, max;
	int n;
};

/* What stat_of takes of a result. */
enum stat_field {
	F_TOTAL, F_PAUSE, F_WIRE, F_QEMU_CPU, F_AGENT_CPU, F_AGENT_HWM, F_ITER, F_E2E, F_DISK_DATA,
	F_LINK_BYTES, F_RAW
};

void links_str(char *buf, size_t len);
void json_line(FILE *f, const struct result *r);
void csv_header(FILE *f);
void csv_line(FILE *f, const struct result *r);
struct stat3 stat_of(const struct result *rs, int n, const char *mode, enum stat_field field);
int link_runs(const struct result *rs, int n, const char *link, struct result *out);
void write_summary(const struct result *rs, int n);
void write_plots(const struct result *rs, int n);
/* --series of one run: the open .dat (NULL without --series), its plot */
FILE *series_open(const char *link, const char *mode, int rep);
void series_plot(const char *link, const char *mode, int rep);

/* ---------- link (netns.c) ---------- */

int link_known(const char *name);
int netns_create(const char *link);
int netns_del(void);
/* The current namespace's name, "" when there is none (lo). */
const char *netns_name(void);
int64_t link_bytes(const char *dir);

/* ---------- json-c helpers (qmpwatch.c) ---------- */

struct json_object;
int64_t jint(struct json_object *o, const char *k);
const char *jstr(struct json_object *o, const char *k);

/* ---------- the Linux guest (linux.c) ---------- */

/* QEMU arguments' storage for one side's Linux guest */
struct linux_args {
	char vars[PATH_MAX + 32];
	char code[PATH_MAX + 64];
	char vars_drive[PATH_MAX + 96];
	char boot[PATH_MAX + 160];
};

/* The guest's boot disk from its cache into work (cfg.linux_boot), its
 * loader entry carrying cfg.append. 0, or -1 after saying why. */
int linux_guest_setup(void);
/* OVMF (side name's own copy of the variables, in dir) and the boot disk
 * as argv[n...]; the new n, or -1. The strings live in *a. */
int linux_qemu_args(struct linux_args *a, const char *dir, const char *name, char **argv, int n);
/* The VM spec of the Linux guest into buf. */
void linux_spec(char *buf, size_t len);

#endif
