/* A restarted ferryd takes over what the last run left in the state dir:
 * stale incoming VMs go, running QEMUs are adopted, migration records
 * become history. */
#include "agent/agent_int.h"

#include <dirent.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/qemu_confine.h"
#include "engine/storage.h"
#include "util/log.h"
#include "util/timeutil.h"

/* An earlier ferryd died during an incoming migration: its half-built QEMU
 * holds no guest the source lacks, so it goes. */
void cleanup_stale_incoming(struct agent *a)
{
	char dir[512], path[800];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/vms", a->cfg->state_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		FILE *f;
		int pid = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/incoming", dir, de->d_name);
		if (access(path, F_OK) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/qemu.pid", dir, de->d_name);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%d", &pid) != 1 || pid <= 1)
				pid = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* The pid may have been reused by any process since: kill it
		 * only if it is this VM's QEMU. */
		if (pid > 0 && qemu_confine_is_vm_qemu(&a->env.qemu, pid, path)) {
			kill(pid, SIGKILL);
		} else if (pid > 0) {
			log_warn("agent", "event=stale_pid_spared vm=%s pid=%d reason=\"not this VM's QEMU\"",
				 de->d_name, pid);
			pid = 0;
		}
		log_warn("agent", "event=stale_incoming_removed vm=%s pid=%d", de->d_name, pid);
		qemu_run_dir_remove(path);
		/* Its half-copied disks too. */
		stor_remove_vm_images(a->cfg->state_dir, de->d_name);
	}
	closedir(d);
}

/* A record as this version shows it: one cut off by the agent's end (in
 * a non-final phase) failed, and says so, with its end and total time;
 * an older record's pause of -1 (none) is no number. Nonzero when it
 * changed and is to be written back. */
static int record_settle(struct json_object *j)
{
	const char *phase = json_object_get_string(json_object_object_get(j, "phase"));
	struct json_object *f;
	int changed = 0;

	if (json_object_object_get_ex(j, "pauseMs", &f) && json_object_get_int64(f) < 0) {
		json_object_object_del(j, "pauseMs");
		changed = 1;
	}
	if (!phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))) {
		char ts[40];

		json_object_object_add(j, "phase", json_object_new_string("Failed"));
		json_object_object_add(j, "failed", json_object_new_boolean(1));
		json_object_object_add(j, "failureReason", json_object_new_string(
			"ferryd stopped during the migration; QEMU cancels a migration whose channels close, so the guest kept running on the source"));
		time_format_rfc3339_ms(time_real_us(), ts, sizeof(ts));
		json_object_object_add(j, "endTimestamp", json_object_new_string(ts));
		changed = 1;
	}
	/* A failure's total time runs to its end (never 0). */
	if (json_object_get_int64(json_object_object_get(j, "totalMs")) <= 0) {
		uint64_t s = record_time_us(json_object_get_string(json_object_object_get(j, "startTimestamp")));
		uint64_t e = record_time_us(json_object_get_string(json_object_object_get(j, "endTimestamp")));

		if (s && e > s) {
			json_object_object_add(j, "totalMs", json_object_new_int64((int64_t)((e - s + 999) / 1000)));
			changed = 1;
		}
	}
	return changed;
}

/* Records left by an earlier run, settled (record_settle). */
void load_records(struct agent *a)
{
	char dir[512], path[800];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/records", a->cfg->state_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct agent_record *rec;
		struct json_object *j;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		j = json_object_from_file(path);
		if (!j || !json_object_is_type(j, json_type_object)) {
			log_warn("agent", "event=record_unreadable path=%s", path);
			json_object_put(j);
			continue;
		}
		if (record_settle(j))
			json_object_to_file_ext(path, j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		rec = calloc(1, sizeof(*rec));
		if (!rec) {
			json_object_put(j);
			break;
		}
		snprintf(rec->id, sizeof(rec->id), "%s", json_object_get_string(json_object_object_get(j, "id")) ?: "");
		snprintf(rec->vm, sizeof(rec->vm), "%s", json_object_get_string(json_object_object_get(j, "vm")) ?: "");
		rec->j = j;
		rec->next = a->records;
		a->records = rec;
		n++;
	}
	closedir(d);
	/* An adopted VM's last migration is the newest record naming it. */
	for (struct agent_vm *v = a->vms; v; v = v->next) {
		uint64_t best = 0;

		for (struct agent_record *rec = a->records; rec; rec = rec->next) {
			uint64_t ts = record_time_us(
				json_object_get_string(json_object_object_get(rec->j, "startTimestamp")));

			if (strcmp(rec->vm, v->name) || !ts)
				continue;
			if (ts >= best) {
				best = ts;
				snprintf(v->last_mig, sizeof(v->last_mig), "%s", rec->id);
			}
		}
	}
	log_info("agent", "event=records_loaded count=%u", n);
}

/* QEMUs keep running when ferryd stops; the next ferryd takes them back
 * from their run dirs (after stale incoming ones were removed). */
void adopt_vms(struct agent *a)
{
	char dir[512], run[800], err[256];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/vms", a->cfg->state_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct qemu_vm *q = NULL;
		struct agent_vm *v;

		if (de->d_name[0] == '.')
			continue;
		snprintf(run, sizeof(run), "%s/%s", dir, de->d_name);
		if (qemu_vm_adopt(run, &q, err, sizeof(err)) < 0) {
			log_warn("agent", "event=vm_not_adopted run_dir=%s reason=\"%s\"", run, log_q(err));
			continue;
		}
		v = add_vm(a, q->spec->name);
		if (!v) {
			qemu_vm_free(q);
			continue;
		}
		v->q = q;
		v->state = VM_RUNNING;
		log_info("agent", "event=vm_adopted vm=%s pid=%d", q->spec->name, q->pid);
	}
	closedir(d);
}
