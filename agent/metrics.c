/* The agent's Prometheus text exposition (GET /metrics): a snapshot of the
 * migrations under agent.mu, rendered by metrics_render (see metrics.h;
 * docs/metrics.md lists the families). */
#include "agent/metrics.h"
#include "agent/agent_int.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds from a migration's creation to a phase: from well under a
 * second (the phases before the copy) to the hours a big guest under a
 * slow link may take. */
const double metrics_phase_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
					300, 600, 1200, 1800, 3600, 7200};
const size_t metrics_phase_bucket_count = sizeof(metrics_phase_buckets) / sizeof(metrics_phase_buckets[0]);

void metrics_label_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k="v",...} up to the value: pairs of key and value, NULL-ended. */
static void sample(FILE *f, const char *name, ...)
{
	const char *k, *sep = "";
	va_list ap;

	fprintf(f, "%s{", name);
	va_start(ap, name);
	while ((k = va_arg(ap, const char *))) {
		fprintf(f, "%s%s=", sep, k);
		metrics_label_value(f, va_arg(ap, const char *));
		sep = ",";
	}
	va_end(ap);
	fputs("} ", f);
}

static double seconds(uint64_t us)
{
	return (double)us / 1e6;
}

/* ---- ferry's own agent-wide families -------------------------------------- */

static void render_agent(FILE *f, const struct metrics_view *v)
{
	unsigned long long by[2][MIG_PHASE_COUNT] = {{0}}, raw = 0, wire = 0;

	for (size_t i = 0; i < v->n; i++) {
		const struct metrics_mig *m = &v->migs[i];

		if (!m->live)
			continue;
		if ((unsigned)m->phase < MIG_PHASE_COUNT)
			by[m->source][m->phase]++;
		if (m->source) {
			raw += m->raw_bytes;
			wire += m->wire_bytes;
		}
	}
	family(f, "ferry_migrations", "gauge",
	       "Migrations this agent took part in since it started, by role and phase.");
	for (int r = 0; r < 2; r++)
		for (int p = 0; p < MIG_PHASE_COUNT; p++) {
			sample(f, "ferry_migrations", "node", v->node, "role", r ? "source" : "target",
			       "phase", mig_phase_name((enum mig_phase)p), NULL);
			fprintf(f, "%llu\n", by[r][p]);
		}
	family(f, "ferry_migration_bytes_total", "counter",
	       "Guest bytes read from source QEMUs (raw) and sent on links (wire).");
	sample(f, "ferry_migration_bytes_total", "node", v->node, "kind", "raw", NULL);
	fprintf(f, "%llu\n", raw);
	sample(f, "ferry_migration_bytes_total", "node", v->node, "kind", "wire", NULL);
	fprintf(f, "%llu\n", wire);
	family(f, "ferry_vms", "gauge", "VMs this agent knows, by state.");
	for (int i = 0; i < METRICS_VM_STATES; i++) {
		sample(f, "ferry_vms", "node", v->node, "state", v->vm_state_names[i], NULL);
		fprintf(f, "%llu\n", v->vms[i]);
	}
}

/* ---- per VM: its newest migration from this node --------------------------- */

/* Nonzero when migs[i] is the newest migration of its VM that this agent
 * ran as the source in this run (migs is newest first). */
static int newest_of_vm(const struct metrics_view *v, size_t i)
{
	const struct metrics_mig *m = &v->migs[i];

	if (!m->live || !m->source)
		return 0;
	for (size_t j = 0; j < i; j++)
		if (v->migs[j].live && v->migs[j].source && !strcmp(v->migs[j].vm, m->vm))
			return 0;
	return 1;
}

enum vm_figure { FIG_PROCESSED, FIG_REMAINING, FIG_TOTAL, FIG_TOTAL_OLD, FIG_DIRTY, FIG_COPY };

