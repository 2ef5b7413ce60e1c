/* Storage migration: see storage.h for the sequence. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/storage.h"
#include "engine/vmspec.h"
#include "qmp/qmp.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#define QMP_TIMEOUT_MS 10000
#define QEMU_IMG_TIMEOUT_MS 60000
#define JOB_PREFIX "ferry-mirror-"
#define NODE_PREFIX "nbd-" /* + a disk name: within QEMU's 31 characters */

extern char **environ;

struct stor_disk {
	char name[64];
	char format[16];
	uint64_t size;
	char image[512];     /* target: the image created here */
	size_t spec_idx;     /* target: which of the spec's disks it is */
	int created;         /* target: image exists and is ours to delete */
	/* source */
	int node_added, job_running, ready, write_blocking;
	int actively_synced; /* QEMU 8.2+: every guest write is mirrored before it completes */
	uint64_t len, offset;
};

struct stor {
	struct stor_disk *d;
	size_t n;
	int has_job_change; /* QEMU can switch a job's copy mode in place (8.2+) */
	int exporting;      /* target: NBD server started */
	uint64_t speed_bps; /* source: the mirrors' rate limit, 0 none */
	char failed[256];   /* source: first job failure seen in an event */
};

static int copied(const struct vm_disk *d)
{
	return !strcmp(d->type, "disk") && !strcmp(d->storage, "local") && d->path[0];
}

static int stor_alloc(size_t n, struct stor **out)
{
	struct stor *st = calloc(1, sizeof(*st));

	if (!st || (n && !(st->d = calloc(n, sizeof(*st->d))))) {
		free(st);
		return -ENOMEM;
	}
	*out = st;
	return 0;
}

int stor_plan(const struct vm_spec *spec, struct stor **out)
{
	struct stor *st;
	size_t n = 0;
	int r = stor_alloc(spec->n_disks, &st);

	if (r < 0)
		return r;
	for (size_t i = 0; i < spec->n_disks; i++) {
		const struct vm_disk *d = &spec->disks[i];

		if (!copied(d))
			continue;
		snprintf(st->d[n].name, sizeof(st->d[n].name), "%s", d->name);
		snprintf(st->d[n].format, sizeof(st->d[n].format), "%s", d->format);
		n++;
	}
	st->n = n;
	*out = st;
	return 0;
}

size_t stor_count(const struct stor *st)
{
	return st ? st->n : 0;
}

uint64_t stor_bytes(const struct stor *st)
{
	uint64_t sum = 0;

	for (size_t i = 0; st && i < st->n; i++)
		sum += st->d[i].size;
	return sum;
}

void stor_free(struct stor *st)
{
	if (!st)
		return;
	free(st->d);
	free(st);
}

int stor_remove_vm_images(const char *state_dir, const char *vm)
{
	char dir[400], path[700];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (!vm[0] || strchr(vm, '/') || vm[0] == '.')
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%s/disks/%s", state_dir, vm);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0) {
			n++;
			log_info("storage", "event=image_removed path=%s", path);
		}
	}
	closedir(d);
	rmdir(dir);
	return n;
}

/* ---- source ------------------------------------------------------------ */

static struct stor_disk *by_job(struct stor *st, const char *job)
{
	if (!job || strncmp(job, JOB_PREFIX, strlen(JOB_PREFIX)))
		return NULL;
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->d[i].name, job + strlen(JOB_PREFIX)))
			return &st->d[i];
	return NULL;
}

static const char *jstr(struct json_object *o, const char *k)
{
	return json_object_get_string(json_object_object_get(o, k));
}

