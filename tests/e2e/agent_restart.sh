#!/bin/bash
# Migration status survives ferryd restarts: a finished migration's record
# is there after both agents restart, and the restarted target takes its
# running VM back (spec, pid, QMP) and can migrate it on; a migration cut off by its source
# agent dying (SIGKILL) is recorded as Failed with the reason on restart,
# and its guest kept running on the source and verifies.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 128 "fill=48 profile=text dirty=5 wss=32"
ctl node-a migrate g1 --node node-b --wait >/dev/null || die "migration failed"
id1=$(vm_json node-a g1 | jq -r .lastMigration)

agent_kill node-a TERM
agent_kill node-b TERM
agent_start node-a
agent_start node-b
[ "$(mig_json node-a "$id1" | jq -r .phase)" = Succeeded ] || die "node-a lost the record of $id1"
[ "$(mig_json node-b "$id1" | jq -r .phase)" = Succeeded ] || die "node-b lost the record of $id1"
ctl node-a describe vmi g1 | tee "$WORK/describe.txt"
grep -q "Migration UID: *$id1" "$WORK/describe.txt" || die "describe lacks the migration after restart"
grep -q "Target Node: *node-b" "$WORK/describe.txt" || die "describe lacks the target after restart"
[ "$(vm_json node-b g1 | jq -r .state)" = Running ] || die "node-b did not take g1 back after its restart"
[ "$(vm_json node-b g1 | jq -r .lastMigration)" = "$id1" ] || die "g1 lost its last migration on node-b"
guest_verify node-b g1
ctl node-b migrate g1 --node node-a --wait >/dev/null || die "the adopted VM does not migrate"
guest_verify node-a g1

# During: kill the source agent mid-stream.
vm_create node-a g2 256 "fill=160 profile=random dirty=10 wss=64"
serial=$(vm_json node-a g2 | jq -r .serialSocket)
id2=$(ctl node-a -o json migrate g2 --node node-b --max-bandwidth 16 | jq -r .id)
mig_wait_bytes node-a "$id2" $((16 << 20)) 60
agent_kill node-a KILL
agent_start node-a
m=$(mig_json node-a "$id2")
[ "$(echo "$m" | jq -r .phase)" = Failed ] || die "interrupted migration not Failed: $m"
echo "$m" | jq -r .failureReason | grep -q "ferryd stopped during the migration" || die "no reason: $m"
out=$("$GUEST_SERIAL" --socket "$serial" --timeout 120 --send verify --expect "VERIFY OK" --fail "VERIFY FAIL") ||
	die "the source guest did not survive its agent: $out"
log "g2 on node-a after its agent died: $out"
mig_wait_phase node-b "$id2" Failed 60
[ ! -e "$WORK/node-b/state/vms/g2" ] || die "target kept a half-built g2"
log PASS