static const struct {
	const char *name, *type, *help;
} vm_figures[] = {
	[FIG_PROCESSED] = {"ferry_vmi_migration_data_processed_bytes", "gauge",
			   "The guest data (memory and local disks) migrated so far to the new VM."},
	[FIG_REMAINING] = {"ferry_vmi_migration_data_remaining_bytes", "gauge",
			   "The guest data (memory and local disks) still to be migrated to the new VM."},
	[FIG_TOTAL] = {"ferry_vmi_migration_data_bytes_total", "counter",
		       "The total guest data (memory and local disks) to be migrated to the new VM."},
	[FIG_TOTAL_OLD] = {"ferry_vmi_migration_data_total_bytes", "gauge",
			   "The same as ferry_vmi_migration_data_bytes_total, under KubeVirt's earlier name."},
	[FIG_DIRTY] = {"ferry_vmi_migration_dirty_memory_rate_bytes", "gauge",
		       "The rate, in bytes per second, at which the guest dirties its memory."},
	[FIG_COPY] = {"ferry_vmi_migration_memory_transfer_rate_bytes", "gauge",
		      "The rate, in bytes per second, at which the guest's memory is copied."},
};

static uint64_t vm_figure(const struct metrics_mig *m, enum vm_figure which)
{
	switch (which) {
	case FIG_PROCESSED: return m->processed;
	case FIG_REMAINING: return m->remaining;
	case FIG_TOTAL: case FIG_TOTAL_OLD: return m->total;
	case FIG_DIRTY: return m->dirty_bps;
	case FIG_COPY: return m->copy_bps;
	}
	return 0;
}

static void render_per_vm(FILE *f, const struct metrics_view *v)
{
	for (size_t k = 0; k < sizeof(vm_figures) / sizeof(vm_figures[0]); k++) {
		family(f, vm_figures[k].name, vm_figures[k].type, vm_figures[k].help);
		for (size_t i = 0; i < v->n; i++)
			if (newest_of_vm(v, i)) {
				sample(f, vm_figures[k].name, "vmi", v->migs[i].vm, "node", v->node, NULL);
				fprintf(f, "%llu\n", (unsigned long long)vm_figure(&v->migs[i], (enum vm_figure)k));
			}
	}
	family(f, "ferry_vmi_migration_last_downtime_seconds", "gauge",
	       "How long the guest was paused at the switchover of its newest migration, if it succeeded.");
	for (size_t i = 0; i < v->n; i++)
		if (newest_of_vm(v, i) && v->migs[i].phase == MIG_SUCCEEDED && v->migs[i].pause_ms >= 0) {
			sample(f, "ferry_vmi_migration_last_downtime_seconds", "vmi", v->migs[i].vm, "node",
			       v->node, NULL);
			fprintf(f, "%.3f\n", (double)v->migs[i].pause_ms / 1e3);
		}
	family(f, "ferry_vmi_migration_start_time_seconds", "gauge",
	       "The time (Unix seconds) at which the VM's newest migration started.");
	for (size_t i = 0; i < v->n; i++)
		if (newest_of_vm(v, i)) {
			sample(f, "ferry_vmi_migration_start_time_seconds", "vmi", v->migs[i].vm, "node", v->node,
			       "migration_name", v->migs[i].vmim, NULL);
			fprintf(f, "%.3f\n", seconds(v->migs[i].start_us));
		}
	family(f, "ferry_vmi_migration_end_time_seconds", "gauge",
	       "The time (Unix seconds) at which the VM's newest migration ended, with its outcome.");
	for (size_t i = 0; i < v->n; i++)
		if (newest_of_vm(v, i) && v->migs[i].end_us) {
			sample(f, "ferry_vmi_migration_end_time_seconds", "vmi", v->migs[i].vm, "node", v->node,
			       "migration_name", v->migs[i].vmim, "status", mig_phase_name(v->migs[i].phase), NULL);
			fprintf(f, "%.3f\n", seconds(v->migs[i].end_us));
		}
}

/* ---- migrations by phase, outcomes, phase durations ---------------------- */

