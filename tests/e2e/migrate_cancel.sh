#!/bin/bash
# `ferryctl migrate-cancel` mid-stream: the migration ends Failed with abort
# status Succeeded, the guest runs on the source, unchanged, and verifies;
# the target is cleaned up; a second migration then works.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=160 profile=random dirty=10 wss=64"
id=$(ctl node-a -o json migrate g1 --node node-b --max-bandwidth 16 | jq -r .id)
mig_wait_bytes node-a "$id" $((16 << 20)) 60
ctl node-a migrate-cancel g1 || die "cancel refused"
mig_wait_phase node-a "$id" Failed 60
m=$(mig_json node-a "$id")
[ "$(echo "$m" | jq -r .abortStatus)" = Succeeded ] || die "abort status: $(echo "$m" | jq -c .)"
echo "$m" | jq -r .failureReason | grep -q cancel || die "reason does not say cancelled"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
mig_wait_phase node-b "$id" Failed 30
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
ctl node-a migrate-cancel g1 && die "cancelling a finished migration was accepted"
out=$(ctl node-a migrate g1 --node node-b --wait) || die "the next migration failed: $out"
guest_verify node-b g1
log PASS
