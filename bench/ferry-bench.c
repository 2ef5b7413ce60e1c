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
 * with the images compared. Every wait is bounded; every child, the network
 * namespace, the images and the work directory are removed on every exit
 * path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/net.h"
#include "util/timeutil.h"

#define MAX_CHILD 64
#define MAX_MODES 16
#define MAX_RUNS 512
#define MAX_LINKS 4 /* lo, 10gbit, 1gbit, 100mbit, each at most once */

/* ---------- configuration ---------- */

static struct {
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
	int disk_mib;      /* virtual size of the guest's local disk, 0 = none */
	int disk_fill_mib; /* written into the image before every run */
	char disk_format[8];
	int guest_writes_disk; /* --append has disk=N>0: the guest writes to it */
} cfg;

static char g_template[PATH_MAX + 32]; /* the filled raw image every run copies */

static char g_work[PATH_MAX];    /* temp dir, removed at exit */
static char g_netns[64];         /* "" = no namespace */
static char g_link[16];          /* the link the current runs use */
static volatile sig_atomic_t g_stop;
static int g_cleaning; /* cleanup's own commands run to completion despite g_stop */
static int g_port_base;

static void sig_handler(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void msg(const char *fmt, ...)
{
	va_list ap;
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "[%02d:%02d:%02d] ", tm.tm_hour, tm.tm_min, tm.tm_sec);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---------- children ---------- */

static pid_t g_children[MAX_CHILD];

static void child_track(pid_t p)
{
	for (int i = 0; i < MAX_CHILD; i++)
		if (!g_children[i]) {
			g_children[i] = p;
			return;
		}
}

static void child_untrack(pid_t p)
{
	for (int i = 0; i < MAX_CHILD; i++)
		if (g_children[i] == p)
			g_children[i] = 0;
}

/*
 * Starts argv (in the namespace when one exists, pinned to cpu >= 0),
 * stdout/stderr to files (NULL = /dev/null). Returns the pid: `ip netns
 * exec` and `taskset` exec in place, so it is the program's own pid.
 */
static pid_t spawn(char *const argv[], int cpu, int in_netns, const char *out, const char *err)
{
	char *full[64];
	char cpus[16];
	int n = 0;
	pid_t p;

	if (in_netns && g_netns[0]) {
		full[n++] = "ip";
		full[n++] = "netns";
		full[n++] = "exec";
		full[n++] = g_netns;
	}
	if (cpu >= 0 && cfg.pin) {
		snprintf(cpus, sizeof(cpus), "%d", cpu);
		full[n++] = "taskset";
		full[n++] = "-c";
		full[n++] = cpus;
	}
	for (int i = 0; argv[i] && n < 63; i++)
		full[n++] = argv[i];
	full[n] = NULL;

	p = fork();
	if (p < 0) {
		msg("fork: %s", strerror(errno));
		return -1;
	}
	if (p == 0) {
		int fd;

		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 1);
		fd = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execvp(full[0], full);
		_exit(127);
	}
	child_track(p);
	return p;
}

/* Waits for pid up to ms; returns its exit status (0..255, 128+sig) or -1 if still running. */
static int child_wait(pid_t p, int ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)ms;
	int st;

	for (;;) {
		pid_t r = waitpid(p, &st, WNOHANG);

		if (r == p) {
			child_untrack(p);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (r < 0) {
			child_untrack(p);
			return -2;
		}
		if (time_mono_ms() >= end)
			return -1;
		sleep_ms(20);
	}
}

static void child_stop(pid_t p, int grace_ms)
{
	if (p <= 0)
		return;
	kill(p, SIGTERM);
	if (child_wait(p, grace_ms) == -1) {
		kill(p, SIGKILL);
		child_wait(p, 5000);
	}
}

/* Runs argv to completion (bounded); returns its exit status, -1 on timeout or stop. */
static int run(char *const argv[], int cpu, int in_netns, const char *out, const char *err, int timeout_s)
{
	pid_t p = spawn(argv, cpu, in_netns, out, err);
	uint64_t end = time_mono_ms() + (uint64_t)timeout_s * 1000;

	if (p < 0)
		return -1;
	for (;;) {
		int r = child_wait(p, 100);

		if (r != -1)
			return r;
		if ((g_stop && !g_cleaning) || time_mono_ms() >= end) {
			child_stop(p, 1000);
			return -1;
		}
	}
}

/* A process not our child (a QEMU ferryd started): kill and wait until gone. */
static void kill_foreign(pid_t p)
{
	if (p <= 0)
		return;
	kill(p, SIGKILL);
	for (int i = 0; i < 250 && kill(p, 0) == 0; i++)
		sleep_ms(20);
}

static void kill_pidfiles(const char *state_dir)
{
	char path[PATH_MAX + 64];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/vms", state_dir);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char pf[PATH_MAX + 320];
		FILE *f;
		long pid = 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(pf, sizeof(pf), "%s/%s/qemu.pid", path, e->d_name);
		f = fopen(pf, "r");
		if (!f)
			continue;
		if (fscanf(f, "%ld", &pid) == 1)
			kill_foreign((pid_t)pid);
		fclose(f);
	}
	closedir(d);
}

static void rm_rf(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};

	if (dir[0])
		run(argv, -1, 0, NULL, NULL, 60);
}

/*
 * Deletes the namespace. Between links it runs outside cleanup_all, so it
 * sets g_cleaning itself: a signal arriving then must not cut `ip netns
 * del` short. The name is forgotten only once deleted: a failed delete
 * ends the loop over links (the next link reuses the name) and
 * cleanup_all tries again.
 */
static int netns_del(void)
{
	char *argv[] = {"ip", "netns", "del", g_netns, NULL};
	int was = g_cleaning, r;

	if (!g_netns[0])
		return 0;
	g_cleaning = 1;
	r = run(argv, -1, 0, NULL, NULL, 30);
	g_cleaning = was;
	if (r != 0) {
		msg("warning: ip netns del %s failed (%d)", g_netns, r);
		return -1;
	}
	g_netns[0] = 0;
	return 0;
}

static void cleanup_all(void)
{
	char state[PATH_MAX + 32];

	g_cleaning = 1;
	for (int i = 0; i < MAX_CHILD; i++)
		if (g_children[i])
			child_stop(g_children[i], 3000);
	/* QEMUs ferryd started outlive it by design: kill those left in run dirs. */
	if (g_work[0]) {
		DIR *d = opendir(g_work);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			if (strncmp(e->d_name, "run", 3))
				continue;
			snprintf(state, sizeof(state), "%s/%s/node-a/state", g_work, e->d_name);
			kill_pidfiles(state);
			snprintf(state, sizeof(state), "%s/%s/node-b/state", g_work, e->d_name);
			kill_pidfiles(state);
		}
		if (d)
			closedir(d);
	}
	netns_del();
	rm_rf(g_work);
	g_work[0] = 0;
}

/* ---------- /proc sampling ---------- */

struct psample {
	pid_t pid;
	double cpu0;  /* CPU seconds at the start of the migration */
	double cpu;   /* latest */
	long hwm_kib; /* latest VmHWM */
};

static double proc_cpu_s(pid_t p)
{
	char path[64], buf[1024], *s;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	s = strrchr(buf, ')');
	if (!s)
		return -1;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_hwm_kib(pid_t p)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6)) {
			v = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void ps_begin(struct psample *s, pid_t p)
{
	s->pid = p;
	s->cpu0 = p > 0 ? proc_cpu_s(p) : 0;
	if (s->cpu0 < 0)
		s->cpu0 = 0;
	s->cpu = s->cpu0;
	s->hwm_kib = 0;
}

static void ps_update(struct psample *s)
{
	double c;
	long h;

	if (s->pid <= 0)
		return;
	c = proc_cpu_s(s->pid);
	h = proc_hwm_kib(s->pid);
	if (c >= 0)
		s->cpu = c;
	if (h > s->hwm_kib)
		s->hwm_kib = h;
}

/* ---------- a small QMP client (events are recorded while reading) ---------- */

struct qmp {
	int fd;
	char buf[1 << 18];
	size_t len;
	int64_t stop_us, resume_us, completed_us;
	/* the native disk sequence: what the events said (job "mirror-root") */
	int pre_switchover; /* MIGRATION status pre-switchover seen */
	int job_ready;      /* BLOCK_JOB_READY */
	int job_end;        /* 1 BLOCK_JOB_COMPLETED, 2 BLOCK_JOB_CANCELLED */
	int64_t job_offset; /* offset in the end event */
	char job_error[160];
};

#define NATIVE_JOB "mirror-root"

/* Records what the bench acts on from one event line. */
static void qmp_note_event(struct qmp *q, struct json_object *j, const char *name, int64_t us)
{
	struct json_object *data = NULL, *v;

	json_object_object_get_ex(j, "data", &data);
	if (!strcmp(name, "STOP") && !q->stop_us)
		q->stop_us = us;
	else if (!strcmp(name, "RESUME"))
		q->resume_us = us;
	else if (!strcmp(name, "MIGRATION") && json_object_object_get_ex(data, "status", &v)) {
		if (!strcmp(json_object_get_string(v), "completed"))
			q->completed_us = us;
		if (!strcmp(json_object_get_string(v), "pre-switchover"))
			q->pre_switchover = 1;
	} else if (!strncmp(name, "BLOCK_JOB_", 10) && json_object_object_get_ex(data, "device", &v) &&
		   !strcmp(json_object_get_string(v), NATIVE_JOB)) {
		if (!strcmp(name, "BLOCK_JOB_READY"))
			q->job_ready = 1;
		if (!strcmp(name, "BLOCK_JOB_COMPLETED") || !strcmp(name, "BLOCK_JOB_CANCELLED")) {
			q->job_end = name[10] == 'C' && name[11] == 'O' ? 1 : 2;
			if (json_object_object_get_ex(data, "offset", &v))
				q->job_offset = json_object_get_int64(v);
			if (json_object_object_get_ex(data, "error", &v))
				snprintf(q->job_error, sizeof(q->job_error), "%s", json_object_get_string(v));
		}
	}
}

/* One JSON line from QMP, NULL on timeout/EOF. Records STOP and RESUME. */
static struct json_object *qmp_read(struct qmp *q, uint64_t deadline)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl) {
			struct json_object *j;
			struct json_object *ev, *ts, *v;
			int64_t us = 0;

			*nl = 0;
			j = json_tokener_parse(q->buf);
			q->len -= (size_t)(nl + 1 - q->buf);
			memmove(q->buf, nl + 1, q->len);
			if (!j)
				continue;
			if (json_object_object_get_ex(j, "event", &ev) &&
			    json_object_object_get_ex(j, "timestamp", &ts)) {
				if (json_object_object_get_ex(ts, "seconds", &v))
					us = json_object_get_int64(v) * 1000000;
				if (json_object_object_get_ex(ts, "microseconds", &v))
					us += json_object_get_int64(v);
				qmp_note_event(q, j, json_object_get_string(ev), us);
			}
			return j;
		}
		{
			uint64_t now = time_mono_ms();
			struct pollfd p = {.fd = q->fd, .events = POLLIN};
			ssize_t r;

			if (now >= deadline || g_stop)
				return NULL;
			if (q->len >= sizeof(q->buf) - 1)
				return NULL;
			if (poll(&p, 1, (int)(deadline - now > 200 ? 200 : deadline - now)) <= 0)
				continue;
			r = read(q->fd, q->buf + q->len, sizeof(q->buf) - 1 - q->len);
			if (r <= 0)
				return NULL;
			q->len += (size_t)r;
		}
	}
}

/* Sends a command; returns its "return" (a new reference) or NULL. */
static struct json_object *qmp_exec(struct qmp *q, const char *cmd, const char *args, int timeout_s)
{
	char line[2048];
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_s * 1000;
	int n;

	n = snprintf(line, sizeof(line), "{\"execute\":\"%s\"%s%s}\n", cmd, args ? ",\"arguments\":" : "",
		     args ? args : "");
	if (write(q->fd, line, (size_t)n) != n)
		return NULL;
	for (;;) {
		struct json_object *j = qmp_read(q, deadline), *r;

		if (!j)
			return NULL;
		if (json_object_object_get_ex(j, "return", &r)) {
			json_object_get(r);
			json_object_put(j);
			return r;
		}
		if (json_object_object_get_ex(j, "error", &r)) {
			msg("qmp %s: %s", cmd, json_object_to_json_string(r));
			json_object_put(j);
			return NULL;
		}
		json_object_put(j);
	}
}

