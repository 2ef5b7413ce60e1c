#!/bin/bash
# Every disk bus through the storage mirror: a VM with a 16 MiB local disk
# on virtio, scsi and sata (q35) and on ide (pc) migrates to node-b; the
# image ferry made there has the bytes of the source image (random,
# written before the start; ferry-guest reads and writes only IDE disks,
# so on the other buses the guest leaves the disk alone and the bytes must
# arrive unchanged). The scsi VM also has a shared disk (not copied, the
# same path on both sides). Then on virtio: a migration cancelled
# mid-mirror (the guest keeps running on node-a, node-b keeps nothing) and
# the next one switched to post-copy at once; the guest verifies its
# memory after each.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
two_agents

mkimg() { head -c 16M /dev/urandom > "$1"; } # PATH: raw, random

# The target's copy has the source's bytes; stop, compare, delete.
check_copy() { # NAME SRC-IMAGE
	local name=$1 img=$2 timg
	timg=$(vm_json node-b "$name" | jq -r '.disks[0].path')
	case "$timg" in "$WORK/node-b/state/disks/$name/"*) ;; *) die "$name: target image at $timg" ;; esac
	ctl node-b vm stop "$name" >/dev/null || die "$name: stop on node-b failed"
	cmp "$img" "$timg" || die "$name: the target image differs from the source's"
	ctl node-b vm delete "$name" >/dev/null || die "$name: delete failed"
	[ ! -e "$WORK/node-b/state/disks/$name" ] || die "$name: node-b kept its image after delete"
}

mkimg "$WORK/shared.raw"
for bus in virtio scsi sata ide; do
	machine=q35
	[ "$bus" = ide ] && machine=pc
	name=b-$bus
	img=$WORK/$name.raw
	mkimg "$img"
	extra="machine: $machine
disks:
  - {name: root, path: $img, format: raw, bus: $bus}"
	[ "$bus" = scsi ] && extra="$extra
  - {name: data, path: $WORK/shared.raw, format: raw, storage: shared, bus: scsi}"
	vm_create node-a "$name" 64 "fill=8 profile=mix dirty=2 wss=4" "$extra"
	out=$(ctl node-a migrate "$name" --node node-b --wait) || die "$name: migration failed: $out"
	[ "$(vm_json node-a "$name" | jq -r .migrationState.disks)" = 1 ] || die "$name: not exactly one disk copied"
	guest_verify node-b "$name"
	[ "$bus" != scsi ] || [ "$(vm_json node-b "$name" | jq -r '.disks[1].path')" = "$WORK/shared.raw" ] ||
		die "$name: the shared disk moved"
	check_copy "$name" "$img"
	log "$bus ($machine): image identical on node-b"
done

# Cancel mid-mirror: 32 MiB at 1 MiB/s leaves time to catch it.
img=$WORK/c1.raw
head -c 32M /dev/urandom > "$img"
vm_create node-a c1 64 "fill=16 profile=random dirty=20 wss=8" "disks:
  - {name: root, path: $img, format: raw}"
id=$(ctl node-a -o json migrate c1 --node node-b --max-bandwidth 1 | jq -r .id)
mig_wait_field node-a "$id" diskTransferred $((2 << 20)) 60
ctl node-a migrate-cancel c1 || die "cancel refused"
mig_wait_phase node-a "$id" Failed 60
mig_wait_phase node-b "$id" Failed 30
[ "$(vm_json node-a c1 | jq -r .state)" = Running ] || die "c1 is not Running on node-a"
[ ! -e "$WORK/node-b/state/disks/c1" ] || die "node-b kept a partial image: $(ls "$WORK/node-b/state/disks/c1")"
[ "$(qemu_count)" = 1 ] || die "expected one QEMU after the cancel, found $(qemu_count)"
guest_verify node-a c1
log "cancel mid-mirror: the guest runs on node-a, node-b clean"

# Post-copy right after the mirror converged.
id=$(ctl node-a -o json migrate c1 --node node-b --post-copy-now | jq -r .id)
mig_wait_phase node-a "$id" Succeeded 180
m=$(mig_json node-a "$id")
echo "$m" | jq -c '{phase, mode, postCopy, postcopyRequests, disks, totalMs, pauseMs}'
grep -q "event=post_copy_started" "$WORK/node-a.log" || die "the migration never switched to post-copy"
[ "$(echo "$m" | jq -r .disks)" = 1 ] || die "post-copy migration copied no disk"
# The guest runs on node-b from the start of post-copy, not its end.
[ "$(echo "$m" | jq -r .pauseMs)" -lt 5000 ] || die "the guest was paused $(echo "$m" | jq -r .pauseMs) ms"
guest_verify node-b c1
check_copy c1 "$img"
assert_no_migration_files node-a
assert_no_migration_files node-b
log PASS