static void render_in_phase(FILE *f, const struct metrics_view *v)
{
	/* KubeVirt counts Scheduled, PreparingTarget and TargetReady as running. */
	static const struct {
		const char *name, *help;
		unsigned phases; /* bit per enum mig_phase */
	} fams[] = {
		{"ferry_vmi_migrations_in_pending_phase", "Migrations from this node pending now.",
		 1u << MIG_PENDING},
		{"ferry_vmi_migrations_in_scheduling_phase", "Migrations from this node scheduling now.",
		 1u << MIG_SCHEDULING},
		{"ferry_vmi_migrations_in_running_phase",
		 "Migrations from this node running now (scheduled, preparing the target or copying).",
		 1u << MIG_SCHEDULED | 1u << MIG_PREPARING_TARGET | 1u << MIG_TARGET_READY | 1u << MIG_RUNNING},
	};

	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		unsigned long long n = 0;

		for (size_t i = 0; i < v->n; i++)
			n += v->migs[i].live && v->migs[i].source && (fams[k].phases >> v->migs[i].phase & 1u);
		family(f, fams[k].name, "gauge", fams[k].help);
		sample(f, fams[k].name, "node", v->node, NULL);
		fprintf(f, "%llu\n", n);
	}
}

static int same_outcome(const struct metrics_mig *a, const struct metrics_mig *b)
{
	return a->source && b->source && a->phase == b->phase && !strcmp(a->vm, b->vm) &&
	       !strcmp(a->vmim, b->vmim);
}

/* One series per VM and VMIM that ended so: 1, like KubeVirt's, or more
 * when a VMIM name was used again. */
static void render_outcome(FILE *f, const struct metrics_view *v, enum mig_phase outcome, const char *name,
			   const char *help)
{
	family(f, name, "gauge", help);
	for (size_t i = 0; i < v->n; i++) {
		const struct metrics_mig *m = &v->migs[i];
		unsigned long long n = 0;
		int seen = 0;

		if (!m->source || m->phase != outcome)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = same_outcome(&v->migs[j], m);
		if (seen)
			continue;
		for (size_t j = i; j < v->n; j++)
			n += same_outcome(&v->migs[j], m);
		sample(f, name, "vmi", m->vm, "vmim", m->vmim, "node", v->node, NULL);
		fprintf(f, "%llu\n", n);
	}
}

static void render_phase_histogram(FILE *f, const struct metrics_view *v)
{
	static const char *name = "ferry_vmi_migration_phase_transition_time_from_creation_seconds";
	char bucket[128], sum[128], count[128], le[32];

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	family(f, name, "histogram",
	       "Seconds from a migration's creation to each phase it entered, for this run's migrations from this node.");
	for (int p = 0; p < MIG_PHASE_COUNT; p++) {
		unsigned long long n = 0, in[sizeof(metrics_phase_buckets) / sizeof(metrics_phase_buckets[0])] = {0};
		const char *phase = mig_phase_name((enum mig_phase)p);
		double total = 0;

		for (size_t i = 0; i < v->n; i++) {
			const struct metrics_mig *m = &v->migs[i];
			double s;

			if (!m->live || !m->source || !m->phase_us[p] || m->phase_us[p] < m->start_us)
				continue;
			s = seconds(m->phase_us[p] - m->start_us);
			n++;
			total += s;
			for (size_t b = 0; b < metrics_phase_bucket_count; b++)
				in[b] += s <= metrics_phase_buckets[b];
		}
		if (!n)
			continue;
		for (size_t b = 0; b < metrics_phase_bucket_count; b++) {
			snprintf(le, sizeof(le), "%g", metrics_phase_buckets[b]);
			sample(f, bucket, "node", v->node, "phase", phase, "le", le, NULL);
			fprintf(f, "%llu\n", in[b]);
		}
		sample(f, bucket, "node", v->node, "phase", phase, "le", "+Inf", NULL);
		fprintf(f, "%llu\n", n);
		sample(f, sum, "node", v->node, "phase", phase, NULL);
		fprintf(f, "%.6f\n", total);
		sample(f, count, "node", v->node, "phase", phase, NULL);
		fprintf(f, "%llu\n", n);
	}
}

