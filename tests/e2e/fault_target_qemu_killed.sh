#!/bin/bash
# The target QEMU dies mid-stream: the source says so, the guest keeps
# running on the source and verifies, nothing is left on the target.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=160 profile=random dirty=10 wss=64"
id=$(ctl node-a -o json migrate g1 --node node-b --max-bandwidth 16 | jq -r .id)
mig_wait_phase node-a "$id" Running 60
mig_wait_bytes node-a "$id" $((24 << 20)) 60
pf=$WORK/node-b/state/vms/g1/qemu.pid
[ -f "$pf" ] || die "no target QEMU pidfile"
kill -KILL "$(cat "$pf")"
log "target QEMU killed"
mig_wait_phase node-a "$id" Failed 60
log "failure reason: $(mig_json node-a "$id" | jq -r .failureReason)"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
mig_wait_phase node-b "$id" Failed 30
[ ! -e "$WORK/node-b/state/vms/g1" ] || die "target run dir left behind: $(ls "$WORK/node-b/state/vms/g1")"
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
assert_no_migration_files node-a
log PASS
