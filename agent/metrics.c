/* The agent's Prometheus text exposition (GET /metrics). */
#include "agent/agent_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *agent_metrics_text(struct agent *a)
{
	static const char *phases[] = {"Pending", "Scheduling", "Scheduled", "PreparingTarget",
				       "TargetReady", "Running", "Succeeded", "Failed"};
	unsigned long long by[2][8] = {{0}}, raw = 0, wire = 0, vms[7] = {0};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct mig_status st;

	if (!f)
		return strdup("");
	pthread_mutex_lock(&a->mu);
	for (struct agent_mig *am = a->migs; am; am = am->next) {
		int src;

		mig_get_status(am->m, &st);
		src = !strcmp(st.role, "source");
		if ((unsigned)st.phase < 8)
			by[src][st.phase]++;
		if (src) {
			raw += st.raw_bytes;
			wire += st.wire_bytes;
		}
	}
	for (struct agent_vm *v = a->vms; v; v = v->next)
		if ((unsigned)v->state < 7)
			vms[v->state]++;
	pthread_mutex_unlock(&a->mu);
	fprintf(f, "# HELP ferry_migrations Migrations this agent took part in since it started, by role and phase.\n");
	fprintf(f, "# TYPE ferry_migrations gauge\n");
	for (int r = 0; r < 2; r++)
		for (int p = 0; p < 8; p++)
			fprintf(f, "ferry_migrations{node=\"%s\",role=\"%s\",phase=\"%s\"} %llu\n", a->cfg->node,
				r ? "source" : "target", phases[p], by[r][p]);
	fprintf(f, "# HELP ferry_migration_bytes_total Guest bytes read from source QEMUs (raw) and sent on links (wire).\n");
	fprintf(f, "# TYPE ferry_migration_bytes_total counter\n");
	fprintf(f, "ferry_migration_bytes_total{node=\"%s\",kind=\"raw\"} %llu\n", a->cfg->node, raw);
	fprintf(f, "ferry_migration_bytes_total{node=\"%s\",kind=\"wire\"} %llu\n", a->cfg->node, wire);
	fprintf(f, "# HELP ferry_vms VMs this agent knows, by state.\n# TYPE ferry_vms gauge\n");
	for (int i = 0; i < 7; i++)
		fprintf(f, "ferry_vms{node=\"%s\",state=\"%s\"} %llu\n", a->cfg->node,
			vm_state_name((enum vm_state)i), vms[i]);
	fclose(f);
	return out;
}
