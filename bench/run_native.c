/*
 * run_native.c: the native modes, QEMU's own migration between two QEMUs
 * the bench starts itself (over a unix socket, TCP, multifd, or a socat
 * relay pair), driven and timed over QMP; with a disk, the storage
 * sequence libvirt uses (an NBD mirror straight between the two QEMUs,
 * finished at pre-switchover).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/qmpwatch.h"
#include "util/timeutil.h"

/* One native run: its settings, its children, its sessions, its clocks. */
struct nrun {
	const char *dir;
	const struct mode *m;
	int port, disk;
	struct result *res;
	char img_src[PATH_MAX + 32], img_dst[PATH_MAX + 32];
	char nbd_srv[PATH_MAX + 96], nbd_cli[PATH_MAX + 96]; /* the NBD addresses, see native_mirror */
	char migrate[PATH_MAX + 128];                       /* the source's migrate arguments */
	pid_t src, dst, relay_s, relay_t, nrelay_s, nrelay_t;
	struct qwatch *qs, *qd;
	struct psample ps[6]; /* src, dst QEMU; the relays: source, target, NBD source, NBD target */
	int64_t data0, link0;
	struct json_object *st; /* the last query-migrate */
	uint64_t t0, t0_real, end, t_mirror, t_migrate;
	FILE *ser;
};

/* A QEMU of the run, named src or dst (its serial and QMP sockets and log
 * in dir), with incoming ("defer") on the target and the disk image img. */
