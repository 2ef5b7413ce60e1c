/*
 * outputs.c: what a run leaves: a results.jsonl and a results.csv line
 * each, and at the end summary.md, a table per link with medians and the
 * pairwise ratios to the native baselines.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

/* --link as given, "lo,1gbit": for the summary's and the log's first line. */
void links_str(char *buf, size_t len)
{
	buf[0] = 0;
	for (int l = 0; l < cfg.nlinks; l++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", l ? "," : "", cfg.links[l]);
}

void json_line(FILE *f, const struct result *r)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "mode", json_object_new_string(r->mode));
	json_object_object_add(j, "link", json_object_new_string(r->link));
	json_object_object_add(j, "memMiB", json_object_new_int(cfg.mem_mib));
	json_object_object_add(j, "append", json_object_new_string(cfg.append));
	json_object_object_add(j, "guest", json_object_new_string(cfg.linux_guest ? "linux" : "ferry"));
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
	if (r->pages) {
		struct json_object *pc = json_object_new_object();

		json_object_object_add(pc, "pages", json_object_new_int64(r->pages));
		json_object_object_add(pc, "zero", json_object_new_int64(r->pages_zero));
		json_object_object_add(pc, "duplicate", json_object_new_int64(r->pages_dup));
		json_object_object_add(pc, "delta", json_object_new_int64(r->pages_delta));
		json_object_object_add(j, "pageCoding", pc);
	}
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

void csv_header(FILE *f)
{
	fprintf(f, "mode,link,mem_mib,repeat,ok,verified,total_ms,e2e_ms,wall_ms,pause_ms,raw_bytes,wire_bytes,"
		   "iterations,qemu_cpu_s,agent_cpu_s,agent_peak_rss_kib,disk_mib,disk_format,disk_total,disk_copied,"
		   "disk_data_bytes,disk_check,link_bytes,error\n");
}

void csv_line(FILE *f, const struct result *r)
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

/* The median, minimum and maximum of field over mode's successful runs. */
struct stat3 stat_of(const struct result *rs, int n, const char *mode, enum stat_field field)
{
	double v[MAX_RUNS];
	struct stat3 s = {0, 0, 0, 0};

	for (int i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		if (strcmp(r->mode, mode) || !r->ok)
			continue;
		switch (field) {
		case F_TOTAL: v[s.n++] = (double)r->total_ms; break;
		case F_PAUSE: v[s.n++] = (double)r->pause_ms; break;
		case F_WIRE: v[s.n++] = (double)r->wire; break;
		case F_QEMU_CPU: v[s.n++] = r->qemu_cpu; break;
		case F_AGENT_CPU: v[s.n++] = r->agent_cpu; break;
		case F_AGENT_HWM: v[s.n++] = (double)r->agent_hwm_kib; break;
		case F_ITER: v[s.n++] = (double)r->iterations; break;
		case F_E2E: v[s.n++] = (double)r->e2e_ms; break;
		case F_DISK_DATA: v[s.n++] = (double)r->disk_data; break;
		case F_LINK_BYTES: v[s.n++] = (double)r->link_bytes; break;
		case F_RAW: v[s.n++] = (double)r->raw; break;
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
 * then the median of those ratios. field: F_E2E or F_PAUSE. */
static int pair_ratio(const struct result *rs, int n, const char *mode, const char *base, enum stat_field field,
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
			double x = field == F_E2E ? (double)a->e2e_ms : (double)a->pause_ms;
			double y = field == F_E2E ? (double)b->e2e_ms : (double)b->pause_ms;

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
int link_runs(const struct result *rs, int n, const char *link, struct result *out)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (!strcmp(rs[i].link, link))
			out[k++] = rs[i];
	return k;
}

/* A mode's ratio to base in two columns, time and pause: "–" where
 * either has no successful run. */
static void ratio_cells(const struct result *rs, int n, const char *mode, const char *base, char *rt, char *rp,
			size_t len)
{
	struct stat3 t = stat_of(rs, n, mode, F_E2E), p = stat_of(rs, n, mode, F_PAUSE);
	struct stat3 bt = stat_of(rs, n, base, F_E2E), bp = stat_of(rs, n, base, F_PAUSE);

	snprintf(rt, len, "–");
	snprintf(rp, len, "–");
	if (t.n && bt.n)
		pair_ratio(rs, n, mode, base, F_E2E, rt, len);
	if (p.n && bp.n)
		pair_ratio(rs, n, mode, base, F_PAUSE, rp, len);
}

/* One mode's row of a link's table. */
static void summary_row(FILE *f, const struct result *rs, int n, const char *mode, int shaped)
{
	struct stat3 t = stat_of(rs, n, mode, F_E2E), tt = stat_of(rs, n, mode, F_TOTAL), p = stat_of(rs, n, mode, F_PAUSE);
	struct stat3 w = stat_of(rs, n, mode, F_WIRE), qc = stat_of(rs, n, mode, F_QEMU_CPU);
	struct stat3 ac = stat_of(rs, n, mode, F_AGENT_CPU), h = stat_of(rs, n, mode, F_AGENT_HWM);
	struct stat3 it = stat_of(rs, n, mode, F_ITER), dd = stat_of(rs, n, mode, F_DISK_DATA);
	struct stat3 lb = stat_of(rs, n, mode, F_LINK_BYTES);
	int total = 0;
	char rt[32], rp[32], rt2[32], rp2[32], extra[64] = "";

	for (int i = 0; i < n; i++)
		total += !strcmp(rs[i].mode, mode);
	if (!t.n) {
		fprintf(f, "| %s | 0/%d | – | – | – | – |%s%s – | – | – | – | – | – | – | – |\n", mode, total,
			cfg.disk_mib > 0 ? " – |" : "", shaped ? " – |" : "");
		return;
	}
	ratio_cells(rs, n, mode, "native-unix", rt, rp, sizeof(rt));
	ratio_cells(rs, n, mode, "native-tcp", rt2, rp2, sizeof(rt2));
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

/* One link's table, a row per mode; shaped = the link had a namespace
 * (then it has a link MiB column). */
static void summary_table(FILE *f, const struct result *rs, int n, int shaped)
{
	fprintf(f, "| mode | ok | time ms median (min–max) | tool's total ms | pause ms median (min–max) | wire MiB |%s%s iterations "
		   "| QEMU CPU s | agent CPU s | agent peak RSS MiB | time × native-unix | pause × native-unix | time × native-tcp | pause × native-tcp |\n",
		cfg.disk_mib > 0 ? " disk MiB |" : "", shaped ? " link MiB |" : "");
	fprintf(f, "|---|---|---|---|---|---|%s%s---|---|---|---|---|---|---|---|\n", cfg.disk_mib > 0 ? "---|" : "",
		shaped ? "---|" : "");
	for (int m = 0; m < cfg.nmodes; m++)
		summary_row(f, rs, n, cfg.modes[m], shaped);
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

void write_summary(const struct result *rs, int n)
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
	if (cfg.linux_guest)
		fprintf(f, "Guest: the Linux test guest (q35, UEFI, 2 vCPUs, its boot disk shared), not ferry-guest.\n\n");
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
