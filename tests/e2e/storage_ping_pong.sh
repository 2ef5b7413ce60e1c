#!/bin/bash
# A VM with a local qcow2 disk migrates there and back three times while the
# guest writes to it; the guest's verify passes after every hop. Each node
# keeps only the copy the VM runs on: the one it left is deleted (ferry's
# copies only: the user's original image stays).
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v qemu-img >/dev/null || { echo "SKIP: qemu-img not installed"; exit 77; }
two_agents

img=$WORK/p1-root.qcow2
qemu-img create -q -f qcow2 "$img" 256M
vm_create node-a p1 128 "fill=32 profile=mix dirty=5 wss=16 disk=2 diskws=32" \
	"machine: pc
disks:
  - {name: root, path: $img, format: qcow2, bus: ide}"
from=node-a to=node-b
for hop in 1 2 3 4 5 6; do
	out=$(ctl "$from" migrate p1 --node "$to" --wait) || die "hop $hop ($from -> $to) failed: $out"
	echo "$out" | head -4
	guest_verify "$to" p1
	! grep -q "Permission conflict" "$WORK/$to/state/vms/p1/qemu.log" || die "hop $hop: permission conflict on $to"
	path=$(vm_json "$to" p1 | jq -r '.disks[0].path')
	[ "$path" = "$WORK/$to/state/disks/p1/root.qcow2" ] || die "hop $hop: disk at $path"
	[ ! -e "$WORK/$from/state/disks/p1" ] || die "hop $hop: $from kept its stale copy"
	[ "$(qemu_count)" = 1 ] || die "hop $hop: $(qemu_count) QEMUs"
	tmp=$from from=$to to=$tmp
done
[ -f "$img" ] || die "the user's original image was deleted"
assert_no_migration_files node-a
assert_no_migration_files node-b
log PASS
