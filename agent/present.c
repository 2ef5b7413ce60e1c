/* The agent as the API shows it: VMs, migrations and the node as JSON,
 * and the event-stream text (the Prometheus metrics are metrics.c's). */
#include "agent/agent_int.h"
#include "agent/drain.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/preflight.h"
#include "util/uuid.h"

static struct json_object *vm_to_json(struct agent *a, struct agent_vm *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "node", json_object_new_string(a->cfg->node));
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(v->state)));
	if (v->q) {
		char why[900];
		int ok = preflight_vm(v->q->spec, why, sizeof(why)) == 0;

		json_object_object_add(o, "liveMigratable", json_object_new_boolean(ok));
		if (!ok)
			json_object_object_add(o, "notMigratableReason", json_object_new_string(why));
		json_object_object_add(o, "pid", json_object_new_int(v->q->pid));
		json_object_object_add(o, "uuid", json_object_new_string(v->q->spec->uuid));
		json_object_object_add(o, "memoryMiB", json_object_new_int(v->q->spec->memory_mib));
		json_object_object_add(o, "qmpSocket", json_object_new_string(v->q->qmp_path));
		/* Where each disk lives on this node: a local disk that arrived
		 * by storage migration sits under the state dir here. */
		{
			struct json_object *disks = json_object_new_array();

			for (size_t i = 0; i < v->q->spec->n_disks; i++) {
				const struct vm_disk *d = &v->q->spec->disks[i];
				struct json_object *dj = json_object_new_object();

				json_object_object_add(dj, "name", json_object_new_string(d->name));
				json_object_object_add(dj, "path", json_object_new_string(d->path));
				json_object_object_add(dj, "format", json_object_new_string(d->format));
				json_object_object_add(dj, "type", json_object_new_string(d->type));
				json_object_object_add(dj, "storage", json_object_new_string(d->storage));
				json_object_array_add(disks, dj);
			}
			json_object_object_add(o, "disks", disks);
		}
		if (v->q->serial_path[0]) {
			json_object_object_add(o, "serialSocket", json_object_new_string(v->q->serial_path));
			json_object_object_add(o, "serialLog", json_object_new_string(v->q->serial_log));
		}
	}
	if (!v->q && v->state == VM_STOPPED) {
		/* Not migratable while stopped, and why else it would not be. */
		char why[900];
		int n = snprintf(why, sizeof(why), "the VM is stopped");

		if (v->spec && n > 0 && (size_t)n + 2 < sizeof(why) &&
		    preflight_vm(v->spec, why + n + 2, sizeof(why) - (size_t)n - 2) < 0)
			memcpy(why + n, "; ", 2);
		json_object_object_add(o, "liveMigratable", json_object_new_boolean(0));
		json_object_object_add(o, "notMigratableReason", json_object_new_string(why));
	}
	if (v->last_mig[0])
		json_object_object_add(o, "lastMigration", json_object_new_string(v->last_mig));
	return o;
}

struct json_object *agent_vm_json(struct agent *a, const char *name)
{
	struct json_object *o = NULL;
	struct agent_vm *v;
	char last[40] = "";

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v) {
		o = vm_to_json(a, v);
		snprintf(last, sizeof(last), "%s", v->last_mig);
	}
	pthread_mutex_unlock(&a->mu);
	if (o && last[0]) {
		struct json_object *ms = agent_migration_json(a, last);

		if (ms)
			json_object_object_add(o, "migrationState", ms);
	}
	return o;
}

struct json_object *agent_vms_json(struct agent *a)
{
	struct json_object *arr = json_object_new_array();

	pthread_mutex_lock(&a->mu);
	for (struct agent_vm *v = a->vms; v; v = v->next)
		json_object_array_add(arr, vm_to_json(a, v));
	pthread_mutex_unlock(&a->mu);
	return arr;
}

