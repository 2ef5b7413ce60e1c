/*
 * run_ferry.c: the ferry modes: two ferryd agents ("node-a", "node-b") on
 * the run's link, the VM created on node-a through ferryctl, and one
 * `ferryctl migrate --wait` timed from outside; the figures come from its
 * JSON, the target agent's log (QEMU's completion timestamp) and /proc.
 */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "util/timeutil.h"

/* One ferry run: its settings, its children, its clocks. */
struct frun {
	const char *dir;
	const struct mode *m;
	int port, disk;
	struct result *res;
	char ctl[PATH_MAX + 32], api[PATH_MAX + 64]; /* ferryctl, node-a's API socket */
	char img_src[PATH_MAX + 32], img_dst[PATH_MAX], serial[PATH_MAX];
	char out[PATH_MAX + 64]; /* ferryctl migrate's JSON */
	pid_t a, b, mig;
	struct psample ps[4]; /* src, dst QEMU; node-a, node-b */
	struct json_object *j; /* the migration as ferryctl reports it */
	int64_t data0, link0;
	uint64_t t0, t0_real, end;
	FILE *ser;
};

static int agent_config(const char *dir, const char *node, int port, const char *peer, int pport, int insecure)
{
	char path[PATH_MAX + 64], text[PATH_MAX * 4];

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	mkdir(path, 0711);
	snprintf(path, sizeof(path), "%s/%s.yaml", dir, node);
	snprintf(text, sizeof(text),
		 "node: %s\nlisten: 127.0.0.1:%d\napi_socket: %s/%s/api.sock\nstate_dir: %s/%s/state\n"
		 "cluster_key: %s/cluster.key\nqemu: {binary: qemu-system-x86_64, accel: tcg, user: %s}\n"
		 "allowed_paths: [%s, %s/guest]\n%s"
		 "migration: {progress_timeout_s: 150, completion_timeout_s_per_gib: 800}\n"
		 "peers:\n  - {name: %s, address: 127.0.0.1:%d}\n",
		 node, port, dir, node, dir, node, cfg.work, cfg.qemu_user, cfg.work, cfg.build,
		 insecure ? "insecure_transport: true\n" : "", peer, pport);
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


/* The disk image and the agents up. */
static int ferry_agents(struct frun *f)
{
	if (f->disk) {
		if (disk_prepare(f->dir, f->img_src, NULL, sizeof(f->img_src)) < 0)
			return res_fail(f->res, "cannot prepare the disk image (see qemu-img.log)");
		/* The agent's QEMU opens it as the unprivileged user. */
		if (chown(f->img_src, (uid_t)cfg.qemu_uid, (gid_t)cfg.qemu_gid) < 0)
			return res_fail(f->res, "cannot hand the disk image to %s: %s", cfg.qemu_user,
					strerror(errno));
		f->data0 = disk_data_bytes(f->dir, f->img_src);
		if (f->data0 < 0)
			return res_fail(f->res, "qemu-img map of the source image failed");
		f->res->disk_total = (int64_t)cfg.disk_mib << 20;
	}
	if (agent_config(f->dir, "node-a", f->port, "node-b", f->port + 1, f->m->insecure) ||
	    agent_config(f->dir, "node-b", f->port + 1, "node-a", f->port, f->m->insecure))
		return res_fail(f->res, "cannot write agent configs");
	f->a = agent_start(f->dir, "node-a", 0);
	f->b = agent_start(f->dir, "node-b", 1);
	if (f->a < 0 || f->b < 0)
		return res_fail(f->res, "an agent did not come up (see %s/node-*.log)", f->dir);
	return 0;
}

/* The VM created on node-a from a spec, its guest booted. */
static int ferry_create_vm(struct frun *f)
{
	char spec[PATH_MAX + 64], text[PATH_MAX * 2 + 1024], log[PATH_MAX + 64], disks[PATH_MAX + 128] = "";
	char *argv[] = {f->ctl, "--server", f->api, "vm", "create", "-f", spec, NULL};

	/* a local disk: ferry mirrors it to an image it creates on node-b. The
	 * guest writes it with IDE PIO, on pc, the machine of the native run. */
	if (f->disk)
		snprintf(disks, sizeof(disks),
			 "disks:\n  - {name: root, path: %s, format: %s, storage: local, bus: ide}\n",
			 f->img_src, cfg.disk_format);
	snprintf(spec, sizeof(spec), "%s/vm.yaml", f->dir);
	if (cfg.linux_guest)
		linux_spec(text, sizeof(text));
	else
		snprintf(text, sizeof(text),
			 "name: benchvm\nmemory_mib: %d\nvcpus: 1\nmachine: pc\nserial: true\nkernel: %s\n"
			 "append: \"%s\"\n%s",
			 cfg.mem_mib, cfg.kernel, cfg.append, disks);
	if (write_text(spec, text))
		return res_fail(f->res, "cannot write the VM spec");
	snprintf(log, sizeof(log), "%s/ctl.log", f->dir);
	if (run(argv, -1, 0, log, log, 60) != 0)
		return res_fail(f->res, "vm create failed");
	if (vm_serial(f->dir, "node-a", f->serial, sizeof(f->serial)))
		return res_fail(f->res, "no serial socket on node-a");
	snprintf(log, sizeof(log), "%s/serial-src.log", f->dir);
	if (guest_serial(f->serial, cfg.run_timeout_s, 0, log) != 0)
		return res_fail(f->res, "guest did not boot on the source");
	return 0;
}

/* The clocks start; ferryctl migrate --wait in the background. */
static int ferry_start(struct frun *f)
{
	char path[PATH_MAX + 64], errf[PATH_MAX + 64], chan[16];
	char *argv[20];
	int n = 0;

	snprintf(path, sizeof(path), "%s/node-a/state", f->dir);
	ps_begin(&f->ps[0], read_qemu_pid(path));
	ps_begin(&f->ps[2], f->a);
	ps_begin(&f->ps[3], f->b);
	snprintf(f->out, sizeof(f->out), "%s/migrate.json", f->dir);
	snprintf(errf, sizeof(errf), "%s/migrate.err", f->dir);
	argv[n++] = f->ctl;
	argv[n++] = "--server";
	argv[n++] = f->api;
	argv[n++] = "-o";
	argv[n++] = "json";
	argv[n++] = "migrate";
	argv[n++] = "benchvm";
	argv[n++] = "--node";
	argv[n++] = "node-b";
	argv[n++] = "--wait";
	if (f->m->no_compress)
		argv[n++] = "--no-compress";
	if (f->m->no_pages) {
		argv[n++] = "--page-cache";
		argv[n++] = "0";
	}
	if (f->m->channels) {
		snprintf(chan, sizeof(chan), "%d", f->m->channels);
		argv[n++] = "--multifd";
		argv[n++] = chan;
	}
	argv[n] = NULL;
	f->link0 = link_bytes(f->dir);
	f->t0 = time_mono_ms();
	f->t0_real = time_real_us();
	f->mig = spawn(argv, -1, 0, f->out, errf);
	if (f->mig < 0)
		return res_fail(f->res, "cannot run ferryctl migrate");
	f->end = f->t0 + (uint64_t)cfg.run_timeout_s * 1000;
	return 0;
}

/* Samples /proc (and --series) until ferryctl migrate exits; *rc: its
 * exit status. */
static int ferry_wait(struct frun *f, int *rc)
{
	char path[PATH_MAX + 64];
	uint64_t next_poll = 0;

	snprintf(path, sizeof(path), "%s/node-b/state", f->dir);
	for (;;) {
		if (f->ps[1].pid <= 0) {
			pid_t t = read_qemu_pid(path);

			if (t > 0)
				ps_begin(&f->ps[1], t), f->ps[1].cpu0 = 0; /* the target QEMU starts within the run */
		}
		for (int i = 0; i < 4; i++)
			ps_update(&f->ps[i]);
		if (f->ser && time_mono_ms() >= next_poll) {
			next_poll = time_mono_ms() + 250;
			ferry_series(f->dir, f->ser, f->t0);
		}
		*rc = child_wait(f->mig, 100);
		if (*rc != -1)
			return 0;
		if (g_stop || time_mono_ms() >= f->end) {
			child_stop(f->mig, 1000);
			if (g_stop)
				return res_fail(f->res, "interrupted");
			return res_fail(f->res, "no completion within %d s", cfg.run_timeout_s);
		}
	}
}

/* The figures of the migration into the result: ferryctl's JSON, the
 * target agent's log, /proc. */
static int ferry_collect(struct frun *f, int rc)
{
	struct result *res = f->res;
	char path[PATH_MAX + 64];
	int64_t done;

	res->wall_ms = (int64_t)(time_mono_ms() - f->t0);
	for (int i = 0; i < 4; i++)
		ps_update(&f->ps[i]);
	res->link_bytes = -1;
	if (f->link0 >= 0) {
		int64_t l1 = link_bytes(f->dir);

		if (l1 >= f->link0)
			res->link_bytes = l1 - f->link0;
	}
	f->j = json_object_from_file(f->out);
	if (!f->j)
		return res_fail(res, "ferryctl migrate exited %d without JSON", rc);
	if (strcmp(jstr(f->j, "phase"), "Succeeded"))
		return res_fail(res, "migration %s: %s", jstr(f->j, "phase"), jstr(f->j, "failureReason"));
	res->total_ms = jint(f->j, "totalMs");
	res->pause_ms = jint(f->j, "pauseMs");
	res->raw = jint(f->j, "rawBytes");
	res->wire = jint(f->j, "wireBytes");
	res->iterations = jint(f->j, "iterations");
	{
		struct json_object *pc = json_object_object_get(f->j, "pageCoding");

		if (pc) {
			res->pages = jint(pc, "pages");
			res->pages_zero = jint(pc, "zero");
			res->pages_dup = jint(pc, "duplicate");
			res->pages_delta = jint(pc, "delta");
		}
	}
	if (f->disk) {
		if (jint(f->j, "disks") != 1)
			return res_fail(res, "ferry reports %lld copied disks, not 1", (long long)jint(f->j, "disks"));
		/* diskTransferred: the mirror's offset at ferry's last poll */
		res->disk_copied = jint(f->j, "diskTransferred");
		res->disk_data = disk_data_sent(f->data0, res->disk_copied, res->disk_total);
	}
	snprintf(path, sizeof(path), "%s/node-b.log", f->dir);
	done = log_completed_us(path);
	if (!done)
		return res_fail(res, "no target completion in %s", path);
	res->e2e_ms = (done - (int64_t)f->t0_real) / 1000;
	res->qemu_cpu = (f->ps[0].cpu - f->ps[0].cpu0) + (f->ps[1].cpu - f->ps[1].cpu0);
	res->agent_cpu = (f->ps[2].cpu - f->ps[2].cpu0) + (f->ps[3].cpu - f->ps[3].cpu0);
	res->agent_hwm_kib = f->ps[2].hwm_kib > f->ps[3].hwm_kib ? f->ps[2].hwm_kib : f->ps[3].hwm_kib;
	return 0;
}

/* The guest's own verify on node-b; with a disk, then the images. */
static int ferry_verify(struct frun *f)
{
	char path[PATH_MAX + 64], err[256];

	if (vm_describe(f->dir, "node-b", f->serial, sizeof(f->serial), f->disk ? f->img_dst : NULL,
			sizeof(f->img_dst)))
		return res_fail(f->res, "no serial socket%s on node-b", f->disk ? " or disk path" : "");
	if (f->disk && !strcmp(f->img_dst, f->img_src))
		return res_fail(f->res, "node-b runs the VM on the source's image %s: the disk was not copied",
				f->img_src);
	snprintf(path, sizeof(path), "%s/serial-dst.log", f->dir);
	f->res->verified = guest_serial(f->serial, 300, 1, path) == 0;
	if (!f->res->verified)
		return res_fail(f->res, "guest verify on the target failed");
	if (f->disk) {
		/* the agents first (their QEMUs outlive them), then the QEMUs,
		 * cleanly: the source's has quit already */
		child_stop(f->a, 20000);
		child_stop(f->b, 20000);
		f->a = f->b = 0;
		snprintf(path, sizeof(path), "%s/node-a/state", f->dir);
		term_qemu(path, 10000);
		snprintf(path, sizeof(path), "%s/node-b/state", f->dir);
		term_qemu(path, 10000);
		if (disk_check(f->dir, f->img_src, f->img_dst, f->res, err, sizeof(err)) < 0)
			return res_fail(f->res, "%s", err);
	}
	return 0;
}

int run_ferry(const char *dir, const struct mode *m, int port, struct result *res)
{
	struct frun f = {.dir = dir, .m = m, .port = port, .disk = cfg.disk_mib > 0, .res = res, .link0 = -1};
	char path[PATH_MAX + 64];
	int rc = -1, exit_rc = 0;

	f.ser = series_open(res->link, res->mode, res->rep);
	snprintf(f.ctl, sizeof(f.ctl), "%s/cli/ferryctl", cfg.build);
	snprintf(f.api, sizeof(f.api), "%s/node-a/api.sock", dir);
	if (ferry_agents(&f) < 0 || ferry_create_vm(&f) < 0)
		goto out;
	if (ferry_start(&f) < 0 || ferry_wait(&f, &exit_rc) < 0)
		goto out;
	if (ferry_collect(&f, exit_rc) < 0 || ferry_verify(&f) < 0)
		goto out;
	res->ok = 1;
	rc = 0;
out:
	if (f.ser) {
		fclose(f.ser);
		series_plot(res->link, res->mode, res->rep);
	}
	if (f.j)
		json_object_put(f.j);
	child_stop(f.a, 20000);
	child_stop(f.b, 20000);
	snprintf(path, sizeof(path), "%s/node-a/state", dir);
	kill_pidfiles(path);
	snprintf(path, sizeof(path), "%s/node-b/state", dir);
	kill_pidfiles(path);
	return rc;
}
