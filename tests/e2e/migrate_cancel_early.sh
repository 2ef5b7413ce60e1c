#!/bin/bash
# Cancel right after asking (while the target prepares or the first bytes
# flow), repeated: every time the migration ends Failed with abort status
# Succeeded, the guest runs on the source and verifies, and nothing is left
# on the target.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=128 profile=mix dirty=10 wss=64"
phases=""
for i in 1 2 3; do
	id=$(ctl node-a -o json migrate g1 --node node-b --max-bandwidth 32 | jq -r .id)
	phases="$phases $(mig_json node-a "$id" | jq -r .phase)"
	ctl node-a migrate-cancel g1 >/dev/null || die "cancel refused"
	mig_wait_phase node-a "$id" Failed 60
	[ "$(mig_json node-a "$id" | jq -r .abortStatus)" = Succeeded ] || die "abort status not Succeeded"
	[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
	guest_verify node-a g1
	# The target may not have heard of it at all; if it did, it failed.
	t=$(mig_json node-b "$id" | jq -r .phase)
	[ -z "$t" ] || [ "$t" = null ] || mig_wait_phase node-b "$id" Failed 30
	[ "$(qemu_count)" = 1 ] || die "cancel $i left $(qemu_count) QEMUs"
	[ ! -e "$WORK/node-b/state/vms/g1" ] || die "cancel $i left the target run dir"
done
log "phases when cancelled:$phases"
log PASS
