#!/bin/bash
# Storage migration: a VM whose 1 GiB disk is local to node-a migrates to
# node-b with it while the guest keeps writing. The disk image (raw or qcow2,
# the second argument) has 256 MiB written before: half random, half
# text-like. The guest arrives paused (--paused) so the stopped source image
# and the untouched target image can be compared with qemu-img; then it
# resumes and its own verify checks every sector it wrote.
. "$(dirname "$0")/cluster_lib.sh"
FMT=${2:-raw}
cluster_init "$1"
command -v qemu-img >/dev/null || { echo "SKIP: qemu-img not installed"; exit 77; }
two_agents

# 256 MiB of content before the migration, the rest of the 1 GiB unwritten.
make_disk() { # PATH FORMAT
	local raw=$WORK/base.raw
	truncate -s 1G "$raw"
	head -c 128M /dev/urandom | dd of="$raw" conv=notrunc status=none
	yes "ferry storage migration test line: the quick brown fox jumps over the lazy dog" |
		head -c 128M | dd of="$raw" bs=1M seek=128 conv=notrunc status=none
	if [ "$2" = raw ]; then mv "$raw" "$1"; else qemu-img convert -O "$2" "$raw" "$1" && rm -f "$raw"; fi
}
img=$WORK/s1-root.$FMT
make_disk "$img" "$FMT"

vm_create node-a s1 256 "fill=64 profile=mix dirty=5 wss=32 disk=2 diskws=64 diskoff=512" \
	"machine: pc
disks:
  - {name: root, path: $img, format: $FMT, bus: ide}"
out=$(ctl node-a migrate s1 --node node-b --paused --wait) || die "migration failed: $out"
echo "$out"
mig=$(vm_json node-a s1 | jq .migrationState)
echo "$mig" | jq -c '{disks, diskTotal, diskTransferred, storageCopyMode, rawBytes, wireBytes, totalMs}'
[ "$(echo "$mig" | jq -r .disks)" = 1 ] || die "the migration copied no disk"
[ "$(echo "$mig" | jq -r .diskTotal)" = 1073741824 ] || die "diskTotal is not 1 GiB"

# The source QEMU is gone, the target's is paused: compare the images.
[ "$(qemu_count)" = 1 ] || die "expected exactly one QEMU, found $(qemu_count)"
[ "$(vm_json node-b s1 | jq -r .state)" = Paused ] || die "s1 did not arrive Paused"
timg=$(vm_json node-b s1 | jq -r '.disks[0].path')
case "$timg" in "$WORK/node-b/state/disks/s1/"*) ;; *) die "target image at an unexpected path: $timg" ;; esac
[ -f "$img" ] || die "the user's source image was removed"
qemu-img compare -U -f "$FMT" -F "$FMT" "$img" "$timg" || die "source and target images differ"
log "images identical: $img $timg"

ctl node-b describe vmi s1 | grep -q "root  *disk  *$FMT  *local, copied  *$timg" ||
	die "describe does not show the disk where it now is"
ctl node-b vm resume s1 || die "resume failed"
guest_verify node-b s1
# The target's NBD export must be gone before the guest runs there, or
# QEMU refuses the guest's disk its exclusive write (a permission conflict).
! grep -q "Permission conflict" "$WORK/node-b/state/vms/s1/qemu.log" ||
	die "permission conflict on the target: $(grep "Permission conflict" "$WORK/node-b/state/vms/s1/qemu.log")"
assert_no_migration_files node-a
assert_no_migration_files node-b
log PASS
