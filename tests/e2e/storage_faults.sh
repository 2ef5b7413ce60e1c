#!/bin/bash
# Storage migration failures lose nothing: a migration cancelled mid-mirror
# and one whose target agent is killed mid-mirror both leave the guest
# running on the source with its disk intact (the pre-written region
# unchanged, the guest's own verify passing), no mirror job or NBD node left
# in the source QEMU, no image left on the target. A source agent killed
# mid-mirror leaves an NBD node in its QEMU; the restarted agent's next
# migration clears it and works.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v qemu-img >/dev/null || { echo "SKIP: qemu-img not installed"; exit 77; }
QMP=$BUILD/qmp/ferry-qmp
two_agents

img=$WORK/f1-root.raw
truncate -s 1G "$img"
head -c 256M /dev/urandom | dd of="$img" conv=notrunc status=none
region_sum() { head -c 256M "$img" | sha256sum | cut -d' ' -f1; }
sum0=$(region_sum)
vm_create node-a f1 256 "fill=32 profile=mix disk=2 diskws=64 diskoff=512" \
	"machine: pc
disks:
  - {name: root, path: $img, format: raw, bus: ide}"

source_clean() { # no mirror job, no NBD node in the source QEMU
	local qmp jobs nodes
	qmp=$(vm_json node-a f1 | jq -r .qmpSocket)
	jobs=$("$QMP" --socket "$qmp" --timeout 10 execute query-block-jobs '{}')
	[ "$jobs" = "[]" ] || die "mirror jobs left in the source QEMU: $jobs"
	nodes=$("$QMP" --socket "$qmp" --timeout 10 execute query-named-block-nodes '{"flat":true}' |
		jq -r '.[]."node-name"' | grep '^nbd-' || true)
	[ -z "$nodes" ] || die "NBD nodes left in the source QEMU: $nodes"
}
target_clean() {
	[ -z "$(ls -A "$WORK/node-b/state/disks" 2>/dev/null)" ] ||
		die "images left on node-b: $(find "$WORK/node-b/state/disks")"
	[ -z "$(ls "$WORK/node-b/state/vms" 2>/dev/null)" ] || die "node-b kept a VM: $(ls "$WORK/node-b/state/vms")"
	[ "$(qemu_count)" = 1 ] || die "expected one QEMU (the source), found $(qemu_count)"
}
# A slow mirror (8 MiB/s) leaves time to strike while it copies.
start_slow() {
	local id
	id=$(ctl node-a -o json migrate f1 --node node-b --max-bandwidth 8 | jq -r .id)
	mig_wait_phase node-a "$id" Running 60
	mig_wait_field node-a "$id" diskTransferred $((24 << 20)) 60
	[ "$(mig_json node-a "$id" | jq -r .mode)" = storage ] || die "not in the storage phase"
	echo "$id"
}

log "1. cancel mid-mirror"
id=$(start_slow)
ctl node-a migrate-cancel "$id" || die "cancel refused"
mig_wait_phase node-a "$id" Failed 60
log "reason: $(mig_json node-a "$id" | jq -r .failureReason)"
[ "$(vm_json node-a f1 | jq -r .state)" = Running ] || die "f1 is not Running on node-a"
source_clean
target_clean

log "2. target agent killed mid-mirror"
id=$(start_slow)
agent_kill node-b KILL
mig_wait_phase node-a "$id" Failed 60
log "reason: $(mig_json node-a "$id" | jq -r .failureReason)"
[ "$(vm_json node-a f1 | jq -r .state)" = Running ] || die "f1 is not Running on node-a"
source_clean
agent_start node-b
target_clean
assert_no_migration_files node-a

log "3. source agent killed mid-mirror: its NBD node stays in the source QEMU"
id=$(start_slow)
agent_kill node-a KILL
agent_start node-a
[ "$(vm_json node-a f1 | jq -r .state)" = Running ] || die "the restarted node-a did not take f1 back"
mig_wait_phase node-b "$id" Failed 60
target_clean

[ "$(region_sum)" = "$sum0" ] || die "the source disk's pre-written region changed"
guest_verify node-a f1

log "4. the next migration works (and clears what the killed agent left)"
out=$(ctl node-a migrate f1 --node node-b --wait) || die "the next migration failed: $out"
echo "$out"
grep -q "event=leftover_node node=nbd-root action=remove" "$WORK/node-a.log" ||
	die "the killed agent's NBD node was not found and removed"
guest_verify node-b f1
log PASS
