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
out=$(ctl node-a migrate w1 --node node-b --max-bandwidth 2 --wait) || die "migration failed: $out"
echo "$out"
mig=$(vm_json node-a w1 | jq .migrationState)
echo "$mig" | jq -c '{storageCopyMode, escalations, diskTotal, diskTransferred, totalMs, pauseMs}'
[ "$(echo "$mig" | jq -r .storageCopyMode)" = write-blocking ] || die "the mirror did not switch to write-blocking"
[ "$(echo "$mig" | jq -r .escalations)" -ge 1 ] || die "the switch was not counted as an escalation"
grep -q "event=escalation action=write_blocking" "$WORK/node-a.log" || die "no escalation logged"
guest_verify node-b w1
log PASS
