#!/bin/bash
# A guest that writes to its local disk faster than half of what the mirror
# can copy (the mirror capped at 2 MiB/s, the guest writing 3 MB/s) would
# keep a background mirror from ever getting in sync. ferry notices the
# write rate, switches the mirror to write-blocking (counted as an
# escalation), QEMU reports the mirror actively synced, and the migration
# completes with the guest writing through RAM pre-copy and the switchover;
# the guest's verify of every sector it wrote passes on the target.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
two_agents

img=$WORK/w1-root.raw
truncate -s 32M "$img"
vm_create node-a w1 128 "fill=16 profile=mix disk=3 diskws=30" \
	"machine: pc
disks:
  - {name: root, path: $img, format: raw, bus: ide}"
id=$(ctl node-a -o json migrate w1 --node node-b --max-bandwidth 2 | jq -r .id)
mig_wait_phase node-a "$id" "Succeeded|Failed" 120
ctl node-a describe vmi w1 | sed -n '/Migration State/,/Migration History/p'
[ "$(mig_json node-a "$id" | jq -r .phase)" = Succeeded ] || die "migration failed: $(mig_json node-a "$id" | jq -r .failureReason)"
mig=$(vm_json node-a w1 | jq .migrationState)
echo "$mig" | jq -c '{storageCopyMode, escalations, diskTotal, diskTransferred, totalMs, pauseMs}'
[ "$(echo "$mig" | jq -r .storageCopyMode)" = write-blocking ] || die "the mirror did not switch to write-blocking"
[ "$(echo "$mig" | jq -r .escalations)" -ge 1 ] || die "the switch was not counted as an escalation"
grep -q "event=escalation action=write_blocking" "$WORK/node-a.log" || die "no escalation logged"
grep -q "event=copy_mode_changed copy_mode=write-blocking in_place=1" "$WORK/node-a.log" ||
	die "the copy mode did not change in place (block-job-change)"
grep -q "event=mirror_actively_synced disk=root" "$WORK/node-a.log" || die "QEMU never reported the mirror actively synced"
guest_verify node-b w1
# The target's NBD export must be gone before the guest runs there, or
# QEMU refuses the guest's disk its exclusive write (a permission conflict).
! grep -q "Permission conflict" "$WORK/node-b/state/vms/w1/qemu.log" ||
	die "permission conflict on the target: $(grep "Permission conflict" "$WORK/node-b/state/vms/w1/qemu.log")"
log PASS