static int qmp_ok(struct qmp *q, const char *cmd, const char *args)
{
	struct json_object *r = qmp_exec(q, cmd, args, 30);

	if (!r)
		return -1;
	json_object_put(r);
	return 0;
}

/*
 * Reads what QEMU sends for up to ms, returning early after a MIGRATION or
 * BLOCK_JOB_ event: the native loops react to events as promptly as ferry's
 * monitor does, and poll only as a fallback. Sleeps out the rest when the
 * socket is gone, so a caller's loop never spins.
 */
static void qmp_idle(struct qmp *q, int ms)
{
	uint64_t dl = time_mono_ms() + (uint64_t)ms;
	struct json_object *j;

	while ((j = qmp_read(q, dl))) {
		struct json_object *ev;
		int stop = json_object_object_get_ex(j, "event", &ev) &&
			   (!strcmp(json_object_get_string(ev), "MIGRATION") ||
			    !strncmp(json_object_get_string(ev), "BLOCK_JOB_", 10));

		json_object_put(j);
		if (stop)
			return;
	}
	if (!g_stop && time_mono_ms() < dl)
		sleep_ms((int)(dl - time_mono_ms()));
}

static struct qmp *qmp_open(const char *path, int timeout_s)
{
	struct qmp *q = calloc(1, sizeof(*q));
	uint64_t end = time_mono_ms() + (uint64_t)timeout_s * 1000;
	struct json_object *g;

	if (!q)
		return NULL;
	while (net_connect_unix(path, 0, &q->fd) < 0) {
		if (time_mono_ms() >= end || g_stop) {
			free(q);
			return NULL;
		}
		sleep_ms(20); /* QEMU creates the socket at start; nothing to wait on before */
	}
	g = qmp_read(q, end); /* greeting */
	if (!g || qmp_ok(q, "qmp_capabilities", NULL) < 0) {
		if (g)
			json_object_put(g);
		close(q->fd);
		free(q);
		return NULL;
	}
	json_object_put(g);
	return q;
}

static void qmp_close(struct qmp *q)
{
	if (q) {
		close(q->fd);
		free(q);
	}
}

static int64_t jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* ---------- one run ---------- */

struct result {
	char mode[32];
	char link[16]; /* the link this run used (--link may list several) */
	int rep;
	int ok, verified;
	int64_t total_ms, e2e_ms, wall_ms, pause_ms, raw, wire, iterations;
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

static int wait_file(const char *path, int ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)ms;

	while (access(path, F_OK) != 0) {
		if (time_mono_ms() >= end || g_stop)
			return -1;
		sleep_ms(20);
	}
	return 0;
}

/* ---------- disks ---------- */

/*
 * The disk content every run starts from, made once per invocation: a raw
 * image of --disk-mib, whose first --disk-fill-mib hold half random bytes
 * (from /dev/urandom) and half text-like lines (a few sentences repeated
 * with a line number: LZ4 shrinks them a lot), the rest a hole. Each run
 * converts it into its own image, so every mode copies identical bytes.
 */
static int disk_make_template(void)
{
	static const char *const lines[] = {
		"the guest keeps running while the copy goes on over the link",
		"a block that is written again is sent again before the switch",
		"at the end of the mirror the target holds the same sectors",
		"the dirty rate of the disk and of the memory add up",
		"ferry relays the stream of the mirror between the two hosts",
		"if it does not converge the copy mode changes to write-blocking",
		"pages per second, sectors per second, bytes on the wire",
		"one of the disks of the virtual machine, local to this host",
	};
	const size_t chunk = 1 << 20;
	uint64_t fill = (uint64_t)cfg.disk_fill_mib << 20, rnd = fill / 2, done = 0;
	unsigned line = 0;
	char *buf = malloc(chunk);
	int fd = -1, ur = -1, r = -1;

	snprintf(g_template, sizeof(g_template), "%s/disk-template.raw", g_work);
	if (!buf)
		goto out;
	fd = open(g_template, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ur = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ur < 0 || ftruncate(fd, (off_t)cfg.disk_mib << 20) < 0)
		goto out;
	while (done < rnd) {
		size_t n = rnd - done < chunk ? (size_t)(rnd - done) : chunk;
		ssize_t got = read(ur, buf, n);

		if (got <= 0 || fs_write_all(fd, buf, (size_t)got) < 0)
			goto out;
		done += (uint64_t)got;
	}
	while (done < fill) {
		size_t n = fill - done < chunk ? (size_t)(fill - done) : chunk, used = 0;

		while (used < n) {
			char l[160];
			int len = snprintf(l, sizeof(l), "%09u %s\n", line, lines[line % 8]);
			size_t k = (size_t)len < n - used ? (size_t)len : n - used;

			memcpy(buf + used, l, k);
			used += k;
			line++;
		}
		if (fs_write_all(fd, buf, n) < 0)
			goto out;
		done += n;
	}
	r = fsync(fd);
out:
	if (r < 0)
		msg("cannot write the disk template %s: %s", g_template, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (ur >= 0)
		close(ur);
	free(buf);
	return r;
}

/* This run's source image (the template in --disk-format) and, for native
 * modes, a fresh target image of the same virtual size. */
static int disk_prepare(const char *dir, char *src, char *dst, size_t len)
{
	char size[32], log[PATH_MAX + 32];
	char *conv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", cfg.disk_format, g_template, src, NULL};
	char *create[] = {"qemu-img", "create", "-q", "-f", cfg.disk_format, dst, size, NULL};

	snprintf(src, len, "%s/src.%s", dir, cfg.disk_format);
	snprintf(size, sizeof(size), "%dM", cfg.disk_mib);
	snprintf(log, sizeof(log), "%s/qemu-img.log", dir);
	if (run(conv, -1, 0, log, log, 600) != 0)
		return -1;
	if (dst) {
		snprintf(dst, len, "%s/dst.%s", dir, cfg.disk_format);
		if (run(create, -1, 0, log, log, 60) != 0)
			return -1;
	}
	return 0;
}

/* Bytes of img that hold data (qemu-img map): what a mirror sends as data;
 * the rest reads as zeroes and goes as NBD write-zeroes. -1 on error. */
static int64_t disk_data_bytes(const char *dir, const char *img)
{
	char js[PATH_MAX + 32];
	char *argv[] = {"qemu-img", "map", "--output=json", "-f", cfg.disk_format, (char *)img, NULL};
	struct json_object *a;
	int64_t sum = -1;

	snprintf(js, sizeof(js), "%s/map.json", dir);
	unlink(js);
	if (run(argv, -1, 0, js, NULL, 120) != 0)
		return -1;
	a = json_object_from_file(js);
	if (a && json_object_is_type(a, json_type_array)) {
		sum = 0;
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *e = json_object_array_get_idx(a, i), *d, *z;

			if (json_object_object_get_ex(e, "data", &d) && json_object_get_boolean(d) &&
			    !(json_object_object_get_ex(e, "zero", &z) && json_object_get_boolean(z)))
				sum += jint(e, "length");
		}
	}
	if (a)
		json_object_put(a);
	unlink(js);
	return sum;
}

/*
 * After a run whose QEMUs are stopped: the target's image must equal the
 * source's, unless the guest writes to its disk, in which case it went on
 * writing on the target and only its own verify (every sector it wrote)
 * says anything. 0 = fine, -1 = differ or cannot compare (why in err).
 */
static int disk_check(const char *dir, const char *src, const char *dst, struct result *res, char *err,
		      size_t len)
{
	char log[PATH_MAX + 32];
	char *argv[] = {"qemu-img", "compare", "-U", "-f", cfg.disk_format, "-F", cfg.disk_format,
			(char *)src, (char *)dst, NULL};
	int r;

	if (cfg.guest_writes_disk) {
		snprintf(res->disk_check, sizeof(res->disk_check), "guest-verify");
		return 0;
	}
	snprintf(res->disk_check, sizeof(res->disk_check), "compare");
	snprintf(log, sizeof(log), "%s/compare.log", dir);
	r = run(argv, -1, 0, log, log, 600);
	if (r == 0)
		return 0;
	snprintf(err, len, r == 1 ? "disk images differ (qemu-img compare)" : "qemu-img compare failed (%d)", r);
	return -1;
}

/* Bytes through the namespace's loopback so far (tx; on lo every byte is
 * also rx once): the emulated link, both directions, TCP/IP headers
 * included. -1 without a namespace. */
static int64_t link_bytes(const char *dir)
{
	char js[PATH_MAX + 32];
	char *argv[] = {"ip", "-n", g_netns, "-s", "-j", "link", "show", "dev", "lo", NULL};
	struct json_object *a, *s = NULL, *tx = NULL;
	int64_t v = -1;

	if (!g_netns[0])
		return -1;
	snprintf(js, sizeof(js), "%s/link.json", dir);
	unlink(js);
	if (run(argv, -1, 0, js, NULL, 10) != 0)
		return -1;
	a = json_object_from_file(js);
	if (a && json_object_is_type(a, json_type_array) && json_object_array_length(a) == 1 &&
	    json_object_object_get_ex(json_object_array_get_idx(a, 0), "stats64", &s) &&
	    json_object_object_get_ex(s, "tx", &tx))
		v = jint(tx, "bytes");
	if (a)
		json_object_put(a);
	unlink(js);
	return v;
}

