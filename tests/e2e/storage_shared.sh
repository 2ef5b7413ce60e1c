#!/bin/bash
# Shared disks are not copied. A VM whose only disk is on "shared storage"
# (a path both nodes see) migrates with no NBD stream and the guest's
# writes to that disk verify on the target. Before that, with the path
# missing on the target (node-b runs in a mount namespace where the
# directory is an empty tmpfs), the migration is refused before the target
# starts anything and the guest keeps running on the source.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v unshare >/dev/null || { echo "SKIP: unshare not installed"; exit 77; }
mkdir -p "$WORK/shared"
unshare --mount --propagation private true 2>/dev/null || { echo "SKIP: no mount namespaces"; exit 77; }
cat > "$WORK/hide-shared.sh" <<SH
#!/bin/bash
mount -t tmpfs none "$WORK/shared" && exec "\$@"
SH
chmod +x "$WORK/hide-shared.sh"

agent_config node-a "$PORT_A" node-b "$PORT_B"
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
AGENT_WRAP="unshare --mount --propagation private $WORK/hide-shared.sh" agent_start node-b

truncate -s 256M "$WORK/shared/data.raw"
vm_create node-a sh1 128 "fill=32 profile=mix disk=2 diskws=32" \
	"machine: pc
disks:
  - {name: data, path: $WORK/shared/data.raw, format: raw, storage: shared, bus: ide}"

log "1. the shared path is missing on node-b"
out=$(ctl node-a migrate sh1 --node node-b --wait 2>&1) && die "migrated without the shared disk: $out"
echo "$out"
echo "$out" | grep -q "shared disk data: $WORK/shared/data.raw is not accessible on this node" ||
	die "the reason does not name the missing shared disk"
[ "$(vm_json node-a sh1 | jq -r .state)" = Running ] || die "sh1 is not Running on node-a"
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
grep -q "event=qemu_started vm=sh1" "$WORK/node-b.log" && die "node-b started a QEMU"
guest_verify node-a sh1

log "2. node-b sees the shared storage"
agent_kill node-b TERM
agent_start node-b
out=$(ctl node-a migrate sh1 --node node-b --wait) || die "migration failed: $out"
echo "$out"
[ "$(vm_json node-a sh1 | jq -r '.migrationState.disks // 0')" = 0 ] || die "a disk was copied"
grep -q "kind=nbd" "$WORK/node-a.log" "$WORK/node-b.log" && die "NBD traffic for a shared disk"
[ "$(vm_json node-b sh1 | jq -r '.disks[0].path')" = "$WORK/shared/data.raw" ] || die "the disk moved"
[ ! -e "$WORK/node-b/state/disks" ] || [ -z "$(ls -A "$WORK/node-b/state/disks")" ] || die "node-b made an image"
guest_verify node-b sh1
log PASS
