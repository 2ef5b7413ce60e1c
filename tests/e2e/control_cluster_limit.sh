#!/bin/bash
# limits.parallel_cluster: node-a allows one outbound migration in the whole
# cluster; while node-b migrates a VM out, node-a's migration waits in
# Pending, then goes once node-b's has finished.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

agent_config node-a "$PORT_A" node-b "$PORT_B"
echo "limits: {parallel_cluster: 1, pending_timeout_s: 120}" >> "$WORK/node-a.yaml"
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b

vm_create node-b gb 256 "fill=128 profile=random dirty=2 wss=16"
vm_create node-a ga 128 "fill=32 profile=text dirty=2 wss=8"
idb=$(ctl node-b -o json migrate gb --node node-a --max-bandwidth 16 | jq -r .id)
mig_wait_phase node-b "$idb" Running 30
ida=$(ctl node-a -o json migrate ga --node node-b | jq -r .id)
sleep 1 # give node-a the chance to (wrongly) start; it must stay Pending
[ "$(mig_json node-a "$ida" | jq -r .phase)" = Pending ] || die "node-a did not wait: $(mig_json node-a "$ida" | jq -c .)"
[ "$(mig_json node-b "$idb" | jq -r .phase)" = Running ] || die "node-b's migration is not running any more"
mig_wait_phase node-b "$idb" Succeeded 120
mig_wait_phase node-a "$ida" Succeeded 120
guest_verify node-b ga
guest_verify node-a gb
log PASS
