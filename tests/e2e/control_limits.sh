#!/bin/bash
# Limits: with one outbound slot, a second migration waits visibly in
# Pending; cancelled there, it ends Failed and its guest stays; a third one
# times out of Pending with the reason; the first completes, its guest
# dirtying memory through many passes at 8 MiB/s, and verifies.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

agent_config node-a "$PORT_A" node-b "$PORT_B"
cat >> "$WORK/node-a.yaml" <<YAML
limits: {parallel_outbound: 1, pending_timeout_s: 3}
YAML
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b

vm_create node-a g1 256 "fill=160 profile=random dirty=2 wss=16"
vm_create node-a g2 128 "fill=32 profile=text dirty=5 wss=16"
vm_create node-a g3 128 "fill=32 profile=text dirty=5 wss=16"
id1=$(ctl node-a -o json migrate g1 --node node-b --max-bandwidth 8 | jq -r .id)
mig_wait_phase node-a "$id1" Running 30
id2=$(ctl node-a -o json migrate g2 --node node-b | jq -r .id)
mig_wait_phase node-a "$id2" Pending 10
ctl node-a get vmim | grep -q "g2 .*Pending" || die "get vmim does not show g2 Pending"
ctl node-a migrate-cancel g2 || die "cancel in Pending refused"
mig_wait_phase node-a "$id2" Failed 10
mig_json node-a "$id2" | jq -r .failureReason | grep -q "cancelled while Pending" || die "reason for g2"
[ "$(vm_json node-a g2 | jq -r .state)" = Running ] || die "g2 is not Running on node-a"
id3=$(ctl node-a -o json migrate g3 --node node-b | jq -r .id)
mig_wait_phase node-a "$id3" Failed 20
mig_json node-a "$id3" | jq -r .failureReason | grep -q "waited 3 s in Pending for an outbound slot (limit 1" || die "reason for g3: $(mig_json node-a "$id3" | jq -r .failureReason)"
guest_verify node-a g3
[ "$(ctl node-b -o json get vmim | jq '[.[] | select(.vm == "g2" or .vm == "g3")] | length')" = 0 ] ||
	die "the target heard of the pending migrations"
mig_wait_phase node-a "$id1" Succeeded 120
guest_verify node-b g1
log PASS
