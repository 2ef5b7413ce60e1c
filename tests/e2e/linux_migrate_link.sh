#!/bin/bash
# e2e: ferry's Linux test guest (docs/guest.md, "The Linux guest") over a
# 1 Gbit/s link (the agents in a network namespace whose loopback a tbf
# qdisc shapes), two machine types:
#
#   l2: q35, UEFI, 2 vCPUs, booting from its virtio disk, a virtio data
#       disk; migrated node-a -> node-b with its local disks;
#   p1: pc, BIOS, 1 vCPU, the kernel and initrd booted directly, an IDE
#       data disk (the old machine type stays covered); migrated node-a ->
#       node-b with its disk.
#
# Each verifies on node-b, its heartbeat going on; the figures of both
# hops and both boots are logged (FIGURES).
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
. "$(dirname "$0")/linux_lib.sh"
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || { echo "SKIP: ovmf not installed"; exit 77; }
linux_guest_init
cluster_netns 1gbit
two_agents

linux_vm_create node-a l2 384 "fill=96 dirty=5 wss=64 diskkbps=256 diskws=32" data=64
linux_migrate node-a node-b l2
linux_mig_figures node-a "$LINUX_MIG_ID" "l2 q35/uefi/virtio over 1 Gbit/s"
[ "$(mig_json node-a "$LINUX_MIG_ID" | jq -r .disks)" = 2 ] || die "l2: not both disks copied"
ctl node-b vm stop l2 >/dev/null || die "stop l2 failed"

linux_vm_create node-a p1 384 "fill=96 dirty=5 wss=64 diskkbps=256 diskws=32" \
	machine=pc firmware=bios vcpus=1 data=64
guest_verify node-a p1
linux_migrate node-a node-b p1
linux_mig_figures node-a "$LINUX_MIG_ID" "p1 pc/bios/ide over 1 Gbit/s"
[ "$(mig_json node-a "$LINUX_MIG_ID" | jq -r .disks)" = 1 ] || die "p1: its IDE disk was not copied"
assert_no_migration_files node-a
assert_no_migration_files node-b
log PASS