static pid_t start_qemu(const char *dir, const char *name, int cpu, const char *incoming, const char *img)
{
	char mem[16], kernel[PATH_MAX + 32], ser[PATH_MAX + 96], qmp[PATH_MAX + 96], log[PATH_MAX + 32];
	char blk[PATH_MAX + 160];
	struct linux_args la;
	char *argv[56];
	int n = 0;

	snprintf(mem, sizeof(mem), "%d", cfg.mem_mib);
	snprintf(kernel, sizeof(kernel), "%s/guest/ferry-guest.elf", cfg.build);
	snprintf(ser, sizeof(ser), "socket,id=ser0,path=%s/%s.serial,server=on,wait=off", dir, name);
	snprintf(qmp, sizeof(qmp), "socket,id=qmp,path=%s/%s.qmp,server=on,wait=off", dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	argv[n++] = "qemu-system-x86_64";
	argv[n++] = "-accel";
	/* ferry's shape for these VMs: MTTCG with more than one vCPU */
	argv[n++] = cfg.linux_guest ? "tcg,thread=multi" : "tcg";
	argv[n++] = "-machine";
	argv[n++] = cfg.linux_guest ? "q35" : "pc";
	argv[n++] = "-cpu";
	argv[n++] = "qemu64";
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-smp";
	argv[n++] = cfg.linux_guest ? "2" : "1";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-uuid";
	argv[n++] = "7b4ad1e6-0b1e-4d0c-9a51-0f6c2f2bd9a1";
	if (cfg.linux_guest) {
		n = linux_qemu_args(&la, dir, name, argv, n);
		if (n < 0)
			return -1;
	} else {
		argv[n++] = "-kernel";
		argv[n++] = kernel;
		argv[n++] = "-append";
		argv[n++] = cfg.append;
	}
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


/* socat from `from` to `to` on cpu, logging into dir/relay.log */
static pid_t socat(const char *dir, const char *from, const char *to, int cpu)
{
	char lg[PATH_MAX + 32];
	char *argv[] = {"socat", (char *)from, (char *)to, NULL};

	snprintf(lg, sizeof(lg), "%s/relay.log", dir);
	return spawn(argv, cpu, 1, lg, lg);
}

/* The mirror job in query-block-jobs: 1 present (*ready: in sync), 0 gone,
 * -1 when the query failed. */
static int mirror_job(struct qwatch *qs, int *ready)
{
	struct json_object *jobs = qw_exec(qs, "query-block-jobs", NULL, 30);
	int present = 0;

	if (!jobs)
		return -1;
	for (size_t i = 0; i < json_object_array_length(jobs); i++) {
		struct json_object *j = json_object_array_get_idx(jobs, i), *v;

		if (strcmp(jstr(j, "device"), NATIVE_JOB))
			continue;
		present = 1;
		if (ready)
			*ready = json_object_object_get_ex(j, "ready", &v) && json_object_get_boolean(v);
	}
	json_object_put(jobs);
	return present;
}

/* The target exports its fresh image over NBD; t_mirror: just before the
 * source's blockdev-add (where ferry's totalMs starts). */
static int mirror_start(struct nrun *n)
{
	char args[PATH_MAX + 256];

	snprintf(args, sizeof(args), "{\"addr\":%s}", n->nbd_srv);
	if (qw_ok(n->qd, "nbd-server-start", args))
		return res_fail(n->res, "nbd-server-start on the target failed");
	if (qw_ok(n->qd, "block-export-add",
		  "{\"type\":\"nbd\",\"id\":\"export-root\",\"node-name\":\"disk-root\",\"name\":\"root\","
		  "\"writable\":true}"))
		return res_fail(n->res, "block-export-add on the target failed");
	n->t_mirror = time_mono_ms();
	snprintf(args, sizeof(args), "{\"driver\":\"nbd\",\"node-name\":\"nbd-root\",\"server\":%s,\"export\":\"root\"}",
		 n->nbd_cli);
	if (qw_ok(n->qs, "blockdev-add", args))
		return res_fail(n->res, "blockdev-add of the NBD client on the source failed");
	if (qw_ok(n->qs, "blockdev-mirror",
		  "{\"job-id\":\"" NATIVE_JOB "\",\"device\":\"disk-root\",\"target\":\"nbd-root\",\"sync\":\"full\","
		  "\"copy-mode\":\"background\"}"))
		return res_fail(n->res, "blockdev-mirror failed");
	return 0;
}

/*
 * The storage sequence libvirt uses, for one local disk,
 * directly between the two QEMUs: the target exports its fresh image over
 * NBD (writable), the source mirrors into an NBD client node. nbd_srv is
 * the target's nbd-server-start address (SocketAddressLegacy), nbd_cli the
 * source's blockdev-add server (SocketAddress). Returns 0 once the job is
 * READY, -1 with the reason in the result.
 */
static int native_mirror(struct nrun *n)
{
	struct qwatch *qs = n->qs;

	if (mirror_start(n) < 0)
		return -1;
	for (;;) {
		int ready = 0, present;

		if (qs->job_end)
			return res_fail(n->res, "the mirror ended before it was in sync%s%s", qs->job_error[0] ? ": " : "",
					qs->job_error);
		present = mirror_job(qs, &ready);
		if (present < 0)
			return res_fail(n->res, "query-block-jobs failed");
		if (ready || qs->job_ready)
			return 0;
		if (!present)
			return res_fail(n->res, "the mirror job vanished before it was in sync");
		if (g_stop)
			return res_fail(n->res, "interrupted");
		if (time_mono_ms() >= n->end)
			return res_fail(n->res, "the mirror was not in sync within %d s", cfg.run_timeout_s);
		qw_idle(qs, 100); /* BLOCK_JOB_READY ends the wait early */
	}
}

/*
 * At pre-switchover (the guest is stopped): a graceful block-job-cancel on
 * the READY mirror copies what is still dirty and ends with COMPLETED, the
 * target image then complete; drop the NBD client node and let QEMU send
 * the device state. res->disk_copied: the job's offset in its end event.
 */
static int native_switchover(struct nrun *n)
{
	struct qwatch *qs = n->qs;
	uint64_t end = time_mono_ms() + 120000;

	if (qw_ok(qs, "block-job-cancel", "{\"device\":\"" NATIVE_JOB "\"}"))
		return res_fail(n->res, "block-job-cancel failed");
	while (!qs->job_end) {
		int present = mirror_job(qs, NULL);

		if (present < 0)
			return res_fail(n->res, "query-block-jobs failed");
		/* the end event comes before a reply that no longer lists the job */
		if (!present)
			break;
		if (g_stop || time_mono_ms() >= end)
			return res_fail(n->res, "the mirror did not end within 120 s of its cancel");
		qw_idle(qs, 20);
	}
	if (qs->job_end != 1 || qs->job_error[0])
		return res_fail(n->res, "the mirror %s%s%s",
				qs->job_end == 2 ? "was cancelled before it was in sync" :
				qs->job_end == 1 ? "failed" : "ended without an event",
				qs->job_error[0] ? ": " : "", qs->job_error);
	n->res->disk_copied = qs->job_offset;
	if (qw_ok(qs, "blockdev-del", "{\"node-name\":\"nbd-root\"}"))
		return res_fail(n->res, "blockdev-del of the NBD client failed");
	if (qw_ok(qs, "migrate-continue", "{\"state\":\"pre-switchover\"}"))
		return res_fail(n->res, "migrate-continue failed");
	return 0;
}

/* Both QEMUs up, the guest booted on the source, QMP to both. */
static int native_boot(struct nrun *n)
{
	char path[PATH_MAX + 64], log[PATH_MAX + 64];

	if (n->disk) {
		if (disk_prepare(n->dir, n->img_src, n->img_dst, sizeof(n->img_src)) < 0)
			return res_fail(n->res, "cannot prepare the disk images (see qemu-img.log)");
		n->data0 = disk_data_bytes(n->dir, n->img_src);
		if (n->data0 < 0)
			return res_fail(n->res, "qemu-img map of the source image failed");
		n->res->disk_total = (int64_t)cfg.disk_mib << 20;
	}
	n->src = start_qemu(n->dir, "src", 0, NULL, n->disk ? n->img_src : NULL);
	snprintf(path, sizeof(path), "%s/src.serial", n->dir);
	if (n->src < 0 || wait_file(path, 10000) < 0)
		return res_fail(n->res, "source QEMU did not start");
	snprintf(log, sizeof(log), "%s/serial-src.log", n->dir);
	if (guest_serial(path, cfg.run_timeout_s, 0, log) != 0)
		return res_fail(n->res, "guest did not boot on the source");
	n->dst = start_qemu(n->dir, "dst", 1, "defer", n->disk ? n->img_dst : NULL);
	snprintf(path, sizeof(path), "%s/src.qmp", n->dir);
	n->qs = qw_open(path, 20);
	snprintf(path, sizeof(path), "%s/dst.qmp", n->dir);
	n->qd = qw_open(path, 20);
	if (!n->qs || !n->qd)
		return res_fail(n->res, "cannot reach QMP");
	return 0;
}

/* Capabilities and parameters on both sides, the target listening. */
static int native_configure(struct nrun *n)
{
	const char *mfd = n->m->channels ? ",{\"capability\":\"multifd\",\"state\":true}" : "";
	int tcp = n->m->path == PATH_TCP;
	char args[PATH_MAX + 128];

	/* pause-before-switchover is the source's alone: it stops there for
	 * the disks' last copy */
	snprintf(args, sizeof(args), "{\"capabilities\":[{\"capability\":\"events\",\"state\":true}%s%s]}", mfd,
		 n->disk ? ",{\"capability\":\"pause-before-switchover\",\"state\":true}" : "");
	if (qw_ok(n->qs, "migrate-set-capabilities", args))
		return res_fail(n->res, "migrate-set-capabilities failed");
	snprintf(args, sizeof(args), "{\"capabilities\":[{\"capability\":\"events\",\"state\":true}%s]}", mfd);
	if (qw_ok(n->qd, "migrate-set-capabilities", args))
		return res_fail(n->res, "migrate-set-capabilities failed");
	if (qw_ok(n->qs, "migrate-set-parameters", "{\"max-bandwidth\":1099511627776,\"downtime-limit\":300}"))
		return res_fail(n->res, "migrate-set-parameters failed");
	if (n->m->channels) {
		snprintf(args, sizeof(args), "{\"multifd-channels\":%d%s%s%s}", n->m->channels,
			 n->m->multifd_compression ? ",\"multifd-compression\":\"" : "",
			 n->m->multifd_compression ? n->m->multifd_compression : "",
			 n->m->multifd_compression ? "\"" : "");
		if (qw_ok(n->qs, "migrate-set-parameters", args) || qw_ok(n->qd, "migrate-set-parameters", args))
			return res_fail(n->res, "multifd parameters failed");
	}
	if (tcp)
		snprintf(n->migrate, sizeof(n->migrate), "{\"uri\":\"tcp:127.0.0.1:%d\"}", n->port);
	else
		snprintf(n->migrate, sizeof(n->migrate), "{\"uri\":\"unix:%s/mig.sock\"}", n->dir);
	if (qw_ok(n->qd, "migrate-incoming", n->migrate))
		return res_fail(n->res, "migrate-incoming failed");
	return 0;
}

/* NBD: over TCP inside the namespace for the TCP modes (it crosses the
 * emulated link, port+1), a unix socket for native-unix, and for
 * plain-relay a unix socket behind a second socat pair. */
static void native_nbd_addrs(struct nrun *n)
{
	if (n->m->path == PATH_TCP) {
		snprintf(n->nbd_srv, sizeof(n->nbd_srv),
			 "{\"type\":\"inet\",\"data\":{\"host\":\"127.0.0.1\",\"port\":\"%d\"}}", n->port + 1);
		snprintf(n->nbd_cli, sizeof(n->nbd_cli), "{\"type\":\"inet\",\"host\":\"127.0.0.1\",\"port\":\"%d\"}",
			 n->port + 1);
	} else {
		snprintf(n->nbd_srv, sizeof(n->nbd_srv), "{\"type\":\"unix\",\"data\":{\"path\":\"%s/nbd.sock\"}}", n->dir);
		snprintf(n->nbd_cli, sizeof(n->nbd_cli), "{\"type\":\"unix\",\"path\":\"%s/%s.sock\"}", n->dir,
			 n->m->path == PATH_RELAY ? "relay-nbd" : "nbd");
	}
}

/* A socat pair: target side TCP port -> the target's unix socket to_sock,
 * source side unix socket from_sock -> TCP port. 0 once from_sock exists. */
static int relay_pair(struct nrun *n, int port, const char *to_sock, const char *from_sock, pid_t *s, pid_t *t)
{
	char l1[64], c1[PATH_MAX + 32], l2[PATH_MAX + 64], c2[64], path[PATH_MAX + 64];

	snprintf(l1, sizeof(l1), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port);
	snprintf(c1, sizeof(c1), "UNIX-CONNECT:%s/%s", n->dir, to_sock);
	*t = socat(n->dir, l1, c1, 1);
	snprintf(l2, sizeof(l2), "UNIX-LISTEN:%s/%s", n->dir, from_sock);
	snprintf(c2, sizeof(c2), "TCP:127.0.0.1:%d", port);
	*s = socat(n->dir, l2, c2, 0);
	snprintf(path, sizeof(path), "%s/%s", n->dir, from_sock);
	return *s < 0 || *t < 0 || wait_file(path, 5000) < 0 ? -1 : 0;
}

/* plain-relay: the migration (and the NBD mirror) through socat pairs; the
 * source then migrates to the relay's socket. */
static int native_relay(struct nrun *n)
{
	if (relay_pair(n, n->port, "mig.sock", "relay.sock", &n->relay_s, &n->relay_t) < 0)
		return res_fail(n->res, "relay did not start");
	if (n->disk && relay_pair(n, n->port + 1, "nbd.sock", "relay-nbd.sock", &n->nrelay_s, &n->nrelay_t) < 0)
		return res_fail(n->res, "NBD relay did not start");
	sleep_ms(300); /* the target socats' listen: no event to wait on */
	snprintf(n->migrate, sizeof(n->migrate), "{\"uri\":\"unix:%s/relay.sock\"}", n->dir);
	return 0;
}

/* --series: one line from a query-migrate reply. */
static void series_sample(FILE *ser, struct json_object *st, uint64_t t0)
{
	struct json_object *ram = NULL;
	int64_t page;

	json_object_object_get_ex(st, "ram", &ram);
	page = jint(ram, "page-size") ? jint(ram, "page-size") : 4096;
	fprintf(ser, "%llu %lld %lld %.0f\n", (unsigned long long)(time_mono_ms() - t0),
		(long long)jint(ram, "remaining"), (long long)(jint(ram, "dirty-pages-rate") * page),
		json_object_get_double(json_object_object_get(ram, "mbps")) * 1e6 / 8);
}

/* The clocks start; the mirror (with a disk), then migrate. */
static int native_start(struct nrun *n)
{
	pid_t pids[6] = {n->src, n->dst, n->relay_s, n->relay_t, n->nrelay_s, n->nrelay_t};

	for (int i = 0; i < 6; i++)
		ps_begin(&n->ps[i], pids[i]);
	n->link0 = link_bytes(n->dir);
	n->t0 = time_mono_ms();
	n->t0_real = time_real_us();
	n->end = n->t0 + (uint64_t)cfg.run_timeout_s * 1000;
	if (n->disk && native_mirror(n) < 0)
		return -1;
	n->t_migrate = time_mono_ms();
	if (qw_ok(n->qs, "migrate", n->migrate))
		return res_fail(n->res, "migrate failed to start");
	return 0;
}

/* Polls the source's query-migrate until completed (n->st its last
 * reply), doing the disks' switchover at pre-switchover. */
static int native_wait(struct nrun *n)
{
	int switched = 0;

	for (;;) {
		const char *s;

		for (int i = 0; i < 6; i++)
			ps_update(&n->ps[i]);
		if (n->st)
			json_object_put(n->st);
		n->st = qw_exec(n->qs, "query-migrate", NULL, 30);
		if (!n->st)
			return res_fail(n->res, "query-migrate on the source failed");
		s = jstr(n->st, "status");
		if (n->ser)
			series_sample(n->ser, n->st, n->t0);
		if (!strcmp(s, "completed"))
			return 0;
		if (!strcmp(s, "failed") || !strcmp(s, "cancelled"))
			return res_fail(n->res, "migration %s: %s", s, jstr(n->st, "error-desc"));
		if (n->disk && !switched && (n->qs->pre_switchover || !strcmp(s, "pre-switchover"))) {
			switched = 1;
			if (native_switchover(n) < 0)
				return -1;
			continue;
		}
		if (g_stop)
			return res_fail(n->res, "interrupted");
		if (time_mono_ms() >= n->end)
			return res_fail(n->res, "no completion within %d s", cfg.run_timeout_s);
		qw_idle(n->qs, 50); /* a MIGRATION event (pre-switchover, completed) ends it early */
	}
}

/* QEMU can report "completed" a moment before it fills in total-time:
 * then query once more. */
static void native_total_time(struct nrun *n)
{
	struct json_object *again;

	if (jint(n->st, "total-time") > 0)
		return;
	again = qw_exec(n->qs, "query-migrate", NULL, 30);
	if (again && !strcmp(jstr(again, "status"), "completed")) {
		json_object_put(n->st);
		n->st = again;
	} else if (again) {
		json_object_put(again);
	}
}

/* The figures of a completed migration into the result. */
static int native_collect(struct nrun *n)
{
	struct result *res = n->res;
	struct json_object *ram = NULL;

	res->wall_ms = (int64_t)(time_mono_ms() - n->t0);
	qw_wait_resume(n->qd, 30000); /* the target's RESUME follows completion closely */
	for (int i = 0; i < 6; i++)
		ps_update(&n->ps[i]);
	res->link_bytes = -1;
	if (n->link0 >= 0) {
		int64_t l1 = link_bytes(n->dir);

		if (l1 >= n->link0)
			res->link_bytes = l1 - n->link0;
	}
	if (n->disk && qw_ok(n->qd, "nbd-server-stop", NULL))
		msg("  warning: nbd-server-stop on the target failed");
	native_total_time(n);
	json_object_object_get_ex(n->st, "ram", &ram);
	/* with a disk, from the mirror's start, like ferry's totalMs */
	res->total_ms = jint(n->st, "total-time") + (n->disk ? (int64_t)(n->t_migrate - n->t_mirror) : 0);
	res->wire = jint(ram, "transferred");
	res->raw = jint(ram, "normal-bytes");
	res->iterations = jint(ram, "dirty-sync-count");
	if (n->disk) {
		/* the mirror's offset counts zero areas, which travel as NBD
		 * write-zeroes: the data is what the image held plus what the
		 * guest wrote again during the copy */
		res->disk_data = disk_data_sent(n->data0, res->disk_copied, res->disk_total);
		res->wire += res->disk_data;
		res->raw += res->disk_data;
	}
	if (!n->qs->stop_us || !n->qd->resume_us)
		return res_fail(res, "missing STOP/RESUME event");
	res->e2e_ms = ((n->qd->completed_us ? n->qd->completed_us : n->qd->resume_us) - (int64_t)n->t0_real) / 1000;
	res->pause_ms = (n->qd->resume_us - n->qs->stop_us) / 1000;
	res->qemu_cpu = (n->ps[0].cpu - n->ps[0].cpu0) + (n->ps[1].cpu - n->ps[1].cpu0);
	res->agent_cpu = 0;
	res->agent_hwm_kib = 0;
	for (int i = 2; i < 6; i++) {
		res->agent_cpu += n->ps[i].cpu - n->ps[i].cpu0;
		res->agent_hwm_kib += n->ps[i].hwm_kib;
	}
	return 0;
}

/* The guest's own verify on the target; with a disk, then the images. */
static int native_verify(struct nrun *n)
{
	char path[PATH_MAX + 64], log[PATH_MAX + 64], err[256];

	snprintf(path, sizeof(path), "%s/dst.serial", n->dir);
	snprintf(log, sizeof(log), "%s/serial-dst.log", n->dir);
	n->res->verified = guest_serial(path, 300, 1, log) == 0;
	if (!n->res->verified)
		return res_fail(n->res, "guest verify on the target failed");
	if (n->disk) {
		/* both QEMUs shut down cleanly (SIGTERM flushes the images) */
		child_stop(n->src, 10000);
		child_stop(n->dst, 10000);
		n->src = n->dst = 0;
		if (disk_check(n->dir, n->img_src, n->img_dst, n->res, err, sizeof(err)) < 0)
			return res_fail(n->res, "%s", err);
	}
	return 0;
}

int run_native(const char *dir, const struct mode *m, int port, struct result *res)
{
	struct nrun n = {.dir = dir, .m = m, .port = port, .disk = cfg.disk_mib > 0, .res = res, .link0 = -1};
	int rc = -1;

	n.ser = series_open(res->link, res->mode, res->rep);
	if (native_boot(&n) < 0 || native_configure(&n) < 0)
		goto out;
	native_nbd_addrs(&n);
	if (m->path == PATH_RELAY && native_relay(&n) < 0)
		goto out;
	if (native_start(&n) < 0 || native_wait(&n) < 0)
		goto out;
	if (native_collect(&n) < 0 || native_verify(&n) < 0)
		goto out;
	res->ok = 1;
	rc = 0;
out:
	if (n.ser) {
		fclose(n.ser);
		series_plot(res->link, res->mode, res->rep);
	}
	if (n.st)
		json_object_put(n.st);
	qw_close(n.qs);
	qw_close(n.qd);
	child_stop(n.relay_s, 2000);
	child_stop(n.relay_t, 2000);
	child_stop(n.nrelay_s, 2000);
	child_stop(n.nrelay_t, 2000);
	child_stop(n.src, 3000);
	child_stop(n.dst, 3000);
	return rc;
}
