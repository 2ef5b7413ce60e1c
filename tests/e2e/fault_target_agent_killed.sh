#!/bin/bash
# The target agent dies (SIGKILL) mid-stream: the source reports Failed with
# a reason, the guest keeps running on the source and verifies, the
# half-built target QEMU goes away, and the restarted target agent clears
# its leftovers. Then the next migration works.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=160 profile=random dirty=10 wss=64"
id=$(ctl node-a -o json migrate g1 --node node-b --max-bandwidth 16 | jq -r .id)
mig_wait_phase node-a "$id" Running 60
mig_wait_bytes node-a "$id" $((24 << 20)) 60
agent_kill node-b KILL
log "target agent killed"
mig_wait_phase node-a "$id" Failed 60
reason=$(mig_json node-a "$id" | jq -r .failureReason)
log "failure reason: $reason"
[ -n "$reason" ] && [ "$reason" != null ] || die "no failure reason"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1

agent_start node-b
[ -z "$(ls "$WORK/node-b/state/vms" 2>/dev/null)" ] || die "node-b kept leftovers: $(ls "$WORK/node-b/state/vms")"
[ "$(qemu_count)" = 1 ] || die "expected one QEMU (the source), found $(qemu_count)"
assert_no_migration_files node-a

out=$(ctl node-a migrate g1 --node node-b --wait) || die "the next migration failed: $out"
guest_verify node-b g1
log PASS
