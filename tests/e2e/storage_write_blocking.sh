#!/bin/bash
# A guest that writes to its local disk faster than half of what the mirror
# can copy (the mirror capped at 2 MiB/s, the guest writing 3 MB/s) would
# keep a background mirror from ever getting in sync. ferry notices the
# write rate, switches the mirror to write-blocking (counted as an
# escalation), and the migration completes; the guest's verify of every
# sector it wrote passes on the target.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
two_agents

img=$WORK/w1-root.raw
truncate -s 32M "$img"
vm_create node-a w1 128 "fill=16 profile=mix disk=3 diskws=30" \
	"disks:
  - {name: root, path: $img, format: raw}"
id=$(ctl node-a -o json migrate w1 --node node-b --max-bandwidth 2 | jq -r .id)
# Once the mirror is write-blocking and in sync, RAM pre-copy starts: the
# guest stops writing to its disk then, so no disk write is in flight at
# the switchover (a write caught there under write-blocking has left the
# guest's IDE device expecting more PIO data on the target in some runs:
# an open issue, see docs/architecture.md §4a).
deadline=$(($(date +%s) + 120))
until [ "$(mig_json node-a "$id" | jq -r '.mode + " " + .storageCopyMode')" = "pre-copy write-blocking" ]; do
	[ "$(date +%s)" -le "$deadline" ] || die "never reached RAM pre-copy with a write-blocking mirror"
	[ "$(mig_json node-a "$id" | jq -r .phase)" != Failed ] || die "failed: $(mig_json node-a "$id" | jq -r .failureReason)"
	sleep 0.1 # polling a status API
done
serial=$(vm_json node-a w1 | jq -r .serialSocket)
"$GUEST_SERIAL" --socket "$serial" --timeout 10 --send "disk 0" --expect "OK disk=0" >/dev/null ||
	die "the guest did not stop writing"
mig_wait_phase node-a "$id" "Succeeded|Failed" 120
ctl node-a describe vmi w1 | sed -n '/Migration State/,/Migration History/p'
[ "$(mig_json node-a "$id" | jq -r .phase)" = Succeeded ] || die "migration failed: $(mig_json node-a "$id" | jq -r .failureReason)"
mig=$(vm_json node-a w1 | jq .migrationState)
echo "$mig" | jq -c '{storageCopyMode, escalations, diskTotal, diskTransferred, totalMs, pauseMs}'
[ "$(echo "$mig" | jq -r .storageCopyMode)" = write-blocking ] || die "the mirror did not switch to write-blocking"
[ "$(echo "$mig" | jq -r .escalations)" -ge 1 ] || die "the switch was not counted as an escalation"
grep -q "event=escalation action=write_blocking" "$WORK/node-a.log" || die "no escalation logged"
guest_verify node-b w1
# The target's NBD export must be gone before the guest runs there, or
# QEMU refuses the guest's disk its exclusive write (a permission conflict).
! grep -q "Permission conflict" "$WORK/node-b/state/vms/w1/qemu.log" ||
	die "permission conflict on the target: $(grep "Permission conflict" "$WORK/node-b/state/vms/w1/qemu.log")"
log PASS
