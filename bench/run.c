/*
 * run.c: one run, whatever its mode: its work directory, the mode's
 * driver (from the mode table), a log line, its logs kept when it failed,
 * its result written out at once; and what both drivers share.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/bench.h"

int res_fail(struct result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* guest-serial on the guest's console: wait for the boot (the guest's
 * READY and a heartbeat), or with verify have it check every page and
 * sector it wrote. Returns guest-serial's exit status. */
int guest_serial(const char *sock, int timeout_s, int verify, const char *log)
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

/* The run's line on stderr: its figures, or why it failed (its logs then
 * copied to OUT/failed-runIDX, not its images). */
static void run_report(const struct result *r, int idx, const char *dir)
{
	if (r->ok && cfg.disk_mib > 0)
		msg("  %s: total %lld ms, pause %lld ms, wire %.1f MiB (disk data %.1f MiB, job offset %.1f MiB), "
		    "iterations %lld, verify OK, disk check: %s",
		    r->mode, (long long)r->total_ms, (long long)r->pause_ms, r->wire / 1048576.0,
		    r->disk_data / 1048576.0, r->disk_copied / 1048576.0, (long long)r->iterations,
		    !strcmp(r->disk_check, "compare") ? "qemu-img compare: identical" : "guest verify");
	else if (r->ok)
		msg("  %s: total %lld ms, pause %lld ms, wire %.1f MiB, iterations %lld, verify OK", r->mode,
		    (long long)r->total_ms, (long long)r->pause_ms, r->wire / 1048576.0, (long long)r->iterations);
	if (!r->ok || cfg.keep_logs) {
		char keep[PATH_MAX + 64];
		char *argv[] = {"cp", "-r", (char *)dir, keep, NULL};

		snprintf(keep, sizeof(keep), "%s/%srun%d", cfg.out, r->ok ? "" : "failed-", idx);
		disk_remove_images(dir);
		run(argv, -1, 0, NULL, NULL, 60);
		if (!r->ok)
			msg("  %s FAILED: %s (logs in %s)", r->mode, r->error, keep);
	}
}

/*
 * One run in its own work directory on link: the mode's driver, a log
 * line, the logs kept in OUT/failed-runIDX when it failed, its result
 * written out at once. Returns 0 when it passed.
 */
int run_one(struct result *r, int idx, const char *mode, int rep, const char *link, FILE *jl, FILE *csv)
{
	char dir[PATH_MAX + 32];
	int port = cfg.port_base + (idx % 500) * 2;
	struct mode m;

	memset(r, 0, sizeof(*r));
	snprintf(r->mode, sizeof(r->mode), "%s", mode);
	snprintf(r->link, sizeof(r->link), "%s", link);
	r->rep = rep;
	snprintf(dir, sizeof(dir), "%s/run%d", cfg.work, idx);
	/* 0711: the unprivileged QEMU of ferry's agents passes through. */
	mkdir(dir, 0711);
	chmod(dir, 0711);
	if (cfg.nlinks > 1)
		msg("run %d: %s (repeat %d/%d, link %s)", idx + 1, r->mode, rep, cfg.repeats, r->link);
	else
		msg("run %d: %s (repeat %d/%d)", idx + 1, r->mode, rep, cfg.repeats);
	if (mode_find(mode, &m) < 0) /* config_parse let only known modes through */
		res_fail(r, "unknown mode %s", mode);
	else
		(void)m.run(dir, &m, port, r);
	run_report(r, idx, dir);
	json_line(jl, r);
	csv_line(csv, r);
	rm_rf(dir);
	return r->ok ? 0 : -1;
}