/* Removes a run's images (before its logs are kept after a failure). */
static void disk_remove_images(const char *dir)
{
	static const char *const names[] = {"src.raw", "src.qcow2", "dst.raw", "dst.qcow2"};
	char path[PATH_MAX + 64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/node-a/state/disks", dir);
	rm_rf(path);
	snprintf(path, sizeof(path), "%s/node-b/state/disks", dir);
	rm_rf(path);
}

static int guest_serial(const char *sock, int timeout_s, int verify, const char *log)
{
	char gs[PATH_MAX + 32], to[16];

	snprintf(gs, sizeof(gs), "%s/guest/guest-serial", cfg.build);
	snprintf(to, sizeof(to), "%d", timeout_s);
	if (verify) {
		char *argv[] = {gs, "--socket", (char *)sock, "--timeout", to, "--send", "verify", "--expect",
				"VERIFY OK", "--fail", "VERIFY FAIL", NULL};

		return run(argv, -1, 0, log, log, timeout_s + 10);
	} else {
		char *argv[] = {gs, "--socket", (char *)sock, "--timeout", to, "--expect", "FERRY-GUEST READY",
				"--expect-any", "HB ", NULL};

		return run(argv, -1, 0, log, log, timeout_s + 10);
	}
}

static pid_t start_qemu(const char *dir, const char *name, int cpu, const char *incoming, const char *img)
{
	char mem[16], kernel[PATH_MAX + 32], ser[PATH_MAX + 96], qmp[PATH_MAX + 96], log[PATH_MAX + 32];
	char blk[PATH_MAX + 160];
	char *argv[48];
	int n = 0;

	snprintf(mem, sizeof(mem), "%d", cfg.mem_mib);
	snprintf(kernel, sizeof(kernel), "%s/guest/ferry-guest.elf", cfg.build);
	snprintf(ser, sizeof(ser), "socket,id=ser0,path=%s/%s.serial,server=on,wait=off", dir, name);
	snprintf(qmp, sizeof(qmp), "socket,id=qmp,path=%s/%s.qmp,server=on,wait=off", dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	argv[n++] = "qemu-system-x86_64";
	argv[n++] = "-accel";
	argv[n++] = "tcg";
	argv[n++] = "-machine";
	argv[n++] = "pc";
	argv[n++] = "-cpu";
	argv[n++] = "qemu64";
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-smp";
	argv[n++] = "1";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-uuid";
	argv[n++] = "7b4ad1e6-0b1e-4d0c-9a51-0f6c2f2bd9a1";
	argv[n++] = "-kernel";
	argv[n++] = kernel;
	argv[n++] = "-append";
	argv[n++] = cfg.append;
	argv[n++] = "-chardev";
	argv[n++] = ser;
	argv[n++] = "-serial";
	argv[n++] = "chardev:ser0";
	argv[n++] = "-chardev";
	argv[n++] = qmp;
	argv[n++] = "-mon";
	argv[n++] = "chardev=qmp,mode=control";
	if (img) {
		/* the shape engine/qemu_cmdline.c gives a disk named root */
		snprintf(blk, sizeof(blk),
			 "driver=%s,node-name=disk-root,file.driver=file,file.node-name=file-root,file.filename=%s",
			 cfg.disk_format, img);
		argv[n++] = "-blockdev";
		argv[n++] = blk;
		argv[n++] = "-device";
		argv[n++] = "ide-hd,drive=disk-root,bus=ide.0,unit=0,id=dev-root";
	}
	if (incoming) {
		argv[n++] = "-incoming";
		argv[n++] = (char *)incoming;
	}
	argv[n] = NULL;
	return spawn(argv, cpu, 1, log, log);
}

#define FAIL(...)                                                       \
	do {                                                            \
		snprintf(res->error, sizeof(res->error), __VA_ARGS__);  \
		goto out;                                               \
	} while (0)

/* OUT/series-MODE-REP.EXT; with several links OUT/series-LINK-MODE-REP.EXT,
 * since the same mode and repeat then run once per link. */
static void series_path(char *buf, size_t len, const char *mode, int rep, const char *ext)
{
	if (cfg.nlinks > 1)
		snprintf(buf, len, "%s/series-%s-%s-%d.%s", cfg.out, g_link, mode, rep, ext);
	else
		snprintf(buf, len, "%s/series-%s-%d.%s", cfg.out, mode, rep, ext);
}

/* --series: "t_ms remaining_bytes dirty_Bps copy_Bps" */
static FILE *series_open(const char *mode, int rep)
{
	char path[PATH_MAX + 96];
	FILE *f;

	if (!cfg.series)
		return NULL;
	series_path(path, sizeof(path), mode, rep, "dat");
	f = fopen(path, "w");
	if (f)
		fprintf(f, "# t_ms remaining_bytes dirty_Bps copy_Bps (%s, repeat %d, link %s)\n", mode, rep, g_link);
	return f;
}

static void series_plot(const char *mode, int rep)
{
	char dat[PATH_MAX + 96], png[PATH_MAX + 96], gp[PATH_MAX + 96], lg[PATH_MAX + 32];
	FILE *f;

	if (!cfg.series)
		return;
	series_path(dat, sizeof(dat), mode, rep, "dat");
	series_path(png, sizeof(png), mode, rep, "png");
	series_path(gp, sizeof(gp), mode, rep, "gp");
	snprintf(lg, sizeof(lg), "%s/gnuplot.log", cfg.out);
	f = fopen(gp, "w");
	if (!f)
		return;
	fprintf(f,
		"set terminal pngcairo size 900,500 noenhanced\nset output '%s'\n"
		"set title '%s repeat %d, link %s'\nset xlabel 's'\nset ylabel 'MiB/s'\nset y2label 'MiB remaining'\n"
		"set ytics nomirror\nset y2tics\nset grid\nset key top right\n"
		"plot '%s' using ($1/1000):($4/1048576) with lines lw 2 title 'copy rate', "
		"'' using ($1/1000):($3/1048576) with lines lw 2 title 'dirty rate', "
		"'' using ($1/1000):($2/1048576) axes x1y2 with lines lw 2 dt 2 title 'remaining'\n",
		png, mode, rep, g_link, dat);
	fclose(f);
	{
		char *argv[] = {"gnuplot", gp, NULL};

		run(argv, -1, 0, lg, lg, 60);
	}
}

/*
 * The storage sequence libvirt uses, for one local disk,
 * directly between the two QEMUs: the target exports its fresh image over
 * NBD (writable), the source mirrors into an NBD client node. nbd_srv is
 * the target's nbd-server-start address (SocketAddressLegacy), nbd_cli the
 * source's blockdev-add server (SocketAddress). Returns 0 once the job is
 * READY, -1 with the reason in err; t_mirror: just before blockdev-add
 * (where ferry's totalMs starts).
 */
static int native_mirror(struct qmp *qs, struct qmp *qd, const char *nbd_srv, const char *nbd_cli, uint64_t end,
			 uint64_t *t_mirror, char *err, size_t len)
{
	char args[PATH_MAX + 256];

	snprintf(args, sizeof(args), "{\"addr\":%s}", nbd_srv);
	if (qmp_ok(qd, "nbd-server-start", args))
		return snprintf(err, len, "nbd-server-start on the target failed"), -1;
	if (qmp_ok(qd, "block-export-add",
		   "{\"type\":\"nbd\",\"id\":\"export-root\",\"node-name\":\"disk-root\",\"name\":\"root\","
		   "\"writable\":true}"))
		return snprintf(err, len, "block-export-add on the target failed"), -1;
	*t_mirror = time_mono_ms();
	snprintf(args, sizeof(args), "{\"driver\":\"nbd\",\"node-name\":\"nbd-root\",\"server\":%s,\"export\":\"root\"}",
		 nbd_cli);
	if (qmp_ok(qs, "blockdev-add", args))
		return snprintf(err, len, "blockdev-add of the NBD client on the source failed"), -1;
	if (qmp_ok(qs, "blockdev-mirror",
		   "{\"job-id\":\"" NATIVE_JOB "\",\"device\":\"disk-root\",\"target\":\"nbd-root\",\"sync\":\"full\","
		   "\"copy-mode\":\"background\"}"))
		return snprintf(err, len, "blockdev-mirror failed"), -1;
	for (;;) {
		struct json_object *jobs;
		int present = 0, ready = 0;

		if (qs->job_end)
			return snprintf(err, len, "the mirror ended before it was in sync%s%s",
					qs->job_error[0] ? ": " : "", qs->job_error), -1;
		jobs = qmp_exec(qs, "query-block-jobs", NULL, 30);
		if (!jobs)
			return snprintf(err, len, "query-block-jobs failed"), -1;
		for (size_t i = 0; i < json_object_array_length(jobs); i++) {
			struct json_object *j = json_object_array_get_idx(jobs, i), *v;

			if (strcmp(jstr(j, "device"), NATIVE_JOB))
				continue;
			present = 1;
			ready = json_object_object_get_ex(j, "ready", &v) && json_object_get_boolean(v);
		}
		json_object_put(jobs);
		if (ready || qs->job_ready)
			return 0;
		if (!present)
			return snprintf(err, len, "the mirror job vanished before it was in sync"), -1;
		if (g_stop)
			return snprintf(err, len, "interrupted"), -1;
		if (time_mono_ms() >= end)
			return snprintf(err, len, "the mirror was not in sync within %d s", cfg.run_timeout_s), -1;
		qmp_idle(qs, 100); /* BLOCK_JOB_READY ends the wait early */
	}
}

/*
 * At pre-switchover (the guest is stopped): a graceful block-job-cancel on
 * the READY mirror copies what is still dirty and ends with COMPLETED, the
 * target image then complete; drop the NBD client node and let QEMU send
 * the device state. *copied: the job's offset in its end event.
 */
static int native_switchover(struct qmp *qs, int64_t *copied, char *err, size_t len)
{
	uint64_t end = time_mono_ms() + 120000;

	if (qmp_ok(qs, "block-job-cancel", "{\"device\":\"" NATIVE_JOB "\"}"))
		return snprintf(err, len, "block-job-cancel failed"), -1;
	while (!qs->job_end) {
		struct json_object *jobs = qmp_exec(qs, "query-block-jobs", NULL, 30);
		int present = 0;

		if (!jobs)
			return snprintf(err, len, "query-block-jobs failed"), -1;
		for (size_t i = 0; i < json_object_array_length(jobs); i++)
			present |= !strcmp(jstr(json_object_array_get_idx(jobs, i), "device"), NATIVE_JOB);
		json_object_put(jobs);
		/* the end event comes before a reply that no longer lists the job */
		if (!present)
			break;
		if (g_stop || time_mono_ms() >= end)
			return snprintf(err, len, "the mirror did not end within 120 s of its cancel"), -1;
		qmp_idle(qs, 20);
	}
	if (qs->job_end != 1 || qs->job_error[0])
		return snprintf(err, len, "the mirror %s%s%s",
				qs->job_end == 2 ? "was cancelled before it was in sync" :
				qs->job_end == 1 ? "failed" : "ended without an event",
				qs->job_error[0] ? ": " : "", qs->job_error), -1;
	*copied = qs->job_offset;
	if (qmp_ok(qs, "blockdev-del", "{\"node-name\":\"nbd-root\"}"))
		return snprintf(err, len, "blockdev-del of the NBD client failed"), -1;
	if (qmp_ok(qs, "migrate-continue", "{\"state\":\"pre-switchover\"}"))
		return snprintf(err, len, "migrate-continue failed"), -1;
	return 0;
}

/* socat from `from` to `to` on cpu, logging into dir/relay.log */
static pid_t socat(const char *dir, const char *from, const char *to, int cpu)
{
	char lg[PATH_MAX + 32];
	char *argv[] = {"socat", (char *)from, (char *)to, NULL};

	snprintf(lg, sizeof(lg), "%s/relay.log", dir);
	return spawn(argv, cpu, 1, lg, lg);
}

static void run_native(const char *dir, const char *mode, int port, struct result *res)
{
	char path[PATH_MAX + 64], uri[PATH_MAX + 64], args[PATH_MAX + 128], err[256];
	char img_src[PATH_MAX + 32] = "", img_dst[PATH_MAX + 32] = "";
	char nbd_srv[PATH_MAX + 96] = "", nbd_cli[PATH_MAX + 96] = "";
	pid_t src = 0, dst = 0, relay_s = 0, relay_t = 0, nrelay_s = 0, nrelay_t = 0;
	struct qmp *qs = NULL, *qd = NULL;
	struct psample ps[6];
	int multifd = !strncmp(mode, "native-multifd", 14);
	int zstd = !strcmp(mode, "native-multifd-zstd");
	int relay = !strcmp(mode, "plain-relay");
	int tcp = multifd || !strcmp(mode, "native-tcp");
	int disk = cfg.disk_mib > 0, switched = 0;
	int64_t data0 = 0, link0 = -1;
	struct json_object *st = NULL;
	uint64_t t0, t0_real, end, t_mirror = 0, t_migrate;
	FILE *ser = series_open(mode, res->rep);

	memset(ps, 0, sizeof(ps));
	if (disk) {
		if (disk_prepare(dir, img_src, img_dst, sizeof(img_src)) < 0)
			FAIL("cannot prepare the disk images (see qemu-img.log)");
		data0 = disk_data_bytes(dir, img_src);
		if (data0 < 0)
			FAIL("qemu-img map of the source image failed");
		res->disk_total = (int64_t)cfg.disk_mib << 20;
	}
	src = start_qemu(dir, "src", 0, NULL, disk ? img_src : NULL);
	snprintf(path, sizeof(path), "%s/src.serial", dir);
	if (src < 0 || wait_file(path, 10000) < 0)
		FAIL("source QEMU did not start");
	snprintf(args, sizeof(args), "%s/serial-src.log", dir);
	if (guest_serial(path, cfg.run_timeout_s, 0, args) != 0)
		FAIL("guest did not boot on the source");
	dst = start_qemu(dir, "dst", 1, "defer", disk ? img_dst : NULL);
	snprintf(path, sizeof(path), "%s/src.qmp", dir);
	qs = qmp_open(path, 20);
	snprintf(path, sizeof(path), "%s/dst.qmp", dir);
	qd = qmp_open(path, 20);
	if (!qs || !qd)
		FAIL("cannot reach QMP");
	/* pause-before-switchover is the source's alone: it stops there for
	 * the disks' last copy */
	snprintf(args, sizeof(args), "{\"capabilities\":[{\"capability\":\"events\",\"state\":true}%s%s]}",
		 multifd ? ",{\"capability\":\"multifd\",\"state\":true}" : "",
		 disk ? ",{\"capability\":\"pause-before-switchover\",\"state\":true}" : "");
	if (qmp_ok(qs, "migrate-set-capabilities", args))
		FAIL("migrate-set-capabilities failed");
	snprintf(args, sizeof(args), "{\"capabilities\":[{\"capability\":\"events\",\"state\":true}%s]}",
		 multifd ? ",{\"capability\":\"multifd\",\"state\":true}" : "");
	if (qmp_ok(qd, "migrate-set-capabilities", args))
		FAIL("migrate-set-capabilities failed");
	if (qmp_ok(qs, "migrate-set-parameters", "{\"max-bandwidth\":1099511627776,\"downtime-limit\":300}"))
		FAIL("migrate-set-parameters failed");
	if (multifd) {
		snprintf(args, sizeof(args), "{\"multifd-channels\":2%s}",
			 zstd ? ",\"multifd-compression\":\"zstd\"" : "");
		if (qmp_ok(qs, "migrate-set-parameters", args) || qmp_ok(qd, "migrate-set-parameters", args))
			FAIL("multifd parameters failed");
	}
	if (tcp)
		snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", port);
	else
		snprintf(uri, sizeof(uri), "unix:%s/mig.sock", dir);
	snprintf(args, sizeof(args), "{\"uri\":\"%s\"}", uri);
	if (qmp_ok(qd, "migrate-incoming", args))
		FAIL("migrate-incoming failed");
	/* NBD: over TCP inside the namespace for the TCP modes (it crosses the
	 * emulated link, port+1), a unix socket for native-unix, and for
	 * plain-relay a unix socket behind a second socat pair. */
	if (tcp) {
		snprintf(nbd_srv, sizeof(nbd_srv), "{\"type\":\"inet\",\"data\":{\"host\":\"127.0.0.1\",\"port\":\"%d\"}}",
			 port + 1);
		snprintf(nbd_cli, sizeof(nbd_cli), "{\"type\":\"inet\",\"host\":\"127.0.0.1\",\"port\":\"%d\"}", port + 1);
	} else {
		snprintf(nbd_srv, sizeof(nbd_srv), "{\"type\":\"unix\",\"data\":{\"path\":\"%s/nbd.sock\"}}", dir);
		snprintf(nbd_cli, sizeof(nbd_cli), "{\"type\":\"unix\",\"path\":\"%s/%s.sock\"}", dir,
			 relay ? "relay-nbd" : "nbd");
	}
	if (relay) {
		/* target side: TCP -> the target QEMU's unix socket; source side: unix -> TCP */
		char l1[64], c1[PATH_MAX + 32], l2[PATH_MAX + 64], c2[64];

		snprintf(l1, sizeof(l1), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port);
		snprintf(c1, sizeof(c1), "UNIX-CONNECT:%s/mig.sock", dir);
		relay_t = socat(dir, l1, c1, 1);
		snprintf(l2, sizeof(l2), "UNIX-LISTEN:%s/relay.sock", dir);
		snprintf(c2, sizeof(c2), "TCP:127.0.0.1:%d", port);
		relay_s = socat(dir, l2, c2, 0);
		snprintf(path, sizeof(path), "%s/relay.sock", dir);
		if (relay_s < 0 || relay_t < 0 || wait_file(path, 5000) < 0)
			FAIL("relay did not start");
		if (disk) {
			snprintf(l1, sizeof(l1), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port + 1);
			snprintf(c1, sizeof(c1), "UNIX-CONNECT:%s/nbd.sock", dir);
			nrelay_t = socat(dir, l1, c1, 1);
			snprintf(l2, sizeof(l2), "UNIX-LISTEN:%s/relay-nbd.sock", dir);
			snprintf(c2, sizeof(c2), "TCP:127.0.0.1:%d", port + 1);
			nrelay_s = socat(dir, l2, c2, 0);
			snprintf(path, sizeof(path), "%s/relay-nbd.sock", dir);
			if (nrelay_s < 0 || nrelay_t < 0 || wait_file(path, 5000) < 0)
				FAIL("NBD relay did not start");
		}
		sleep_ms(300); /* the target socats' listen: no event to wait on */
		snprintf(args, sizeof(args), "{\"uri\":\"unix:%s/relay.sock\"}", dir);
	}
	ps_begin(&ps[0], src);
	ps_begin(&ps[1], dst);
	ps_begin(&ps[2], relay_s);
	ps_begin(&ps[3], relay_t);
	ps_begin(&ps[4], nrelay_s);
	ps_begin(&ps[5], nrelay_t);
	link0 = link_bytes(dir);
	t0 = time_mono_ms();
	t0_real = time_real_us();
	end = t0 + (uint64_t)cfg.run_timeout_s * 1000;
	if (disk && native_mirror(qs, qd, nbd_srv, nbd_cli, end, &t_mirror, err, sizeof(err)) < 0)
		FAIL("%s", err);
	t_migrate = time_mono_ms();
	if (qmp_ok(qs, "migrate", args))
		FAIL("migrate failed to start");
	for (;;) {
		const char *s;

		for (int i = 0; i < 6; i++)
			ps_update(&ps[i]);
		if (st)
			json_object_put(st);
		st = qmp_exec(qs, "query-migrate", NULL, 30);
		if (!st)
			FAIL("query-migrate on the source failed");
		s = jstr(st, "status");
		if (ser) {
			struct json_object *ram = NULL;
			int64_t page;

			json_object_object_get_ex(st, "ram", &ram);
			page = jint(ram, "page-size") ? jint(ram, "page-size") : 4096;
			fprintf(ser, "%llu %lld %lld %.0f\n", (unsigned long long)(time_mono_ms() - t0),
				(long long)jint(ram, "remaining"), (long long)(jint(ram, "dirty-pages-rate") * page),
				json_object_get_double(json_object_object_get(ram, "mbps")) * 1e6 / 8);
		}
		if (!strcmp(s, "completed"))
			break;
		if (!strcmp(s, "failed") || !strcmp(s, "cancelled"))
			FAIL("migration %s: %s", s, jstr(st, "error-desc"));
		if (disk && !switched && (qs->pre_switchover || !strcmp(s, "pre-switchover"))) {
			switched = 1;
			if (native_switchover(qs, &res->disk_copied, err, sizeof(err)) < 0)
				FAIL("%s", err);
			continue;
		}
		if (g_stop)
			FAIL("interrupted");
		if (time_mono_ms() >= end)
			FAIL("no completion within %d s", cfg.run_timeout_s);
		qmp_idle(qs, 50); /* a MIGRATION event (pre-switchover, completed) ends it early */
	}
	res->wall_ms = (int64_t)(time_mono_ms() - t0);
	/* the target's RESUME follows completion closely; bounded wait */
	{
		uint64_t dl = time_mono_ms() + 30000;

		while (!qd->resume_us) {
			struct json_object *j = qmp_read(qd, dl);

			if (!j)
				break;
			json_object_put(j);
		}
	}
	for (int i = 0; i < 6; i++)
		ps_update(&ps[i]);
	res->link_bytes = -1;
	if (link0 >= 0) {
		int64_t l1 = link_bytes(dir);

		if (l1 >= link0)
			res->link_bytes = l1 - link0;
	}
	if (disk && qmp_ok(qd, "nbd-server-stop", NULL))
		msg("  warning: nbd-server-stop on the target failed");
	if (jint(st, "total-time") <= 0) {
		/* QEMU can report "completed" a moment before it fills in total-time */
		struct json_object *again = qmp_exec(qs, "query-migrate", NULL, 30);

		if (again && !strcmp(jstr(again, "status"), "completed")) {
			json_object_put(st);
			st = again;
		} else if (again) {
			json_object_put(again);
		}
	}
	{
		struct json_object *ram = NULL;

		json_object_object_get_ex(st, "ram", &ram);
		/* with a disk, from the mirror's start, like ferry's totalMs */
		res->total_ms = jint(st, "total-time") + (disk ? (int64_t)(t_migrate - t_mirror) : 0);
		res->wire = jint(ram, "transferred");
		res->raw = jint(ram, "normal-bytes");
		res->iterations = jint(ram, "dirty-sync-count");
	}
	if (disk) {
		/* the mirror's offset counts zero areas, which travel as NBD
		 * write-zeroes: the data is what the image held plus what the
		 * guest wrote again during the copy */
		res->disk_data = data0 + (res->disk_copied > res->disk_total ? res->disk_copied - res->disk_total : 0);
		res->wire += res->disk_data;
		res->raw += res->disk_data;
	}
	if (!qs->stop_us || !qd->resume_us)
		FAIL("missing STOP/RESUME event");
	res->e2e_ms = ((qd->completed_us ? qd->completed_us : qd->resume_us) - (int64_t)t0_real) / 1000;
	res->pause_ms = (qd->resume_us - qs->stop_us) / 1000;
	res->qemu_cpu = (ps[0].cpu - ps[0].cpu0) + (ps[1].cpu - ps[1].cpu0);
	res->agent_cpu = 0;
	res->agent_hwm_kib = 0;
	for (int i = 2; i < 6; i++) {
		res->agent_cpu += ps[i].cpu - ps[i].cpu0;
		res->agent_hwm_kib += ps[i].hwm_kib;
	}
	snprintf(path, sizeof(path), "%s/dst.serial", dir);
	snprintf(args, sizeof(args), "%s/serial-dst.log", dir);
	res->verified = guest_serial(path, 300, 1, args) == 0;
	if (!res->verified)
		FAIL("guest verify on the target failed");
	if (disk) {
		/* both QEMUs shut down cleanly (SIGTERM flushes the images) */
		child_stop(src, 10000);
		child_stop(dst, 10000);
		src = dst = 0;
		if (disk_check(dir, img_src, img_dst, res, err, sizeof(err)) < 0)
			FAIL("%s", err);
	}
	res->ok = 1;
out:
	if (ser) {
		fclose(ser);
		series_plot(mode, res->rep);
	}
	if (st)
		json_object_put(st);
	qmp_close(qs);
	qmp_close(qd);
	child_stop(relay_s, 2000);
	child_stop(relay_t, 2000);
	child_stop(nrelay_s, 2000);
	child_stop(nrelay_t, 2000);
	child_stop(src, 3000);
	child_stop(dst, 3000);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int agent_config(const char *dir, const char *node, int port, const char *peer, int pport)
{
	char path[PATH_MAX + 64], text[PATH_MAX * 4];

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s.yaml", dir, node);
	snprintf(text, sizeof(text),
		 "node: %s\nlisten: 127.0.0.1:%d\napi_socket: %s/%s/api.sock\nstate_dir: %s/%s/state\n"
		 "cluster_key: %s/cluster.key\nqemu: {binary: qemu-system-x86_64, accel: tcg}\n"
		 "migration: {progress_timeout_s: 150, completion_timeout_s_per_gib: 800}\n"
		 "peers:\n  - {name: %s, address: 127.0.0.1:%d}\n",
		 node, port, dir, node, dir, node, g_work, peer, pport);
	return write_text(path, text);
}

static pid_t agent_start(const char *dir, const char *node, int cpu)
{
	char ferryd[PATH_MAX + 32], conf[PATH_MAX + 64], log[PATH_MAX + 64], api[PATH_MAX + 64];
	char ctl[PATH_MAX + 32];
	char *argv[] = {ferryd, "--config", conf, NULL};
	pid_t p;

	snprintf(ferryd, sizeof(ferryd), "%s/agent/ferryd", cfg.build);
	snprintf(ctl, sizeof(ctl), "%s/cli/ferryctl", cfg.build);
	snprintf(conf, sizeof(conf), "%s/%s.yaml", dir, node);
	snprintf(log, sizeof(log), "%s/%s.log", dir, node);
	snprintf(api, sizeof(api), "%s/%s/api.sock", dir, node);
	p = spawn(argv, cpu, 1, log, log);
	if (p < 0)
		return -1;
	for (int i = 0; i < 200 && !g_stop; i++) {
		char *cargv[] = {ctl, "--server", api, "nodes", NULL};

		if (run(cargv, -1, 0, NULL, NULL, 10) == 0)
			return p;
		if (kill(p, 0) != 0)
			break;
		sleep_ms(50); /* no readiness event before the socket exists */
	}
	child_stop(p, 2000);
	return -1;
}

static pid_t read_qemu_pid(const char *state_dir)
{
	char path[PATH_MAX + 64];
	DIR *d;
	struct dirent *e;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/vms", state_dir);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)) && !pid) {
		char pf[PATH_MAX + 320];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(pf, sizeof(pf), "%s/%s/qemu.pid", path, e->d_name);
		f = fopen(pf, "r");
		if (!f)
			continue;
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	closedir(d);
	return (pid_t)pid;
}

/* ferryctl ... -o json describe vmi VM: serialSocket, and with disk the
 * path of disks[0] (on the target: the image ferry created) */
static int vm_describe(const char *dir, const char *node, char *serial, size_t len, char *disk, size_t dlen)
{
	char ctl[PATH_MAX + 32], api[PATH_MAX + 64], js[PATH_MAX + 64];
	char *argv[] = {ctl, "--server", api, "-o", "json", "describe", "vmi", "benchvm", NULL};
	struct json_object *j, *d;
	int r = -1;

	snprintf(ctl, sizeof(ctl), "%s/cli/ferryctl", cfg.build);
	snprintf(api, sizeof(api), "%s/%s/api.sock", dir, node);
	snprintf(js, sizeof(js), "%s/describe-%s.json", dir, node);
	unlink(js);
	if (run(argv, -1, 0, js, NULL, 30) != 0)
		return -1;
	j = json_object_from_file(js);
	if (j && *jstr(j, "serialSocket")) {
		snprintf(serial, len, "%s", jstr(j, "serialSocket"));
		r = 0;
	}
	if (j && disk) {
		disk[0] = 0;
		if (json_object_object_get_ex(j, "disks", &d) && json_object_is_type(d, json_type_array) &&
		    json_object_array_length(d) > 0)
			snprintf(disk, dlen, "%s", jstr(json_object_array_get_idx(d, 0), "path"));
		if (!disk[0])
			r = -1;
	}
	if (j)
		json_object_put(j);
	return r;
}

static int vm_serial(const char *dir, const char *node, char *out, size_t len)
{
	return vm_describe(dir, node, out, len, NULL, 0);
}

/* A QEMU ferryd started, by its run dirs' pid files: SIGTERM (QEMU shuts
 * down cleanly and flushes its images), SIGKILL after grace_ms. */
static void term_qemu(const char *state_dir, int grace_ms)
{
	pid_t p = read_qemu_pid(state_dir);
	uint64_t end = time_mono_ms() + (uint64_t)grace_ms;

	if (p <= 0 || kill(p, SIGTERM) != 0)
		return;
	while (kill(p, 0) == 0 && time_mono_ms() < end)
		sleep_ms(20);
	kill_foreign(p);
}

/*
 * The target agent logs the target QEMU's MIGRATION completed event with its
 * QMP timestamp: "event=qemu_status status=completed qemu_ts_us=N".
 */
static int64_t log_completed_us(const char *log)
{
	char line[2048];
	int64_t v = 0;
	FILE *f = fopen(log, "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *s = strstr(line, "event=qemu_status status=completed qemu_ts_us=");

		if (s)
			v = strtoll(s + strlen("event=qemu_status status=completed qemu_ts_us="), NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

/* One sample of the source migration's status (ferryctl -o json get vmim on node-a). */
static void ferry_series(const char *dir, FILE *ser, uint64_t t0)
{
	char ctl[PATH_MAX + 32], api[PATH_MAX + 64], js[PATH_MAX + 64];
	char *argv[] = {ctl, "--server", api, "-o", "json", "get", "vmim", NULL};
	struct json_object *arr;
	uint64_t t = time_mono_ms() - t0;

	snprintf(ctl, sizeof(ctl), "%s/cli/ferryctl", cfg.build);
	snprintf(api, sizeof(api), "%s/node-a/api.sock", dir);
	snprintf(js, sizeof(js), "%s/vmim.json", dir);
	unlink(js);
	if (run(argv, -1, 0, js, NULL, 5) != 0)
		return;
	arr = json_object_from_file(js);
	if (arr && json_object_is_type(arr, json_type_array) && json_object_array_length(arr) > 0) {
		struct json_object *o = json_object_array_get_idx(arr, json_object_array_length(arr) - 1);

		fprintf(ser, "%llu %lld %lld %lld\n", (unsigned long long)t, (long long)jint(o, "ramRemaining"),
			(long long)jint(o, "dirtyRateBps"), (long long)jint(o, "copyRateBps"));
	}
	if (arr)
		json_object_put(arr);
}

static void run_ferry(const char *dir, const char *mode, int port, struct result *res)
{
	char path[PATH_MAX + 64], ctl[PATH_MAX + 32], api[PATH_MAX + 64], spec[PATH_MAX + 64];
	char text[PATH_MAX * 2 + 1024], serial[PATH_MAX], out[PATH_MAX + 64], errf[PATH_MAX + 64], chan[16];
	char img_src[PATH_MAX + 32] = "", img_dst[PATH_MAX] = "", disks[PATH_MAX + 128] = "", err[256];
	pid_t a = 0, b = 0, mig = 0;
	struct psample ps[4];
	struct json_object *m = NULL;
	uint64_t t0, t0_real = 0, end, next_poll = 0;
	int rc, disk = cfg.disk_mib > 0;
	int64_t data0 = 0, link0 = -1;
	FILE *ser = series_open(mode, res->rep);

	memset(ps, 0, sizeof(ps));
	snprintf(ctl, sizeof(ctl), "%s/cli/ferryctl", cfg.build);
	if (disk) {
		if (disk_prepare(dir, img_src, NULL, sizeof(img_src)) < 0)
			FAIL("cannot prepare the disk image (see qemu-img.log)");
		data0 = disk_data_bytes(dir, img_src);
		if (data0 < 0)
			FAIL("qemu-img map of the source image failed");
		res->disk_total = (int64_t)cfg.disk_mib << 20;
		/* a local disk: ferry mirrors it to an image it creates on node-b */
		snprintf(disks, sizeof(disks), "disks:\n  - {name: root, path: %s, format: %s, storage: local}\n",
			 img_src, cfg.disk_format);
	}
	if (agent_config(dir, "node-a", port, "node-b", port + 1) ||
	    agent_config(dir, "node-b", port + 1, "node-a", port))
		FAIL("cannot write agent configs");
	a = agent_start(dir, "node-a", 0);
	b = agent_start(dir, "node-b", 1);
	if (a < 0 || b < 0)
		FAIL("an agent did not come up (see %s/node-*.log)", dir);
	snprintf(spec, sizeof(spec), "%s/vm.yaml", dir);
	snprintf(text, sizeof(text),
		 "name: benchvm\nmemory_mib: %d\nvcpus: 1\nserial: true\nkernel: %s/guest/ferry-guest.elf\n"
		 "append: \"%s\"\n%s",
		 cfg.mem_mib, cfg.build, cfg.append, disks);
	if (write_text(spec, text))
		FAIL("cannot write the VM spec");
	snprintf(api, sizeof(api), "%s/node-a/api.sock", dir);
	{
		char *argv[] = {ctl, "--server", api, "vm", "create", "-f", spec, NULL};

		snprintf(errf, sizeof(errf), "%s/ctl.log", dir);
		if (run(argv, -1, 0, errf, errf, 60) != 0)
			FAIL("vm create failed");
	}
	if (vm_serial(dir, "node-a", serial, sizeof(serial)))
		FAIL("no serial socket on node-a");
	snprintf(errf, sizeof(errf), "%s/serial-src.log", dir);
	if (guest_serial(serial, cfg.run_timeout_s, 0, errf) != 0)
		FAIL("guest did not boot on the source");

	snprintf(path, sizeof(path), "%s/node-a/state", dir);
	ps_begin(&ps[0], read_qemu_pid(path));
	ps_begin(&ps[2], a);
	ps_begin(&ps[3], b);
	snprintf(out, sizeof(out), "%s/migrate.json", dir);
	snprintf(errf, sizeof(errf), "%s/migrate.err", dir);
	{
		char *argv[16];
		int n = 0;

		argv[n++] = ctl;
		argv[n++] = "--server";
		argv[n++] = api;
		argv[n++] = "-o";
		argv[n++] = "json";
		argv[n++] = "migrate";
		argv[n++] = "benchvm";
		argv[n++] = "--node";
		argv[n++] = "node-b";
		argv[n++] = "--wait";
		if (strstr(mode, "nocompress")) {
			argv[n++] = "--no-compress";
		}
		if (!strncmp(mode, "ferry-multifd", 13)) {
			snprintf(chan, sizeof(chan), "%d", atoi(mode + 13) > 0 ? atoi(mode + 13) : 2);
			argv[n++] = "--multifd";
			argv[n++] = chan;
		}
		argv[n] = NULL;
		link0 = link_bytes(dir);
		t0 = time_mono_ms();
		t0_real = time_real_us();
		mig = spawn(argv, -1, 0, out, errf);
	}
	if (mig < 0)
		FAIL("cannot run ferryctl migrate");
	end = t0 + (uint64_t)cfg.run_timeout_s * 1000;
	snprintf(path, sizeof(path), "%s/node-b/state", dir);
	for (;;) {
		if (ps[1].pid <= 0) {
			pid_t t = read_qemu_pid(path);

			if (t > 0)
				ps_begin(&ps[1], t), ps[1].cpu0 = 0; /* the target QEMU starts within the run */
		}
		for (int i = 0; i < 4; i++)
			ps_update(&ps[i]);
		if (ser && time_mono_ms() >= next_poll) {
			next_poll = time_mono_ms() + 250;
			ferry_series(dir, ser, t0);
		}
		rc = child_wait(mig, 100);
		if (rc != -1)
			break;
		if (g_stop || time_mono_ms() >= end) {
			child_stop(mig, 1000);
			FAIL(g_stop ? "interrupted" : "no completion within %d s", cfg.run_timeout_s);
		}
	}
	res->wall_ms = (int64_t)(time_mono_ms() - t0);
	for (int i = 0; i < 4; i++)
		ps_update(&ps[i]);
	res->link_bytes = -1;
	if (link0 >= 0) {
		int64_t l1 = link_bytes(dir);

		if (l1 >= link0)
			res->link_bytes = l1 - link0;
	}
	m = json_object_from_file(out);
	if (!m)
		FAIL("ferryctl migrate exited %d without JSON", rc);
	if (strcmp(jstr(m, "phase"), "Succeeded"))
		FAIL("migration %s: %s", jstr(m, "phase"), jstr(m, "failureReason"));
	res->total_ms = jint(m, "totalMs");
	res->pause_ms = jint(m, "pauseMs");
	res->raw = jint(m, "rawBytes");
	res->wire = jint(m, "wireBytes");
	res->iterations = jint(m, "iterations");
	if (disk) {
		if (jint(m, "disks") != 1)
			FAIL("ferry reports %lld copied disks, not 1", (long long)jint(m, "disks"));
		/* diskTransferred: the mirror's offset at ferry's last poll */
		res->disk_copied = jint(m, "diskTransferred");
		res->disk_data = data0 + (res->disk_copied > res->disk_total ? res->disk_copied - res->disk_total : 0);
	}
	snprintf(path, sizeof(path), "%s/node-b.log", dir);
	{
		int64_t done = log_completed_us(path);

		if (!done)
			FAIL("no target completion in %s", path);
		res->e2e_ms = (done - (int64_t)t0_real) / 1000;
	}
	res->qemu_cpu = (ps[0].cpu - ps[0].cpu0) + (ps[1].cpu - ps[1].cpu0);
	res->agent_cpu = (ps[2].cpu - ps[2].cpu0) + (ps[3].cpu - ps[3].cpu0);
	res->agent_hwm_kib = ps[2].hwm_kib > ps[3].hwm_kib ? ps[2].hwm_kib : ps[3].hwm_kib;
	if (vm_describe(dir, "node-b", serial, sizeof(serial), disk ? img_dst : NULL, sizeof(img_dst)))
		FAIL("no serial socket%s on node-b", disk ? " or disk path" : "");
	if (disk && !strcmp(img_dst, img_src))
		FAIL("node-b runs the VM on the source's image %s: the disk was not copied", img_src);
	snprintf(errf, sizeof(errf), "%s/serial-dst.log", dir);
	res->verified = guest_serial(serial, 300, 1, errf) == 0;
	if (!res->verified)
		FAIL("guest verify on the target failed");
	if (disk) {
		/* the agents first (their QEMUs outlive them), then the QEMUs,
		 * cleanly: the source's has quit already */
		child_stop(a, 20000);
		child_stop(b, 20000);
		a = b = 0;
		snprintf(path, sizeof(path), "%s/node-a/state", dir);
		term_qemu(path, 10000);
		snprintf(path, sizeof(path), "%s/node-b/state", dir);
		term_qemu(path, 10000);
		if (disk_check(dir, img_src, img_dst, res, err, sizeof(err)) < 0)
			FAIL("%s", err);
	}
	res->ok = 1;
out:
	if (ser) {
		fclose(ser);
		series_plot(mode, res->rep);
	}
	if (m)
		json_object_put(m);
	child_stop(a, 20000);
	child_stop(b, 20000);
	snprintf(path, sizeof(path), "%s/node-a/state", dir);
	kill_pidfiles(path);
	snprintf(path, sizeof(path), "%s/node-b/state", dir);
	kill_pidfiles(path);
}

/* ---------- outputs ---------- */

/* --link as given, "lo,1gbit": for the summary's and the log's first line. */
static void links_str(char *buf, size_t len)
{
	buf[0] = 0;
	for (int l = 0; l < cfg.nlinks; l++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", l ? "," : "", cfg.links[l]);
}

static void json_line(FILE *f, const struct result *r)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "mode", json_object_new_string(r->mode));
	json_object_object_add(j, "link", json_object_new_string(r->link));
	json_object_object_add(j, "memMiB", json_object_new_int(cfg.mem_mib));
	json_object_object_add(j, "append", json_object_new_string(cfg.append));
	json_object_object_add(j, "repeat", json_object_new_int(r->rep));
	json_object_object_add(j, "ok", json_object_new_boolean(r->ok));
	json_object_object_add(j, "verified", json_object_new_boolean(r->verified));
	json_object_object_add(j, "totalMs", json_object_new_int64(r->total_ms));
	json_object_object_add(j, "e2eMs", json_object_new_int64(r->e2e_ms));
	json_object_object_add(j, "wallMs", json_object_new_int64(r->wall_ms));
	json_object_object_add(j, "pauseMs", json_object_new_int64(r->pause_ms));
	json_object_object_add(j, "rawBytes", json_object_new_int64(r->raw));
	json_object_object_add(j, "wireBytes", json_object_new_int64(r->wire));
	json_object_object_add(j, "compressionRatio",
			       json_object_new_double(r->wire > 0 ? (double)r->raw / (double)r->wire : 0));
	json_object_object_add(j, "iterations", json_object_new_int64(r->iterations));
	json_object_object_add(j, "qemuCpuS", json_object_new_double(r->qemu_cpu));
	json_object_object_add(j, "agentCpuS", json_object_new_double(r->agent_cpu));
	json_object_object_add(j, "agentPeakRssKiB", json_object_new_int64(r->agent_hwm_kib));
	if (cfg.disk_mib > 0) {
		json_object_object_add(j, "diskMiB", json_object_new_int(cfg.disk_mib));
		json_object_object_add(j, "diskFillMiB", json_object_new_int(cfg.disk_fill_mib));
		json_object_object_add(j, "diskFormat", json_object_new_string(cfg.disk_format));
		json_object_object_add(j, "diskTotal", json_object_new_int64(r->disk_total));
		json_object_object_add(j, "diskCopied", json_object_new_int64(r->disk_copied));
		json_object_object_add(j, "diskDataBytes", json_object_new_int64(r->disk_data));
		json_object_object_add(j, "diskCheck", json_object_new_string(r->disk_check));
	}
	if (strcmp(r->link, "lo"))
		json_object_object_add(j, "linkBytes", json_object_new_int64(r->link_bytes));
	if (r->error[0])
		json_object_object_add(j, "error", json_object_new_string(r->error));
	fprintf(f, "%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	fflush(f);
	json_object_put(j);
}

static void csv_line(FILE *f, const struct result *r)
{
	fprintf(f, "%s,%s,%d,%d,%d,%d,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.3f,%.3f,%ld,%d,%s,%lld,%lld,%lld,%s,%lld,\"%s\"\n",
		r->mode, r->link, cfg.mem_mib, r->rep, r->ok, r->verified, (long long)r->total_ms, (long long)r->e2e_ms,
		(long long)r->wall_ms, (long long)r->pause_ms, (long long)r->raw, (long long)r->wire,
		(long long)r->iterations, r->qemu_cpu, r->agent_cpu, r->agent_hwm_kib, cfg.disk_mib,
		cfg.disk_mib > 0 ? cfg.disk_format : "", (long long)r->disk_total, (long long)r->disk_copied,
		(long long)r->disk_data, r->disk_check, (long long)(strcmp(r->link, "lo") ? r->link_bytes : -1), r->error);
	fflush(f);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat3 {
	double med, min, max;
	int n;
};

static struct stat3 stat_of(const struct result *rs, int n, const char *mode, int field)
{
	double v[MAX_RUNS];
	struct stat3 s = {0, 0, 0, 0};

	for (int i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		if (strcmp(r->mode, mode) || !r->ok)
			continue;
		switch (field) {
		case 0: v[s.n++] = (double)r->total_ms; break;
		case 1: v[s.n++] = (double)r->pause_ms; break;
		case 2: v[s.n++] = (double)r->wire; break;
		case 3: v[s.n++] = r->qemu_cpu; break;
		case 4: v[s.n++] = r->agent_cpu; break;
		case 5: v[s.n++] = (double)r->agent_hwm_kib; break;
		case 6: v[s.n++] = (double)r->iterations; break;
		case 7: v[s.n++] = (double)r->e2e_ms; break;
		case 8: v[s.n++] = (double)r->disk_data; break;
		case 9: v[s.n++] = (double)r->link_bytes; break;
		default: v[s.n++] = (double)r->raw; break;
		}
	}
	if (!s.n)
		return s;
	qsort(v, (size_t)s.n, sizeof(double), cmp_d);
	s.min = v[0];
	s.max = v[s.n - 1];
	s.med = s.n % 2 ? v[s.n / 2] : (v[s.n / 2 - 1] + v[s.n / 2]) / 2;
	return s;
}

/* The method: a mode's ratio to a baseline is taken pair by pair,
 * within each repeat (the two ran back to back under the same conditions),
 * then the median of those ratios. field 7 = time end to end, 1 = pause. */
static int pair_ratio(const struct result *rs, int n, const char *mode, const char *base, int field,
		      char *out, size_t len)
{
	double v[MAX_RUNS];
	int k = 0;

	for (int i = 0; i < n; i++) {
		const struct result *a = &rs[i];

		if (strcmp(a->mode, mode) || !a->ok)
			continue;
		for (int j = 0; j < n; j++) {
			const struct result *b = &rs[j];
			double x = field == 7 ? (double)a->e2e_ms : (double)a->pause_ms;
			double y = field == 7 ? (double)b->e2e_ms : (double)b->pause_ms;

			if (strcmp(b->mode, base) || !b->ok || b->rep != a->rep || y <= 0)
				continue;
			v[k++] = x / y;
		}
	}
	if (!k)
		return snprintf(out, len, "–");
	qsort(v, (size_t)k, sizeof(double), cmp_d);
	return snprintf(out, len, "%.2f", k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2);
}

/* The runs of one link, in their order. Every figure of the summary is
 * taken within one link: a mode on 100mbit is not a repeat of itself on
 * lo, and pair_ratio must only pair runs that ran back to back. */
static int link_runs(const struct result *rs, int n, const char *link, struct result *out)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (!strcmp(rs[i].link, link))
			out[k++] = rs[i];
	return k;
}

/* One link's table, a row per mode; shaped = the link had a namespace
 * (then it has a link MiB column). */
static void summary_table(FILE *f, const struct result *rs, int n, int shaped)
{
	struct stat3 base_t = stat_of(rs, n, "native-unix", 7), base_p = stat_of(rs, n, "native-unix", 1);
	struct stat3 tcp_t = stat_of(rs, n, "native-tcp", 7), tcp_p = stat_of(rs, n, "native-tcp", 1);

	fprintf(f, "| mode | ok | time ms median (min–max) | tool's total ms | pause ms median (min–max) | wire MiB |%s%s iterations "
		   "| QEMU CPU s | agent CPU s | agent peak RSS MiB | time × native-unix | pause × native-unix | time × native-tcp | pause × native-tcp |\n",
		cfg.disk_mib > 0 ? " disk MiB |" : "", shaped ? " link MiB |" : "");
	fprintf(f, "|---|---|---|---|---|---|%s%s---|---|---|---|---|---|---|---|\n", cfg.disk_mib > 0 ? "---|" : "",
		shaped ? "---|" : "");
	for (int m = 0; m < cfg.nmodes; m++) {
		const char *mode = cfg.modes[m];
		struct stat3 t = stat_of(rs, n, mode, 7), tt = stat_of(rs, n, mode, 0), p = stat_of(rs, n, mode, 1), w = stat_of(rs, n, mode, 2);
		struct stat3 qc = stat_of(rs, n, mode, 3), ac = stat_of(rs, n, mode, 4);
		struct stat3 h = stat_of(rs, n, mode, 5), it = stat_of(rs, n, mode, 6);
		struct stat3 dd = stat_of(rs, n, mode, 8), lb = stat_of(rs, n, mode, 9);
		int total = 0;
		char rt[32] = "–", rp[32] = "–", rt2[32] = "–", rp2[32] = "–", extra[64] = "";

		for (int i = 0; i < n; i++)
			total += !strcmp(rs[i].mode, mode);
		if (t.n && base_t.n)
			pair_ratio(rs, n, mode, "native-unix", 7, rt, sizeof(rt));
		if (p.n && base_p.n)
			pair_ratio(rs, n, mode, "native-unix", 1, rp, sizeof(rp));
		if (t.n && tcp_t.n)
			pair_ratio(rs, n, mode, "native-tcp", 7, rt2, sizeof(rt2));
		if (p.n && tcp_p.n)
			pair_ratio(rs, n, mode, "native-tcp", 1, rp2, sizeof(rp2));
		if (!t.n) {
			fprintf(f, "| %s | 0/%d | – | – | – | – |%s%s – | – | – | – | – | – | – | – |\n", mode, total,
				cfg.disk_mib > 0 ? " – |" : "", shaped ? " – |" : "");
			continue;
		}
		if (cfg.disk_mib > 0)
			snprintf(extra, sizeof(extra), " %.1f |", dd.med / 1048576.0);
		if (shaped && lb.min >= 0)
			snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " %.1f |", lb.med / 1048576.0);
		else if (shaped)
			snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " – |");
		fprintf(f, "| %s | %d/%d | %.0f (%.0f–%.0f) | %.0f | %.0f (%.0f–%.0f) | %.1f |%s %.0f | %.2f | %.2f | %.1f | %s | %s | %s | %s |\n",
			mode, t.n, total, t.med, t.min, t.max, tt.med, p.med, p.min, p.max, w.med / 1048576.0, extra, it.med,
			qc.med, ac.med, h.med / 1024.0, rt, rp, rt2, rp2);
	}
}

static void summary_notes(FILE *f, int any_shaped)
{
	fprintf(f, "\nok: runs that completed and whose guest then passed its own verify on the target (every "
		   "page and sector it wrote); a run that completed but failed its verify is a failed run, counted "
		   "nowhere else, and makes ferry-bench exit non-zero.\n");
	fprintf(f, "\nTime is end to end: from the migrate request to the target QEMU's MIGRATION completed "
		   "event (QMP timestamp; for ferry taken from the target agent's log), so ferry's includes starting "
		   "the target QEMU, native's does not. The tool's total is what each tool reports (QEMU's total-time, "
		   "source side; ferry's totalMs, source side up to switchover). Pause is the "
		   "target RESUME − source STOP event timestamps. CPU is utime+stime during the migration; "
		   "\"agent\" is ferryd (both nodes) or socat (plain-relay). Peak RSS is VmHWM (largest agent; "
		   "socat pair summed).\n");
	if (cfg.disk_mib > 0)
		fprintf(f, "\nWith a disk, the tool's total runs from the mirror's start (ferry's totalMs; native: "
			   "blockdev-add of the NBD client + QEMU's total-time) and time end to end from the first storage "
			   "command (native: nbd-server-start on the target). Disk MiB is the disk data the mirror sent: "
			   "the source image's allocated data plus what the guest wrote again during the copy (QEMU's job "
			   "offset counts zero areas too, which go as NBD write-zeroes). Native wire = RAM transferred + "
			   "that disk data; ferry's wire = its relay's frame bytes, RAM and NBD together.\n");
	if (any_shaped)
		fprintf(f, "\nLink MiB: bytes through the namespace's loopback during the migration (both directions, "
			   "TCP/IP headers included; unix sockets are not counted, so native-unix shows ~0).\n");
}

/* "mode time_med time_min time_max pause_med pause_min pause_max", a line
 * per mode with a successful run. Returns the lines written, -1 on error. */
static int plot_dat(const char *path, const struct result *rs, int n)
{
	FILE *d = fopen(path, "w");
	int rows = 0;

	if (!d)
		return -1;
	fprintf(d, "# mode time_med time_min time_max pause_med pause_min pause_max\n");
	for (int m = 0; m < cfg.nmodes; m++) {
		struct stat3 t = stat_of(rs, n, cfg.modes[m], 7), p = stat_of(rs, n, cfg.modes[m], 1);

		if (!t.n)
			continue;
		fprintf(d, "%s %.0f %.0f %.0f %.0f %.0f %.0f\n", cfg.modes[m], t.med, t.min, t.max, p.med, p.min, p.max);
		rows++;
	}
	fclose(d);
	return rows;
}

/* One link's two charts (a bar per mode), as gnuplot commands. */
static void gp_bars(FILE *f, const char *dat, const char *time_png, const char *pause_png, const char *link)
{
	fprintf(f,
		"set terminal pngcairo size 900,500 noenhanced\n"
		"set style fill solid 0.6 border -1\nset boxwidth 0.6\nset grid ytics\nset yrange [0:*]\n"
		"set xtics rotate by -30\nunset key\n"
		"set output '%s'\nset title 'migration time end to end, link %s, %d MiB (median, min-max)'\n"
		"set ylabel 'ms'\nplot '%s' using 0:2:3:4:(0.6):xtic(1) with boxerrorbars lc rgb '#4477aa'\n"
		"set output '%s'\nset title 'true pause, link %s (median, min-max)'\n"
		"plot '%s' using 0:5:6:7:(0.6):xtic(1) with boxerrorbars lc rgb '#cc6677'\n",
		time_png, link, cfg.mem_mib, dat, pause_png, link, dat);
}

/* Value ranges of the clustered charts, to choose their y axis. */
struct span {
	double lo, hi; /* smallest positive minimum, largest maximum */
};

static void span_add(struct span *s, struct stat3 v)
{
	if (v.min > 0 && (s->lo <= 0 || v.min < s->lo))
		s->lo = v.min;
	if (v.max > s->hi)
		s->hi = v.max;
}

/*
 * The data of the clustered charts: a gnuplot block per mode (blocks apart
 * by two blank lines, so `index m` is mode m), a line per link in --link
 * order: "link_index link time_med time_min time_max pause_med pause_min
 * pause_max", NaN where the mode had no successful run on that link (no
 * bar, the mode keeps its place and colour). Returns the successful
 * (mode, link) pairs, -1 on error.
 */
static int links_dat(const char *path, const struct result *rs, int n, struct span *ts, struct span *ps)
{
	static struct result sub[MAX_RUNS];
	FILE *d = fopen(path, "w");
	int cells = 0;

	if (!d)
		return -1;
	fprintf(d, "# a block per mode; link_index link time_med time_min time_max pause_med pause_min pause_max\n");
	for (int m = 0; m < cfg.nmodes; m++) {
		fprintf(d, "%s# %s\n", m ? "\n\n" : "", cfg.modes[m]);
		for (int l = 0; l < cfg.nlinks; l++) {
			int k = link_runs(rs, n, cfg.links[l], sub);
			struct stat3 t = stat_of(sub, k, cfg.modes[m], 7), p = stat_of(sub, k, cfg.modes[m], 1);

			if (!t.n) {
				fprintf(d, "%d %s NaN NaN NaN NaN NaN NaN\n", l, cfg.links[l]);
				continue;
			}
			fprintf(d, "%d %s %.0f %.0f %.0f %.0f %.0f %.0f\n", l, cfg.links[l], t.med, t.min, t.max, p.med,
				p.min, p.max);
			span_add(ts, t);
			span_add(ps, p);
			cells++;
		}
	}
	fclose(d);
	return cells;
}

/*
 * A clustered chart: x = link, a bar per mode (median, min-max), every bar
 * labelled with its median. col: the median's column in links_dat (3 time,
 * 6 pause). Links differ by 10-100x (lo against 100mbit), which leaves
 * lo's bars flat on a linear axis: beyond a 20x span the axis is
 * logarithmic, from the power of ten below the smallest minimum, and the
 * labels carry the exact values.
 */
static void gp_clustered(FILE *f, const char *dat, const char *png, int col, const char *what, struct span s)
{
	int logy = s.lo > 0 && s.hi / s.lo > 20;
	double floor10 = 1;

	while (floor10 * 10 <= s.lo)
		floor10 *= 10;
	fprintf(f, "reset\nset terminal pngcairo size 1000,500 noenhanced\n"
		   "set style fill solid 0.6 border -1\nset grid ytics\nset key outside right top\nset xtics (");
	for (int l = 0; l < cfg.nlinks; l++)
		fprintf(f, "%s'%s' %d", l ? ", " : "", cfg.links[l], l);
	fprintf(f, ")\nset xrange [-0.5:%d.5]\nmodes = '", cfg.nlinks - 1);
	for (int m = 0; m < cfg.nmodes; m++)
		fprintf(f, "%s%s", m ? " " : "", cfg.modes[m]);
	fprintf(f, "'\nnm = %d\nbw = 0.8 / nm\n", cfg.nmodes);
	if (logy) /* plain numbers on the axis: 100000, not 1e+05 */
		fprintf(f, "set logscale y\nset format y '%%.0f'\nset yrange [%.0f:*]\n", floor10);
	else
		fprintf(f, "set yrange [0:*]\n");
	fprintf(f,
		"set output '%s'\nset title '%s per link, %d MiB (median, min-max%s)'\nset ylabel 'ms'\n"
		"plot for [m=0:nm-1] '%s' index m using ($1 - 0.4 + bw * (m + 0.5)):%d:%d:%d:(bw) with boxerrorbars "
		"lt m+1 title word(modes, m+1), \\\n"
		"     for [m=0:nm-1] '%s' index m using ($1 - 0.4 + bw * (m + 0.5)):%d:(sprintf('%%.0f', column(%d))) "
		"with labels %s font ',8' notitle\n",
		png, what, cfg.mem_mib, logy ? "; log scale" : "", dat, col, col + 1, col + 2, dat, col + 2, col,
		/* side by side, 8 modes leave ~20 px a bar: too narrow for "12345" */
		cfg.nmodes > 4 ? "rotate by 90 left offset 0,0.4" : "offset 0,0.6");
}

static void gnuplot_run(const char *gp)
{
	char *argv[] = {"gnuplot", (char *)gp, NULL};
	char lg[PATH_MAX + 32];
	int r;

	snprintf(lg, sizeof(lg), "%s/gnuplot.log", cfg.out);
	r = run(argv, -1, 0, lg, lg, 60);
	if (r == 127)
		msg("warning: gnuplot not found; no plots");
	else if (r != 0)
		msg("warning: gnuplot failed (%d); see %s", r, lg);
}

/*
 * One link: plot.dat -> time.png, pause.png. Several: per link
 * plot-LINK.dat -> time-LINK.png, pause-LINK.png (each link on its own
 * scale), and plot-links.dat -> bench-time.png, bench-pause.png, the
 * links side by side. One plot.gp draws them all.
 */
static void write_plots(const struct result *rs, int n)
{
	static struct result sub[MAX_RUNS];
	char gp[PATH_MAX + 32], dat[PATH_MAX + 64], tp[PATH_MAX + 64], pp[PATH_MAX + 64];
	struct span ts = {0, 0}, ps = {0, 0};
	int have = 0;
	FILE *f;

	snprintf(gp, sizeof(gp), "%s/plot.gp", cfg.out);
	f = fopen(gp, "w");
	if (!f)
		return;
	for (int l = 0; l < cfg.nlinks; l++) {
		const char *link = cfg.links[l];
		int k = link_runs(rs, n, link, sub);

		if (cfg.nlinks == 1) {
			snprintf(dat, sizeof(dat), "%s/plot.dat", cfg.out);
			snprintf(tp, sizeof(tp), "%s/time.png", cfg.out);
			snprintf(pp, sizeof(pp), "%s/pause.png", cfg.out);
		} else {
			snprintf(dat, sizeof(dat), "%s/plot-%s.dat", cfg.out, link);
			snprintf(tp, sizeof(tp), "%s/time-%s.png", cfg.out, link);
			snprintf(pp, sizeof(pp), "%s/pause-%s.png", cfg.out, link);
		}
		if (plot_dat(dat, sub, k) > 0) {
			gp_bars(f, dat, tp, pp, link);
			have = 1;
		}
	}
	if (cfg.nlinks > 1) {
		snprintf(dat, sizeof(dat), "%s/plot-links.dat", cfg.out);
		snprintf(tp, sizeof(tp), "%s/bench-time.png", cfg.out);
		snprintf(pp, sizeof(pp), "%s/bench-pause.png", cfg.out);
		if (links_dat(dat, rs, n, &ts, &ps) > 0) {
			gp_clustered(f, dat, tp, 3, "migration time end to end", ts);
			gp_clustered(f, dat, pp, 6, "true pause", ps);
		}
	}
	fclose(f);
	if (have)
		gnuplot_run(gp);
	else
		unlink(gp); /* nothing succeeded: no script, as no plots */
}

static void write_summary(const struct result *rs, int n)
{
	static struct result sub[MAX_RUNS];
	char path[PATH_MAX + 32], links[MAX_LINKS * 16 + 8];
	int any_shaped = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/summary.md", cfg.out);
	f = fopen(path, "w");
	if (!f) {
		msg("cannot write the summary in %s", cfg.out);
		return;
	}
	links_str(links, sizeof(links));
	fprintf(f, "ferry-bench: %s `%s`%s, %d MiB guest, append `%s`, %d repeat(s), modes alternated\n\n",
		cfg.nlinks > 1 ? "links" : "link", links, cfg.nlinks > 1 ? " (one after the other)" : "", cfg.mem_mib,
		cfg.append, cfg.repeats);
	if (cfg.disk_mib > 0)
		fprintf(f, "Disk: %d MiB %s, %d MiB filled (half random, half text), checked by %s.\n\n", cfg.disk_mib,
			cfg.disk_format, cfg.disk_fill_mib,
			cfg.guest_writes_disk ? "the guest's verify (it writes to its disk)" : "qemu-img compare");
	for (int l = 0; l < cfg.nlinks; l++) {
		const char *link = cfg.links[l];
		int k = link_runs(rs, n, link, sub), shaped = strcmp(link, "lo") != 0;

		if (cfg.nlinks > 1)
			fprintf(f, "%s### link %s\n\n", l ? "\n" : "", link);
		if (cfg.nlinks > 1 && !k) {
			fprintf(f, "Not run (interrupted, or its namespace could not be made).\n");
			continue;
		}
		summary_table(f, sub, k, shaped);
		any_shaped |= shaped;
	}
	summary_notes(f, any_shaped);
	fclose(f);
	write_plots(rs, n);
}

/* ---------- link ---------- */

/* The links --link knows: tbf rate and burst (at least rate/HZ); lo has
 * no namespace. */
static const struct {
	const char *name, *rate, *burst;
} link_specs[] = {{"lo", NULL, NULL},
		  {"10gbit", "10gbit", "12500kb"},
		  {"1gbit", "1gbit", "1250kb"},
		  {"100mbit", "100mbit", "256kb"}};

static int link_spec(const char *name)
{
	for (size_t i = 0; i < sizeof(link_specs) / sizeof(link_specs[0]); i++)
		if (!strcmp(name, link_specs[i].name))
			return (int)i;
	return -1;
}

/* --link a,b,...: every name known, none twice (the summary, the plots and
 * the series files are keyed by link). Checked before anything runs. */
static int set_links(const char *list)
{
	char buf[128], *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", list);
	cfg.nlinks = 0;
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (link_spec(t) < 0) {
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

/* Makes link's namespace (none for lo) and makes it the current link. The
 * name is the same for every link of an invocation: only one exists at a
 * time. */
static int netns_create(const char *link)
{
	int i = link_spec(link);
	const char *rate = link_specs[i].rate, *burst = link_specs[i].burst;

	snprintf(g_link, sizeof(g_link), "%s", link);
	if (!rate)
		return 0;
	snprintf(g_netns, sizeof(g_netns), "ferry-bench-%d", (int)getpid());
	{
		char *a1[] = {"ip", "netns", "add", g_netns, NULL};
		char *a2[] = {"ip", "-n", g_netns, "link", "set", "lo", "up", NULL};
		char *a3[] = {"tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", (char *)rate, "burst",
			      (char *)burst, "latency", "100ms", NULL};

		if (run(a1, -1, 0, NULL, NULL, 30) != 0) {
			g_netns[0] = 0;
			msg("cannot create a network namespace (root and iproute2 needed)");
			return -1;
		}
		if (run(a2, -1, 0, NULL, NULL, 30) != 0 || run(a3, -1, 1, NULL, NULL, 30) != 0) {
			msg("cannot shape the namespace's loopback (tbf)");
			return -1;
		}
	}
	msg("link %s: namespace %s, loopback tbf rate %s burst %s", link, g_netns, rate, burst);
	return 0;
}

/* ---------- main ---------- */

static const char *all_modes[] = {"native-unix", "native-tcp", "native-multifd", "native-multifd-zstd",
				  "plain-relay", "ferry", "ferry-nocompress", "ferry-multifd2"};

static int mode_known(const char *m)
{
	for (size_t i = 0; i < sizeof(all_modes) / sizeof(all_modes[0]); i++)
		if (!strcmp(m, all_modes[i]))
			return 1;
	return !strncmp(m, "ferry-multifd", 13) && atoi(m + 13) > 0;
}

static int set_modes(const char *list)
{
	char buf[512], *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", list);
	cfg.nmodes = 0;
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!mode_known(t)) {
			msg("unknown mode %s", t);
			return -1;
		}
		if (cfg.nmodes == MAX_MODES)
			return -1;
		snprintf(cfg.modes[cfg.nmodes++], sizeof(cfg.modes[0]), "%s", t);
	}
	return cfg.nmodes ? 0 : -1;
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

static void usage(void)
{
	fprintf(stderr,
		"usage: ferry-bench [--quick] [--modes a,b,...] [--link L[,L...]] (L: lo 10gbit 1gbit 100mbit)\n"
		"                   [--mem MiB] [--append \"guest cmdline\"] [--repeats N] [--out DIR]\n"
		"                   [--build-dir DIR] [--run-timeout S] [--no-pin] [--series]\n"
		"                   [--disk-mib N [--disk-fill-mib M] [--disk-format raw|qcow2]]\n"
		"modes: native-unix native-tcp native-multifd native-multifd-zstd plain-relay\n"
		"       ferry ferry-nocompress ferry-multifdN\n"
		"the guest's disk writes are its own options, in --append (disk=MB/s diskws=MiB diskoff=MiB)\n");
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

/*
 * One run in its own work directory on the current link: the mode's
 * driver, a log line, the logs kept in OUT/failed-runIDX when it failed,
 * its result written out at once. Returns 0 when it passed.
 */
static int run_one(struct result *r, int idx, const char *mode, int rep, FILE *jl, FILE *csv)
{
	char dir[PATH_MAX + 32];
	int port = g_port_base + (idx % 500) * 2;

	memset(r, 0, sizeof(*r));
	snprintf(r->mode, sizeof(r->mode), "%s", mode);
	snprintf(r->link, sizeof(r->link), "%s", g_link);
	r->rep = rep;
	snprintf(dir, sizeof(dir), "%s/run%d", g_work, idx);
	mkdir(dir, 0700);
	if (cfg.nlinks > 1)
		msg("run %d: %s (repeat %d/%d, link %s)", idx + 1, r->mode, rep, cfg.repeats, r->link);
	else
		msg("run %d: %s (repeat %d/%d)", idx + 1, r->mode, rep, cfg.repeats);
	if (!strncmp(r->mode, "ferry", 5))
		run_ferry(dir, r->mode, port, r);
	else
		run_native(dir, r->mode, port, r);
	if (r->ok && cfg.disk_mib > 0)
		msg("  %s: total %lld ms, pause %lld ms, wire %.1f MiB (disk data %.1f MiB, job offset %.1f MiB), "
		    "iterations %lld, verify OK, disk check: %s",
		    r->mode, (long long)r->total_ms, (long long)r->pause_ms, r->wire / 1048576.0,
		    r->disk_data / 1048576.0, r->disk_copied / 1048576.0, (long long)r->iterations,
		    !strcmp(r->disk_check, "compare") ? "qemu-img compare: identical" : "guest verify");
	else if (r->ok)
		msg("  %s: total %lld ms, pause %lld ms, wire %.1f MiB, iterations %lld, verify OK", r->mode,
		    (long long)r->total_ms, (long long)r->pause_ms, r->wire / 1048576.0, (long long)r->iterations);
	else {
		char keep[PATH_MAX + 64];
		char *argv[] = {"cp", "-r", dir, keep, NULL};

		/* keep the run's logs for a post-mortem (not its images) */
		snprintf(keep, sizeof(keep), "%s/failed-run%d", cfg.out, idx);
		disk_remove_images(dir);
		run(argv, -1, 0, NULL, NULL, 60);
		msg("  %s FAILED: %s (logs in %s)", r->mode, r->error, keep);
	}
	json_line(jl, r);
	csv_line(csv, r);
	rm_rf(dir);
	return r->ok ? 0 : -1;
}

/* Every repeat of every mode on the current link, the modes alternated
 * within each repeat; results go on at results[*nres]. Returns the number
 * of failed runs. */
static int run_link(struct result *results, int *nres, FILE *jl, FILE *csv)
{
	int failed = 0;

	for (int rep = 0; rep < cfg.repeats && !g_stop; rep++)
		for (int m = 0; m < cfg.nmodes && !g_stop; m++) {
			failed += run_one(&results[*nres], *nres, cfg.modes[m], rep + 1, jl, csv) < 0;
			(*nres)++;
		}
	return failed;
}

int main(int argc, char **argv)
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
					     {"disk-mib", required_argument, NULL, 'D'},
					     {"disk-fill-mib", required_argument, NULL, 'F'},
					     {"disk-format", required_argument, NULL, 'T'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	static struct result results[MAX_RUNS];
	const char *modes = NULL, *link = NULL, *append = NULL;
	int mem = 0, repeats = 0, quick = 0, c, nres = 0, failed = 0, no_link = 0;
	char path[PATH_MAX + 32];
	FILE *jl = NULL, *csv = NULL;
	struct sigaction sa;

	memset(&cfg, 0, sizeof(cfg));
	cfg.run_timeout_s = 600;
	snprintf(cfg.disk_format, sizeof(cfg.disk_format), "raw");
	cfg.pin = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
	snprintf(cfg.out, sizeof(cfg.out), "bench-out");
	if (default_build_dir() < 0)
		snprintf(cfg.build, sizeof(cfg.build), "build");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q': quick = 1; break;
		case 'm': modes = optarg; break;
		case 'l': link = optarg; break;
		case 'M': mem = atoi(optarg); break;
		case 'a': append = optarg; break;
		case 'r': repeats = atoi(optarg); break;
		case 'o': snprintf(cfg.out, sizeof(cfg.out), "%s", optarg); break;
		case 'b': snprintf(cfg.build, sizeof(cfg.build), "%s", optarg); break;
		case 't': cfg.run_timeout_s = atoi(optarg); break;
		case 'P': cfg.pin = 0; break;
		case 'S': cfg.series = 1; break;
		case 'D': cfg.disk_mib = atoi(optarg); break;
		case 'F': cfg.disk_fill_mib = atoi(optarg); break;
		case 'T': snprintf(cfg.disk_format, sizeof(cfg.disk_format), "%s", optarg); break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind < argc) {
		usage();
		return 2;
	}
	if (quick) {
		set_modes("native-unix,ferry");
		set_links("lo");
		cfg.mem_mib = 256;
		snprintf(cfg.append, sizeof(cfg.append), "fill=128 profile=mix mix=0,50,50 dirty=20 wss=64");
		cfg.repeats = 1;
		if (cfg.run_timeout_s > 180)
			cfg.run_timeout_s = 180;
	} else {
		set_modes("native-unix,native-tcp,native-multifd,native-multifd-zstd,plain-relay,ferry,"
			  "ferry-nocompress,ferry-multifd2");
		set_links("lo");
		cfg.mem_mib = 2048;
		snprintf(cfg.append, sizeof(cfg.append), "fill=1536 profile=mix mix=0,50,50 dirty=20 wss=256");
		cfg.repeats = 3;
	}
	if (modes && set_modes(modes) < 0) {
		usage();
		return 2;
	}
	if (link && set_links(link) < 0) {
		usage();
		return 2;
	}
	if (mem > 0)
		cfg.mem_mib = mem;
	if (append)
		snprintf(cfg.append, sizeof(cfg.append), "%s", append);
	if (repeats > 0)
		cfg.repeats = repeats;
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
	snprintf(path, sizeof(path), "%s/guest/ferry-guest.elf", cfg.build);
	if (access(path, R_OK)) {
		msg("%s missing (build first, or --build-dir)", path);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	mkdir(cfg.out, 0755);
	snprintf(g_work, sizeof(g_work), "/tmp/ferry-bench.XXXXXX");
	if (!mkdtemp(g_work)) {
		msg("mkdtemp: %s", strerror(errno));
		return 1;
	}
	{
		/* the agents' cluster key: 48 random bytes, base64 */
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		unsigned char k[48];
		char text[80];
		int fd = open("/dev/urandom", O_RDONLY), o = 0;

		if (fd < 0 || read(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
			msg("cannot read /dev/urandom");
			if (fd >= 0)
				close(fd);
			cleanup_all();
			return 1;
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
		snprintf(path, sizeof(path), "%s/cluster.key", g_work);
		if (write_text(path, text) || chmod(path, 0600)) {
			cleanup_all();
			return 1;
		}
	}
	if (cfg.disk_mib > 0) {
		uint64_t t = time_mono_ms();

		if (disk_make_template() < 0) {
			cleanup_all();
			return 1;
		}
		msg("disk: %d MiB %s, %d MiB filled (template in %llu ms); disk check: %s", cfg.disk_mib,
		    cfg.disk_format, cfg.disk_fill_mib, (unsigned long long)(time_mono_ms() - t),
		    cfg.guest_writes_disk ? "the guest's verify (--append has disk=, so the guest writes on after "
					    "the migration and the images may differ)"
					  : "qemu-img compare of the source and target images");
	}
	/* Above the kernel's ephemeral range (32768-60999), where outgoing
	 * connections could hold a port, and away from the e2e tests' blocks
	 * (20000-32767). */
	g_port_base = 61000 + (int)(getpid() % 500) * 4; /* + up to 998 per run */
	snprintf(path, sizeof(path), "%s/results.jsonl", cfg.out);
	jl = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/results.csv", cfg.out);
	csv = fopen(path, "w");
	if (!jl || !csv) {
		msg("cannot write into %s", cfg.out);
		cleanup_all();
		return 1;
	}
	fprintf(csv, "mode,link,mem_mib,repeat,ok,verified,total_ms,e2e_ms,wall_ms,pause_ms,raw_bytes,wire_bytes,"
		     "iterations,qemu_cpu_s,agent_cpu_s,agent_peak_rss_kib,disk_mib,disk_format,disk_total,disk_copied,"
		     "disk_data_bytes,disk_check,link_bytes,error\n");
	links_str(path, sizeof(path));
	msg("%d mode(s) x %d repeat(s), %s %s, %d MiB, append \"%s\", pinning %s", cfg.nmodes, cfg.repeats,
	    cfg.nlinks > 1 ? "links" : "link", path, cfg.mem_mib, cfg.append, cfg.pin ? "source cpu0 / target cpu1" : "off");

	for (int l = 0; l < cfg.nlinks && !g_stop; l++) {
		/* one link at a time: its namespace exists only while its runs go */
		if (netns_create(cfg.links[l]) < 0) {
			no_link = 1;
			break;
		}
		failed += run_link(results, &nres, jl, csv);
		if (netns_del() < 0) {
			no_link = 1;
			break;
		}
	}
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
	snprintf(path, sizeof(path), "%s/summary.md", cfg.out);
	{
		FILE *f = fopen(path, "r");
		char line[1024];

		while (f && fgets(line, sizeof(line), f))
			fputs(line, stdout);
		if (f)
			fclose(f);
	}
	return failed || no_link ? 1 : 0;
}
