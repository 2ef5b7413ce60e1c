#!/bin/bash
# e2e: ferry's Linux test guest (docs/guest.md, "The Linux guest") as users'
# VMs are: q35, UEFI, 2 vCPUs, booting from its own virtio disk, a local
# virtio data disk it writes, RAM dirtied by both vCPUs. Through ferryd and
# ferryctl, with every local disk mirrored on each hop:
#
#   1. node-a -> node-b, pre-copy; its figures are logged (FIGURES);
#   2. node-b -> node-a cancelled half-way: the guest runs on node-b and
#      verifies, node-a keeps no QEMU, no VM entry, no disk, no files;
#   3. node-b -> node-a in post-copy (--post-copy-now), from the QEMU
#      whose migration was cancelled with a bandwidth cap: the cap must
#      not outlive it;
#   4. four more hops, so six in all: three round trips.
#
# After every hop the guest verifies every page and block it wrote, and
# its heartbeat goes on past the last one seen on the source.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
. "$(dirname "$0")/linux_lib.sh"
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || { echo "SKIP: ovmf not installed"; exit 77; }
linux_guest_init
two_agents

# Modest rates: each wake-up of the guest costs host CPU under TCG.
linux_vm_create node-a l1 384 "fill=96 dirty=5 wss=64 diskkbps=256 diskws=32" data=64
guest_verify node-a l1

# 1. pre-copy with local disks
linux_migrate node-a node-b l1
linux_mig_figures node-a "$LINUX_MIG_ID" "l1 q35/uefi/virtio node-a -> node-b"
m=$(mig_json node-a "$LINUX_MIG_ID")
[ "$(echo "$m" | jq -r .disks)" = 2 ] || die "the migration did not copy both disks: $(echo "$m" | jq -c .)"
[ -f "$WORK/node-b/state/disks/l1/efivars.fd" ] || die "no variables file for l1 on node-b"
assert_no_migration_files node-a
assert_no_migration_files node-b

# 2. cancel half-way: the disks mirrored, RAM slowed down (the cap is on
# the migration stream), cancelled once 16 MiB of RAM went
id=$(ctl node-b -o json migrate l1 --node node-a --max-bandwidth 8 | jq -r .id)
mig_wait_field node-b "$id" ramTransferred $((16 << 20)) 300
ram=$(mig_json node-b "$id" | jq -r .ramTransferred)
ctl node-b migrate-cancel l1 || die "cancel refused"
mig_wait_phase node-b "$id" Failed 60
m=$(mig_json node-b "$id")
[ "$(echo "$m" | jq -r .abortStatus)" = Succeeded ] || die "abort status: $(echo "$m" | jq -c .)"
log "cancelled after $ram bytes of RAM, the disks mirrored"
[ "$(vm_json node-b l1 | jq -r .state)" = Running ] || die "l1 is not Running on node-b after the cancel"
guest_verify node-b l1
mig_wait_phase node-a "$id" Failed 60
[ "$(qemu_count)" = 1 ] || die "expected one QEMU after the cancel, found $(qemu_count)"
ctl node-a -o json get vmi | jq -e 'any(.[]; .name == "l1" and .node == "node-a")' >/dev/null &&
	die "node-a lists l1 after the cancel"
left=$(find "$WORK/node-a/state/disks" -mindepth 1 2>/dev/null)
[ -z "$left" ] || die "node-a kept disk files of the cancelled migration: $left"
assert_no_migration_files node-a
assert_no_migration_files node-b

# 3. post-copy at once
linux_migrate node-b node-a l1 --post-copy-now
grep -q "event=post_copy_started" "$WORK/node-b.log" || die "the post-copy hop never switched to post-copy"
linux_mig_figures node-b "$LINUX_MIG_ID" "l1 post-copy node-b -> node-a"
# The source QEMU is the one whose migration was cancelled with an 8 MiB/s
# cap; QEMU keeps migration parameters, and this hop has no cap: its
# post-copy phase must not crawl at the old one (it did: ~21 s, 1.4-2 s
# for a pre-copy hop).
ms=$(mig_json node-b "$LINUX_MIG_ID" | jq -r .totalMs)
[ "$ms" -lt 15000 ] || die "the post-copy hop took $ms ms: $(grep "mig=$LINUX_MIG_ID" "$WORK/node-b.log" |
	grep -E 'event=(state|post_copy_started|qemu_status)' | cut -c1-160)"

# 4. hops 3-6
for hop in 3 4 5 6; do
	if [ $((hop % 2)) = 1 ]; then src=node-a dst=node-b; else src=node-b dst=node-a; fi
	linux_migrate "$src" "$dst" l1
	log "hop $hop: $src -> $dst, $(mig_json "$src" "$LINUX_MIG_ID" | jq -r '"\(.totalMs) ms, pause \(.pauseMs) ms"')"
done
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
assert_no_migration_files node-a
assert_no_migration_files node-b
log PASS
