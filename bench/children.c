/*
 * children.c: the bench's child processes (started in the link's namespace
 * and pinned when asked, every wait bounded), the QEMUs ferryd started
 * (not our children: found by their pid files), and cleanup_all, which
 * undoes everything on every exit path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "util/timeutil.h"

/* Every child not yet waited for, for cleanup_all. */
static pid_t children[MAX_CHILD];
/* cleanup's own commands run to completion despite g_stop */
static int cleaning;

void msg(const char *fmt, ...)
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

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void child_track(pid_t p)
{
	for (int i = 0; i < MAX_CHILD; i++)
		if (!children[i]) {
			children[i] = p;
			return;
		}
}

static void child_untrack(pid_t p)
{
	for (int i = 0; i < MAX_CHILD; i++)
		if (children[i] == p)
			children[i] = 0;
}

int children_cleaning(int on)
{
	int was = cleaning;

	cleaning = on;
	return was;
}

/* In the child: stdin from /dev/null, stdout/stderr appended to files. */
static void child_redirect(const char *out, const char *err)
{
	int fd;

	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		dup2(fd, 0);
	fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0)
		dup2(fd, 1);
	fd = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0)
		dup2(fd, 2);
}

/*
 * Starts argv (in the namespace when one exists, pinned to cpu >= 0),
 * stdout/stderr to files (NULL = /dev/null). Returns the pid: `ip netns
 * exec` and `taskset` exec in place, so it is the program's own pid.
 */
pid_t spawn(char *const argv[], int cpu, int in_netns, const char *out, const char *err)
{
	char *full[64];
	char cpus[16];
	int n = 0;
	pid_t p;

	if (in_netns && netns_name()[0]) {
		full[n++] = "ip";
		full[n++] = "netns";
		full[n++] = "exec";
		full[n++] = (char *)netns_name();
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
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		child_redirect(out, err);
		execvp(full[0], full);
		_exit(127);
	}
	child_track(p);
	return p;
}

/* Waits for pid up to ms; returns its exit status (0..255, 128+sig) or -1 if still running. */
int child_wait(pid_t p, int ms)
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

void child_stop(pid_t p, int grace_ms)
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
int run(char *const argv[], int cpu, int in_netns, const char *out, const char *err, int timeout_s)
{
	pid_t p = spawn(argv, cpu, in_netns, out, err);
	uint64_t end = time_mono_ms() + (uint64_t)timeout_s * 1000;

	if (p < 0)
		return -1;
	for (;;) {
		int r = child_wait(p, 100);

		if (r != -1)
			return r;
		if ((g_stop && !cleaning) || time_mono_ms() >= end) {
			child_stop(p, 1000);
			return -1;
		}
	}
}

/* A process not our child (a QEMU ferryd started): kill and wait until gone. */
void kill_foreign(pid_t p)
{
	if (p <= 0)
		return;
	kill(p, SIGKILL);
	for (int i = 0; i < 250 && kill(p, 0) == 0; i++)
		sleep_ms(20);
}

/*
 * The pids in STATE_DIR/vms/<vm>/qemu.pid, in directory order: fn(pid,
 * arg) for each until it returns non-zero. Returns that value, 0 when
 * every pid was visited (or there are none).
 */
static int each_qemu_pid(const char *state_dir, int (*fn)(pid_t, void *), void *arg)
{
	char path[PATH_MAX + 64];
	DIR *d;
	struct dirent *e;
	int r = 0;

	snprintf(path, sizeof(path), "%s/vms", state_dir);
	d = opendir(path);
	if (!d)
		return 0;
	while (!r && (e = readdir(d))) {
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
			r = fn((pid_t)pid, arg);
		fclose(f);
	}
	closedir(d);
	return r;
}

static int kill_one(pid_t p, void *arg)
{
	(void)arg;
	kill_foreign(p);
	return 0;
}

void kill_pidfiles(const char *state_dir)
{
	(void)each_qemu_pid(state_dir, kill_one, NULL);
}

static int take_first(pid_t p, void *arg)
{
	*(pid_t *)arg = p;
	return p != 0;
}

/* The QEMU ferryd started under state_dir, 0 if none (yet). */
pid_t read_qemu_pid(const char *state_dir)
{
	pid_t p = 0;

	(void)each_qemu_pid(state_dir, take_first, &p);
	return p;
}

void rm_rf(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};

	if (dir[0])
		run(argv, -1, 0, NULL, NULL, 60);
}

int wait_file(const char *path, int ms)
{
	uint64_t end = time_mono_ms() + (uint64_t)ms;

	while (access(path, F_OK) != 0) {
		if (time_mono_ms() >= end || g_stop)
			return -1;
		sleep_ms(20);
	}
	return 0;
}

int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* QEMUs ferryd started outlive it by design: kill those left in run dirs. */
static void kill_run_qemus(const char *work)
{
	char state[PATH_MAX + 32];
	DIR *d = opendir(work);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "run", 3))
			continue;
		snprintf(state, sizeof(state), "%s/%s/node-a/state", work, e->d_name);
		kill_pidfiles(state);
		snprintf(state, sizeof(state), "%s/%s/node-b/state", work, e->d_name);
		kill_pidfiles(state);
	}
	if (d)
		closedir(d);
}

void cleanup_all(void)
{
	cleaning = 1;
	for (int i = 0; i < MAX_CHILD; i++)
		if (children[i])
			child_stop(children[i], 3000);
	if (cfg.work[0])
		kill_run_qemus(cfg.work);
	netns_del();
	rm_rf(cfg.work);
	cfg.work[0] = 0;
}
