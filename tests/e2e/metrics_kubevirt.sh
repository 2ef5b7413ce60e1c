#!/bin/bash
# /metrics in KubeVirt's shape, checked by promtool on real scrapes (ctest
# e2e.metrics_kubevirt): two agents, one small guest migrated by a VMIM manifest
# (mig-m1) from node-a to node-b. While it copies, node-a shows one
# migration in the running phase and data processed for the VM; once it
# succeeded, the data processed and total, the succeeded series for the
# VMIM, start and end times and the phase histogram; after a restart of
# node-a, the succeeded series still. Every scrape, before, during, after
# and after the restart, passes `promtool check metrics`. The scrapes
# are left in BUILD/test-artifacts/metrics/. docs/grafana-ferry.json may
# use only the families found.
. "$(dirname "$0")/cluster_lib.sh"
PROMTOOL=${PROMTOOL:-$(command -v promtool)}
[ -n "$PROMTOOL" ] || { echo "SKIP: promtool not installed (scripts/setup.sh)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
cluster_init "$1"
ARTIFACTS=$(cd "$1" && pwd)/test-artifacts/metrics
rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS"

agent_config node-a "$PORT_A" node-b "$PORT_B"
agent_config node-b "$PORT_B" node-a "$PORT_A"
# Slow enough that a scrape sees the copy under way.
sed -i 's/^migration: {/migration: {max_bandwidth_mibps: 16, /' "$WORK/node-a.yaml"
agent_start node-a
agent_start node-b

scrape() { curl -sf --unix-socket "$WORK/$1/api.sock" http://ferryd/metrics; }
value() { # FILE SERIES: the value of one sample (the series written exactly)
	awk -v s="$2" 'index($0, s " ") == 1 { print $NF; found = 1 } END { exit !found }' "$1"
}
lint() { # FILE
	"$PROMTOOL" check metrics < "$1" > "$1.promtool" 2>&1 ||
		die "promtool check metrics $(basename "$1"): $(cat "$1.promtool")"
}

vm_create node-a g1 128 "fill=64 profile=random dirty=2 wss=8"
scrape node-a > "$ARTIFACTS/node-a-before.txt" || die "no /metrics on node-a"
lint "$ARTIFACTS/node-a-before.txt"

cat > "$WORK/mig-m1.yaml" <<'YAML'
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata:
  name: mig-m1
spec:
  vmiName: g1
YAML
ctl node-a create -f "$WORK/mig-m1.yaml" || die "create vmim failed"

# During the copy: one migration running, the VM's data processed growing.
during=$ARTIFACTS/node-a-during.txt
deadline=$(($(date +%s) + 120))
while :; do
	scrape node-a > "$during" || die "scrape failed"
	running=$(value "$during" 'ferry_vmi_migrations_in_running_phase{node="node-a"}')
	processed=$(value "$during" 'ferry_vmi_migration_data_processed_bytes{vmi="g1",node="node-a"}' || echo 0)
	[ "$running" = 1 ] && [ "$processed" -gt 0 ] && break
	grep -q '^ferry_vmi_migration_succeeded{vmi="g1"' "$during" && die "the migration ended before a scrape saw it running"
	[ "$(date +%s)" -lt "$deadline" ] || die "no scrape saw the migration running (running=$running processed=$processed)"
	sleep 0.2 # polling /metrics; it has no event to wait on
done
lint "$during"
log "during: running=$running processed=$processed"

phase=""
deadline=$(($(date +%s) + 240))
while [ "$(date +%s)" -lt "$deadline" ]; do
	phase=$(ctl node-a -o json get vmim | jq -r '.[] | select(.name == "mig-m1") | .phase')
	[ "$phase" = Succeeded ] || [ "$phase" = Failed ] && break
	sleep 0.2 # polling a status API
done
[ "$phase" = Succeeded ] || die "mig-m1 ended ${phase:-nowhere}"

after=$ARTIFACTS/node-a-after.txt
scrape node-a > "$after" || die "scrape failed"
scrape node-b > "$ARTIFACTS/node-b-after.txt" || die "scrape of node-b failed"
lint "$after"
lint "$ARTIFACTS/node-b-after.txt"

v() { value "$after" "$1" || die "no sample $1 in $(basename "$after")"; }
processed=$(v 'ferry_vmi_migration_data_processed_bytes{vmi="g1",node="node-a"}')
total=$(v 'ferry_vmi_migration_data_bytes_total{vmi="g1",node="node-a"}')
[ "$processed" -gt 0 ] || die "data processed is $processed"
# The total is the guest's RAM (128 MiB) as QEMU counts it.
[ "$total" -ge $((128 << 20)) ] || die "data total is $total, less than the guest's 128 MiB"
[ "$(v 'ferry_vmi_migration_data_total_bytes{vmi="g1",node="node-a"}')" = "$total" ] ||
	die "the earlier name shows another total"
[ "$(v 'ferry_vmi_migration_succeeded{vmi="g1",vmim="mig-m1",node="node-a"}')" = 1 ] || die "succeeded is not 1"
! grep -q '^ferry_vmi_migration_failed{' "$after" || die "a failed series after a success"
[ "$(v 'ferry_vmi_migrations_in_running_phase{node="node-a"}')" = 0 ] || die "still counted as running"
start=$(grep '^ferry_vmi_migration_start_time_seconds{vmi="g1",node="node-a",migration_name="mig-m1"}' "$after" |
	awk '{print $NF}')
end=$(v 'ferry_vmi_migration_end_time_seconds{vmi="g1",node="node-a",migration_name="mig-m1",status="Succeeded"}')
awk -v s="$start" -v e="$end" -v now="$(date +%s)" 'BEGIN { exit !(s > 1e9 && e >= s && e <= now + 1) }' ||
	die "start $start and end $end are not a plausible interval"
h=ferry_vmi_migration_phase_transition_time_from_creation_seconds
[ "$(v "${h}_count{node=\"node-a\",phase=\"Succeeded\"}")" = 1 ] || die "the histogram missed Succeeded"
[ "$(v "${h}_count{node=\"node-a\",phase=\"Running\"}")" = 1 ] || die "the histogram missed Running"
[ "$(v "${h}_bucket{node=\"node-a\",phase=\"Succeeded\",le=\"+Inf\"}")" = 1 ] || die "no +Inf bucket"
# The target does not count the migration a second time.
! grep -q '^ferry_vmi_migration_succeeded{' "$ARTIFACTS/node-b-after.txt" || die "node-b counts it too"
# ferry's own families stay.
grep -q '^ferry_migrations{node="node-a",role="source",phase="Succeeded"} 1$' "$after" || die "ferry_migrations changed"
# The Grafana dashboard asks only for families that exist.
for name in $(grep -o 'ferry_[a-z][a-z_]*' "$(dirname "$0")/../../docs/grafana-ferry.json" | sort -u); do
	base=$(echo "$name" | sed -E 's/_(bucket|sum|count)$//')
	grep -q "^# TYPE $base " "$after" || grep -q "^# TYPE $name " "$after" ||
		die "docs/grafana-ferry.json uses $name, which /metrics does not have"
done
guest_verify node-b g1

# The outcome survives a restart of the agent (it is read back from the
# migration records); this run's figures start afresh.
agent_kill node-a TERM
agent_start node-a
restarted=$ARTIFACTS/node-a-restarted.txt
scrape node-a > "$restarted" || die "scrape after the restart failed"
lint "$restarted"
[ "$(value "$restarted" 'ferry_vmi_migration_succeeded{vmi="g1",vmim="mig-m1",node="node-a"}')" = 1 ] ||
	die "the succeeded series did not survive the restart"
! grep -q '^ferry_vmi_migration_data_processed_bytes{' "$restarted" || die "last run's figures after a restart"

log "the metrics for one migration (node-a, after):"
grep -E '^ferry_vmi_migration(s_in|_data|_dirty|_memory|_start|_end|_succeeded|_failed|_last)|_count\{' "$after"
log PASS