void metrics_render(FILE *f, const struct metrics_view *v)
{
	render_agent(f, v);
	render_per_vm(f, v);
	render_in_phase(f, v);
	render_outcome(f, v, MIG_SUCCEEDED, "ferry_vmi_migration_succeeded",
		       "Migrations from this node that succeeded, by VM and VMIM (1 per VMIM).");
	render_outcome(f, v, MIG_FAILED, "ferry_vmi_migration_failed",
		       "Migrations from this node that failed or were aborted, by VM and VMIM (1 per VMIM).");
	render_phase_histogram(f, v);
}

/* ---- the snapshot ------------------------------------------------------------- */

static void from_status(struct metrics_mig *m, const struct mig_status *st)
{
	snprintf(m->vm, sizeof(m->vm), "%s", st->vm);
	snprintf(m->vmim, sizeof(m->vmim), "%s", st->name[0] ? st->name : st->id);
	m->source = !strcmp(st->role, "source");
	m->live = 1;
	m->phase = st->phase;
	m->start_us = st->start_us;
	m->end_us = st->end_us;
	memcpy(m->phase_us, st->phase_us, sizeof(m->phase_us));
	m->processed = st->ram_transferred + st->disk_transferred;
	m->remaining = st->ram_remaining + st->disk_remaining;
	m->total = st->ram_total + st->disk_total;
	m->dirty_bps = st->dirty_rate_bps;
	m->copy_bps = st->copy_rate_bps;
	m->pause_ms = st->pause_ms;
	m->raw_bytes = st->raw_bytes;
	m->wire_bytes = st->wire_bytes;
}

static const char *jstr(struct json_object *o, const char *key)
{
	const char *s = json_object_get_string(json_object_object_get(o, key));

	return s ? s : "";
}

/* An earlier run's record: its outcome only (the figures are this run's). */
static void from_record(struct metrics_mig *m, struct json_object *j)
{
	const char *phase = jstr(j, "phase");

	snprintf(m->vm, sizeof(m->vm), "%s", jstr(j, "vm"));
	snprintf(m->vmim, sizeof(m->vmim), "%s", jstr(j, "name")[0] ? jstr(j, "name") : jstr(j, "id"));
	m->source = !strcmp(jstr(j, "role"), "source");
	m->pause_ms = -1;
	m->phase = MIG_PENDING;
	for (int p = 0; p < MIG_PHASE_COUNT; p++)
		if (!strcmp(phase, mig_phase_name((enum mig_phase)p)))
			m->phase = (enum mig_phase)p;
}

char *agent_metrics_text(struct agent *a)
{
	struct metrics_view v = {.node = a->cfg->node};
	struct metrics_mig *migs = NULL;
	size_t cap = 0;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	for (int i = 0; i < METRICS_VM_STATES; i++)
		v.vm_state_names[i] = vm_state_name((enum vm_state)i);
	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am; am = am->next)
		cap++;
	for (struct agent_record *rec = a->records; rec; rec = rec->next)
		cap++;
	migs = calloc(cap ? cap : 1, sizeof(*migs));
	for (struct agent_mig *am = a->migs; am && migs; am = am->next) {
		struct mig_status st;

		mig_get_status(am->m, &st);
		from_status(&migs[v.n++], &st);
	}
	for (struct agent_record *rec = a->records; rec && migs; rec = rec->next)
		from_record(&migs[v.n++], rec->j);
	for (struct agent_vm *vm = a->vms; vm; vm = vm->next)
		if ((unsigned)vm->state < METRICS_VM_STATES)
			v.vms[vm->state]++;
	pthread_mutex_unlock(&a->mu);
	/* Out of memory: an empty exposition, as before the first scrape. */
	if (!migs)
		return strdup("");
	v.migs = migs;
	f = open_memstream(&out, &len);
	if (f) {
		metrics_render(f, &v);
		fclose(f);
	}
	free(migs);
	return out ? out : strdup("");
}