int stor_source_size(struct stor *st, struct qmp *q, char *err, size_t errlen)
{
	struct json_object *args, *ret = NULL;
	int r;

	if (!st->n)
		return 0;
	args = json_object_new_object();
	json_object_object_add(args, "flat", json_object_new_boolean(1));
	r = qmp_call(q, "query-named-block-nodes", args, &ret, QMP_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	if (r < 0)
		return r;
	for (size_t i = 0; i < st->n; i++) {
		char node[80];

		snprintf(node, sizeof(node), "disk-%s", st->d[i].name);
		for (size_t j = 0; j < json_object_array_length(ret); j++) {
			struct json_object *n = json_object_array_get_idx(ret, j), *img;
			const char *nn = jstr(n, "node-name");

			if (nn && !strcmp(nn, node) && (img = json_object_object_get(n, "image")))
				st->d[i].size = (uint64_t)json_object_get_int64(
					json_object_object_get(img, "virtual-size"));
		}
		if (!st->d[i].size) {
			snprintf(err, errlen, "the source QEMU has no block node %s for disk %s", node,
				 st->d[i].name);
			r = -ENOENT;
			break;
		}
	}
	json_object_put(ret);
	return r;
}

struct json_object *stor_to_json(const struct stor *st)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; st && i < st->n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(st->d[i].name));
		json_object_object_add(o, "format", json_object_new_string(st->d[i].format));
		json_object_object_add(o, "size", json_object_new_int64((int64_t)st->d[i].size));
		json_object_array_add(a, o);
	}
	return a;
}

/* Takes the queued end events of job id: 1 COMPLETED (why set if it
 * carries an error), 2 CANCELLED, 0 none yet. End events of other jobs
 * taken on the way are dropped; a job that vanished is noticed by
 * stor_source_poll. */
static int take_end_event(struct qmp *q, const char *id, char *why, size_t len)
{
	static const char *const names[] = {"BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"};
	struct qmp_event ev;
	int got = 0;

	for (int i = 0; i < 2; i++) {
		while (qmp_take_event(q, names[i], &ev) == 0) {
			const char *dev = jstr(ev.data, "device"), *e = jstr(ev.data, "error");

			if (dev && !strcmp(dev, id)) {
				got = i + 1;
				if (e)
					snprintf(why, len, "%s", e);
			}
			qmp_event_clear(&ev);
		}
	}
	return got;
}

/* Cancels job id and waits until QEMU has let go of it. force: abandon the
 * copy. Graceful (a READY mirror): QEMU copies what is still dirty and ends
 * with COMPLETED, the target then a consistent copy; anything else is an
 * error. */