struct json_object *agent_node_json(struct agent *a)
{
	struct json_object *o = json_object_new_object(), *peers = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(a->cfg->node));
	json_object_object_add(o, "listen", json_object_new_string(a->cfg->listen_host));
	json_object_object_add(o, "port", json_object_new_int(a->cfg->listen_port));
	for (size_t i = 0; i < a->cfg->n_peers; i++)
		json_object_array_add(peers, json_object_new_string(a->cfg->peers[i].name));
	json_object_object_add(o, "peers", peers);
	{
		struct json_object *labels = json_object_new_object();
		long long avail_kib = 0;
		char line[256];
		int inflight = 0;
		FILE *f = fopen("/proc/meminfo", "r");

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %lld kB", &avail_kib) == 1)
				break;
		if (f)
			fclose(f);
		json_object_object_add(o, "freeMemoryMiB", json_object_new_int64(avail_kib / 1024));
		pthread_mutex_lock(&a->mu);
		for (struct agent_mig *am = a->migs; am; am = am->next)
			inflight += !mig_finished(am->m);
		pthread_mutex_unlock(&a->mu);
		json_object_object_add(o, "migrationsInFlight", json_object_new_int(inflight));
		pthread_mutex_lock(&a->mu);
		json_object_object_add(o, "outbound", json_object_new_int(a->outbound));
		pthread_mutex_unlock(&a->mu);
		for (size_t i = 0; i < a->cfg->n_labels; i++)
			json_object_object_add(labels, a->cfg->labels[i].key,
					       json_object_new_string(a->cfg->labels[i].value));
		json_object_object_add(o, "labels", labels);
		drain_node_fields(a, o);
		{
			struct json_object *nets = json_object_new_array(), *cpus = json_object_new_array();

			for (size_t i = 0; i < a->cfg->n_networks; i++)
				json_object_array_add(nets, json_object_new_string(a->cfg->networks[i]));
			for (size_t i = 0; i < a->cfg->n_cpu_models; i++)
				json_object_array_add(cpus, json_object_new_string(a->cfg->cpu_models[i]));
			json_object_object_add(o, "networks", nets);
			json_object_object_add(o, "cpuModels", cpus);
			/* This node's CPU as a host-model VM gets it (placement
			 * compares a VM's recorded one with it). */
			if (a->env.qemu.n_host_cpu) {
				struct json_object *hm = json_object_new_object();

				for (size_t i = 0; i < a->env.qemu.n_host_cpu; i++)
					json_object_object_add(hm, a->env.qemu.host_cpu[i].key,
							       json_object_new_string(a->env.qemu.host_cpu[i].value));
				json_object_object_add(o, "cpuHostModel", hm);
			}
		}
	}
	return o;
}

/* ---- migrations ------------------------------------------------------------ */

struct json_object *agent_migration_json(struct agent *a, const char *id)
{
	struct migration *m = agent_find_migration(a, id);
	struct mig_status st;

	if (!m) {
		struct json_object *o = NULL;

		pthread_mutex_lock(&a->mu);
		for (struct agent_record *rec = a->records; rec && !o; rec = rec->next)
			if (!strcmp(rec->id, id))
				o = json_object_get(rec->j);
		pthread_mutex_unlock(&a->mu);
		return o;
	}
	mig_get_status(m, &st);
	return mig_status_to_json(&st);
}

struct json_object *agent_migration_samples_json(struct agent *a, const char *id)
{
	struct migration *m = agent_find_migration(a, id);
	char path[600];

	if (m)
		return mig_samples_json(m);
	/* An earlier run's migration: its series was saved with its record. */
	if (!uuid_valid(id))
		return NULL;
	snprintf(path, sizeof(path), "%s/records/%s.samples", a->cfg->state_dir, id);
	return json_object_from_file(path);
}

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" in µs since the epoch, 0 when it is not
 * one (older records have whole seconds, newer ones milliseconds). */
uint64_t record_time_us(const char *ts)
{
	struct tm tm = {0};
	unsigned frac = 0;
	int n = 0, digits = 0;
	time_t t;

	if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			  &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	if (ts[n] == '.')
		for (n++; ts[n] >= '0' && ts[n] <= '9'; n++)
			if (digits++ < 6)
				frac = frac * 10 + (unsigned)(ts[n] - '0');
	for (; digits < 6; digits++)
		frac *= 10;
	if (strcmp(ts + n, "Z"))
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return t < 0 ? 0 : (uint64_t)t * 1000000u + frac;
}

/* Newest first by start time; ties (and records without one) by id, so
 * the order is stable. */
static int newest_first(const void *x, const void *y)
{
	struct json_object *a = *(struct json_object *const *)x, *b = *(struct json_object *const *)y;
	uint64_t ta = record_time_us(json_object_get_string(json_object_object_get(a, "startTimestamp")));
	uint64_t tb = record_time_us(json_object_get_string(json_object_object_get(b, "startTimestamp")));

	if (ta != tb)
		return ta > tb ? -1 : 1;
	return strcmp(json_object_get_string(json_object_object_get(a, "id")) ?: "",
		      json_object_get_string(json_object_object_get(b, "id")) ?: "");
}

struct json_object *agent_migrations_json(struct agent *a, const char *vm)
{
	struct json_object *arr = json_object_new_array();
	struct mig_status st;

	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am; am = am->next) {
		if (vm && strcmp(am->vm, vm))
			continue;
		mig_get_status(am->m, &st);
		json_object_array_add(arr, mig_status_to_json(&st));
	}
	/* History from earlier runs. */
	for (struct agent_record *rec = a->records; rec; rec = rec->next)
		if (!vm || !strcmp(rec->vm, vm))
			json_object_array_add(arr, json_object_get(rec->j));
	pthread_mutex_unlock(&a->mu);
	json_object_array_sort(arr, newest_first);
	return arr;
}

char *agent_migration_event(struct json_object *m, int *final)
{
	const char *phase = json_object_get_string(json_object_object_get(m, "phase"));
	char *text = NULL;

	*final = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
	if (asprintf(&text, "event: migration\ndata: %s\n\n",
		     json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN)) < 0)
		return NULL;
	return text;
}