static int cancel_job(struct qmp *q, const char *id, int force, int timeout_ms, char *err,
		      size_t errlen)
{
	struct json_object *args = json_object_new_object(), *ret = NULL;
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;
	char why[256] = "";
	int r;

	json_object_object_add(args, "device", json_object_new_string(id));
	json_object_object_add(args, "force", json_object_new_boolean(force));
	r = qmp_call(q, "block-job-cancel", args, NULL, QMP_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	if (r < 0)
		return r;
	for (;;) {
		int present = 0, end;

		r = qmp_call(q, "query-block-jobs", NULL, &ret, QMP_TIMEOUT_MS, err, errlen);
		if (r < 0)
			return r;
		for (size_t i = 0; i < json_object_array_length(ret); i++) {
			const char *dev = jstr(json_object_array_get_idx(ret, i), "device");

			present |= dev && !strcmp(dev, id);
		}
		json_object_put(ret);
		ret = NULL;
		/* QEMU sends the end event before it lets go of the job, so once
		 * the job is gone its event is queued: take it here, or it would
		 * be read later as the failure of a job of the same name. */
		end = take_end_event(q, id, why, sizeof(why));
		if (end && !force && (end == 2 || why[0])) {
			snprintf(err, errlen, "mirror job %s %s%s", id,
				 end == 2 ? "was cancelled before it was in sync" : "failed: ", why);
			return -EIO;
		}
		if (end || !present)
			return 0;
		if (time_mono_ms() >= deadline) {
			snprintf(err, errlen, "mirror job %s did not end within %d s", id,
				 timeout_ms / 1000);
			return -ETIMEDOUT;
		}
		/* Reading the socket queues the events the jobs send meanwhile. */
		qmp_pump(q, 50);
	}
}

static int del_node(struct qmp *q, const char *node, char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	int r;

	json_object_object_add(args, "node-name", json_object_new_string(node));
	r = qmp_call(q, "blockdev-del", args, NULL, QMP_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	return r;
}

int stor_source_clear_leftovers(struct qmp *q, char *err, size_t errlen)
{
	struct json_object *jobs = NULL, *nodes = NULL, *args;
	int found = 0, r;

	r = qmp_call(q, "query-block-jobs", NULL, &jobs, QMP_TIMEOUT_MS, err, errlen);
	for (size_t i = 0; r == 0 && i < json_object_array_length(jobs); i++) {
		const char *dev = jstr(json_object_array_get_idx(jobs, i), "device");

		if (!dev || strncmp(dev, JOB_PREFIX, strlen(JOB_PREFIX)))
			continue;
		log_warn("storage", "event=leftover_job job=%s action=cancel", dev);
		found++;
		r = cancel_job(q, dev, 1, 30000, err, errlen);
	}
	if (r < 0)
		goto out;
	args = json_object_new_object();
	json_object_object_add(args, "flat", json_object_new_boolean(1));
	r = qmp_call(q, "query-named-block-nodes", args, &nodes, QMP_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	for (size_t i = 0; r == 0 && i < json_object_array_length(nodes); i++) {
		struct json_object *n = json_object_array_get_idx(nodes, i);
		const char *nn = jstr(n, "node-name"), *drv = jstr(n, "drv");

		if (!nn || strncmp(nn, NODE_PREFIX, strlen(NODE_PREFIX)) || !drv || strcmp(drv, "nbd"))
			continue;
		log_warn("storage", "event=leftover_node node=%s action=remove", nn);
		found++;
		r = del_node(q, nn, err, errlen);
	}
out:
	json_object_put(jobs);
	json_object_put(nodes);
	return r < 0 ? r : found;
}

static int start_job(struct stor_disk *d, struct qmp *q, uint64_t speed_bps, int write_blocking,
		     char *err, size_t errlen)
{
	struct json_object *args = json_object_new_object();
	char job[96], dev[80], node[80];
	int r;

	snprintf(job, sizeof(job), JOB_PREFIX "%s", d->name);
	snprintf(dev, sizeof(dev), "disk-%s", d->name);
	snprintf(node, sizeof(node), NODE_PREFIX "%s", d->name);
	json_object_object_add(args, "job-id", json_object_new_string(job));
	json_object_object_add(args, "device", json_object_new_string(dev));
	json_object_object_add(args, "target", json_object_new_string(node));
	json_object_object_add(args, "sync", json_object_new_string("full"));
	json_object_object_add(args, "copy-mode",
			       json_object_new_string(write_blocking ? "write-blocking" : "background"));
	if (speed_bps)
		json_object_object_add(args, "speed", json_object_new_int64((int64_t)speed_bps));
	r = qmp_call(q, "blockdev-mirror", args, NULL, QMP_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	if (r < 0)
		return r;
	d->job_running = 1;
	d->ready = 0;
	d->write_blocking = write_blocking;
	d->len = d->offset = 0;
	log_info("storage", "event=mirror_started disk=%s size=%llu copy_mode=%s", d->name,
		 (unsigned long long)d->size, write_blocking ? "write-blocking" : "background");
	return 0;
}

int stor_source_start(struct stor *st, struct qmp *q, const char *nbd_sock, uint64_t speed_bps,
		      int write_blocking, int has_job_change, char *err, size_t errlen)
{
	int r = 0;

	st->has_job_change = has_job_change;
	st->speed_bps = speed_bps;
	for (size_t i = 0; i < st->n && r == 0; i++) {
		struct stor_disk *d = &st->d[i];
		struct json_object *args = json_object_new_object(), *server = json_object_new_object();
		char node[80];

		/* The NBD client connects at once: through the source agent's
		 * socket to the target QEMU's export of the same name. */
		snprintf(node, sizeof(node), NODE_PREFIX "%s", d->name);
		json_object_object_add(server, "type", json_object_new_string("unix"));
		json_object_object_add(server, "path", json_object_new_string(nbd_sock));
		json_object_object_add(args, "driver", json_object_new_string("nbd"));
		json_object_object_add(args, "node-name", json_object_new_string(node));
		json_object_object_add(args, "server", server);
		json_object_object_add(args, "export", json_object_new_string(d->name));
		r = qmp_call(q, "blockdev-add", args, NULL, 30000, err, errlen);
		json_object_put(args);
		if (r < 0)
			break;
		d->node_added = 1;
		r = start_job(d, q, speed_bps, write_blocking, err, errlen);
	}
	return r;
}

int stor_source_poll(struct stor *st, struct qmp *q, struct stor_progress *p, char *err,
		     size_t errlen)
{
	struct json_object *ret = NULL, *v;
	int r;

	memset(p, 0, sizeof(*p));
	if (st->failed[0]) {
		snprintf(err, errlen, "%s", st->failed);
		return -EIO;
	}
	if (!st->n)
		return 0;
	r = qmp_call(q, "query-block-jobs", NULL, &ret, QMP_TIMEOUT_MS, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < st->n; i++)
		st->d[i].job_running = 0;
	for (size_t i = 0; i < json_object_array_length(ret); i++) {
		struct json_object *j = json_object_array_get_idx(ret, i);
		struct stor_disk *d = by_job(st, jstr(j, "device"));

		if (!d)
			continue;
		d->job_running = 1;
		d->len = (uint64_t)json_object_get_int64(json_object_object_get(j, "len"));
		d->offset = (uint64_t)json_object_get_int64(json_object_object_get(j, "offset"));
		d->ready = json_object_get_boolean(json_object_object_get(j, "ready"));
		/* Absent before QEMU 8.2: then write-blocking is taken on trust. */
		if (json_object_object_get_ex(j, "actively-synced", &v)) {
			int synced = json_object_get_boolean(v);

			if (synced && !d->actively_synced)
				log_info("storage", "event=mirror_actively_synced disk=%s", d->name);
			d->actively_synced = synced;
		} else {
			d->actively_synced = d->write_blocking && d->ready;
		}
	}
	json_object_put(ret);
	p->ready = 1;
	p->write_blocking = 1;
	p->actively_synced = 1;
	for (size_t i = 0; i < st->n; i++) {
		struct stor_disk *d = &st->d[i];

		if (!d->job_running) {
			snprintf(err, errlen, "the mirror job of disk %s ended unexpectedly", d->name);
			return -EIO;
		}
		p->total += d->len;
		p->copied += d->offset;
		p->ready &= d->ready;
		p->write_blocking &= d->write_blocking;
		p->actively_synced &= d->actively_synced;
	}
	p->remaining = p->total - p->copied;
	return 0;
}

int stor_source_event(struct stor *st, const struct qmp_event *ev, char *err, size_t errlen)
{
	struct stor_disk *d;
	const char *e;

	if (strncmp(ev->name, "BLOCK_JOB_", 10) || !(d = by_job(st, jstr(ev->data, "device"))))
		return 0;
	if (!strcmp(ev->name, "BLOCK_JOB_READY")) {
		d->ready = 1;
		log_info("storage", "event=mirror_ready disk=%s", d->name);
		return 1;
	}
	if (!strcmp(ev->name, "BLOCK_JOB_ERROR")) {
		log_warn("storage", "event=mirror_io_error disk=%s operation=%s", d->name,
			 jstr(ev->data, "operation") ?: "?");
		return 1;
	}
	/* COMPLETED or CANCELLED outside our own cancel: the copy broke.
	 * (Our cancels take their jobs' end events themselves.) */
	if (!d->job_running)
		return 1;
	e = jstr(ev->data, "error");
	snprintf(st->failed, sizeof(st->failed), "the mirror of disk %s %s%s%s", d->name,
		 !strcmp(ev->name, "BLOCK_JOB_CANCELLED") ? "was cancelled" : "failed", e ? ": " : "",
		 e ? e : "");
	d->job_running = 0;
	snprintf(err, errlen, "%s", st->failed);
	return -EIO;
}

int stor_source_can_switch(const struct stor *st, int ram_started)
{
	return st->has_job_change || !ram_started;
}

int stor_source_write_blocking(struct stor *st, struct qmp *q, char *err, size_t errlen)
{
	int r = 0;

	for (size_t i = 0; i < st->n && r == 0; i++) {
		struct stor_disk *d = &st->d[i];
		char job[96];

		if (d->write_blocking)
			continue;
		snprintf(job, sizeof(job), JOB_PREFIX "%s", d->name);
		if (st->has_job_change) {
			struct json_object *args = json_object_new_object();

			json_object_object_add(args, "id", json_object_new_string(job));
			json_object_object_add(args, "type", json_object_new_string("mirror"));
			json_object_object_add(args, "copy-mode", json_object_new_string("write-blocking"));
			r = qmp_call(q, "block-job-change", args, NULL, QMP_TIMEOUT_MS, err, errlen);
			json_object_put(args);
			if (r == 0)
				d->write_blocking = 1;
			continue;
		}
		/* QEMU 7.2 fixes the copy mode when the job starts: abandon the
		 * background job and mirror again in write-blocking mode. */
		r = cancel_job(q, job, 1, 30000, err, errlen);
		d->job_running = 0;
		if (r == 0)
			r = start_job(d, q, st->speed_bps, 1, err, errlen);
	}
	if (r == 0)
		log_info("storage", "event=copy_mode_changed copy_mode=write-blocking in_place=%d",
			 st->has_job_change);
	return r;
}

int stor_source_complete(struct stor *st, struct qmp *q, int timeout_ms, char *err, size_t errlen)
{
	int r = 0;

	for (size_t i = 0; i < st->n && r == 0; i++) {
		struct stor_disk *d = &st->d[i];
		char job[96], node[80];

		snprintf(job, sizeof(job), JOB_PREFIX "%s", d->name);
		snprintf(node, sizeof(node), NODE_PREFIX "%s", d->name);
		if (!d->ready) {
			snprintf(err, errlen, "the mirror of disk %s is not in sync", d->name);
			r = -EAGAIN;
			break;
		}
		/* On a READY mirror a graceful cancel drains what the guest
		 * wrote last and ends with a consistent copy. */
		r = cancel_job(q, job, 0, timeout_ms, err, errlen);
		if (r == 0) {
			d->job_running = 0;
			r = del_node(q, node, err, errlen);
		}
		if (r == 0)
			d->node_added = 0;
	}
	if (r == 0 && st->failed[0]) {
		snprintf(err, errlen, "%s", st->failed);
		r = -EIO;
	}
	return r;
}

void stor_source_abort(struct stor *st, struct qmp *q)
{
	char err[256];

	if (!st || !q)
		return;
	for (size_t i = 0; i < st->n; i++) {
		struct stor_disk *d = &st->d[i];
		char job[96], node[80];

		snprintf(job, sizeof(job), JOB_PREFIX "%s", d->name);
		snprintf(node, sizeof(node), NODE_PREFIX "%s", d->name);
		if (d->job_running && cancel_job(q, job, 1, 30000, err, sizeof(err)) < 0)
			log_warn("storage", "event=abort_job_failed disk=%s err=\"%s\"", d->name, log_q(err));
		d->job_running = 0;
		if (d->node_added && del_node(q, node, err, sizeof(err)) < 0)
			log_warn("storage", "event=abort_node_failed disk=%s err=\"%s\"", d->name, log_q(err));
		d->node_added = 0;
	}
	log_info("storage", "event=mirror_aborted disks=%zu", st->n);
}

/* ---- target ------------------------------------------------------------ */

/* qemu-img create -f format path size, bounded in time; its own message in
 * err on failure. */
static int qemu_img_create(const char *format, const char *path, uint64_t size, char *err,
			   size_t errlen)
{
	char sz[32], out[512] = "";
	char *argv[] = {"qemu-img", "create", "-q", "-f", (char *)format, (char *)path, sz, NULL};
	posix_spawn_file_actions_t fa;
	uint64_t deadline = time_mono_ms() + QEMU_IMG_TIMEOUT_MS;
	int pipefd[2], status = 0, r;
	size_t used = 0;
	pid_t pid;

	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	r = posix_spawnp(&pid, "qemu-img", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (r != 0) {
		close(pipefd[0]);
		snprintf(err, errlen, "cannot run qemu-img: %s", strerror(r));
		return -r;
	}
	for (;;) {
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		int left = time_remaining_ms(deadline);
		ssize_t n;

		if (left == 0) {
			kill(pid, SIGKILL);
			snprintf(out, sizeof(out), "timed out");
			break;
		}
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = read(pipefd[0], out + used, sizeof(out) - 1 - used);
		if (n <= 0)
			break; /* EOF: qemu-img exited */
		used += (size_t)n;
		out[used] = '\0';
		if (used == sizeof(out) - 1)
			used = 0; /* keep the latest text */
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	out[strcspn(out, "\n")] = '\0';
	snprintf(err, errlen, "qemu-img create %s failed: %s", path, out[0] ? out : "no output");
	return -EIO;
}

int stor_target_prepare(struct vm_spec *spec, struct json_object *disks, const char *state_dir,
			struct stor **out, char *err, size_t errlen)
{
	size_t n = disks ? json_object_array_length(disks) : 0, local = 0;
	struct stor *st;
	int r = stor_alloc(n, &st);

	if (r < 0)
		return r;
	/* Every local disk must come with the VM: one left out would have
	 * this QEMU open the source's path, which here is someone else's
	 * file or nothing. */
	for (size_t i = 0; i < spec->n_disks; i++)
		local += copied(&spec->disks[i]);
	if (local != n) {
		snprintf(err, errlen, "the spec has %zu local disk(s) but the source copies %zu", local, n);
		r = -EINVAL;
		goto fail;
	}
	/* Shared disks stay where they are: the path must exist here too. */
	for (size_t i = 0; i < spec->n_disks; i++) {
		const struct vm_disk *d = &spec->disks[i];

		if (!d->path[0] || copied(d))
			continue;
		if (access(d->path, R_OK | (strcmp(d->type, "disk") ? 0 : W_OK)) < 0) {
			snprintf(err, errlen, "%s disk %s: %s is not accessible on this node: %s",
				 d->storage, d->name, d->path, strerror(errno));
			r = -ENOENT;
			goto fail;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(disks, i);
		struct stor_disk *sd = &st->d[i];
		struct vm_disk *d = NULL;
		const char *name = jstr(o, "name");

		for (size_t j = 0; name && j < spec->n_disks; j++)
			if (!strcmp(spec->disks[j].name, name) && copied(&spec->disks[j]))
				d = &spec->disks[j];
		sd->size = (uint64_t)json_object_get_int64(json_object_object_get(o, "size"));
		for (size_t j = 0; d && j < i; j++)
			if (!strcmp(st->d[j].name, d->name))
				d = NULL; /* listed twice */
		if (!d || !sd->size || sd->size > (1ull << 50)) {
			snprintf(err, errlen, "the source asked to copy disk %s, which the spec has no (other) local disk for, or with a bad size",
				 name ? name : "(no name)");
			r = -EINVAL;
			goto fail;
		}
		snprintf(sd->name, sizeof(sd->name), "%s", d->name);
		snprintf(sd->format, sizeof(sd->format), "%s", d->format);
		sd->spec_idx = (size_t)(d - spec->disks);
		snprintf(sd->image, sizeof(sd->image), "%s/disks/%s/%s.%s", state_dir, spec->name,
			 d->name, d->format);
		{
			char dir[512];

			snprintf(dir, sizeof(dir), "%s/disks/%s", state_dir, spec->name);
			r = fs_mkdir_p(dir);
		}
		if (r < 0) {
			snprintf(err, errlen, "cannot create the directory of %s: %s", sd->image,
				 strerror(-r));
			goto fail;
		}
		/* The VM's name is held for this migration here, so an image at
		 * this path is a leftover of an attempt that failed. */
		if (unlink(sd->image) == 0)
			log_warn("storage", "event=leftover_image path=%s action=removed", sd->image);
		r = qemu_img_create(sd->format, sd->image, sd->size, err, errlen);
		if (r < 0)
			goto fail;
		sd->created = 1;
		st->n = i + 1;
		log_info("storage", "event=target_image_created disk=%s path=%s size=%llu", d->name,
			 sd->image, (unsigned long long)sd->size);
	}
	st->n = n;
	/* All made: only now is the spec pointed at them. */
	for (size_t i = 0; i < n; i++)
		snprintf(spec->disks[st->d[i].spec_idx].path, sizeof(spec->disks[0].path), "%s",
			 st->d[i].image);
	*out = st;
	return 0;
fail:
	stor_target_remove_images(st);
	stor_free(st);
	return r;
}

int stor_target_export(struct stor *st, struct qmp *q, const char *sock, char *err, size_t errlen)
{
	struct json_object *args, *addr, *data;
	int r;

	if (!st->n)
		return 0;
	args = json_object_new_object();
	addr = json_object_new_object();
	data = json_object_new_object();
	json_object_object_add(data, "path", json_object_new_string(sock));
	json_object_object_add(addr, "type", json_object_new_string("unix"));
	json_object_object_add(addr, "data", data);
	json_object_object_add(args, "addr", addr);
	r = qmp_call(q, "nbd-server-start", args, NULL, QMP_TIMEOUT_MS, err, errlen);
	json_object_put(args);
	if (r < 0)
		return r;
	st->exporting = 1;
	for (size_t i = 0; i < st->n && r == 0; i++) {
		char node[80], id[80];

		snprintf(node, sizeof(node), "disk-%s", st->d[i].name);
		snprintf(id, sizeof(id), "export-%s", st->d[i].name);
		args = json_object_new_object();
		json_object_object_add(args, "type", json_object_new_string("nbd"));
		json_object_object_add(args, "id", json_object_new_string(id));
		json_object_object_add(args, "node-name", json_object_new_string(node));
		json_object_object_add(args, "name", json_object_new_string(st->d[i].name));
		json_object_object_add(args, "writable", json_object_new_boolean(1));
		r = qmp_call(q, "block-export-add", args, NULL, QMP_TIMEOUT_MS, err, errlen);
		json_object_put(args);
	}
	return r;
}

void stor_target_unexport(struct stor *st, struct qmp *q)
{
	char err[256];

	if (!st || !st->exporting || !q)
		return;
	/* Stops the server and removes every NBD export with it. */
	if (qmp_call(q, "nbd-server-stop", NULL, NULL, QMP_TIMEOUT_MS, err, sizeof(err)) < 0)
		log_warn("storage", "event=nbd_stop_failed err=\"%s\"", log_q(err));
	st->exporting = 0;
}

void stor_target_remove_images(struct stor *st)
{
	for (size_t i = 0; st && i < st->n; i++) {
		char dir[512], *slash;

		if (!st->d[i].created)
			continue;
		if (unlink(st->d[i].image) < 0 && errno != ENOENT)
			log_warn("storage", "event=image_remove_failed path=%s err=\"%s\"", st->d[i].image,
				 log_q(strerror(errno)));
		st->d[i].created = 0;
		snprintf(dir, sizeof(dir), "%s", st->d[i].image);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			rmdir(dir); /* only once empty */
		}
		log_info("storage", "event=target_image_removed path=%s", st->d[i].image);
	}
}
