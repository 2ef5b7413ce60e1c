#!/bin/bash
# A VM the seeds say may not live-migrate (a CD-ROM with media) is refused
# before anything starts, with the reason; describe shows LiveMigratable
# False and why; nothing appears on the target; the guest keeps running.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
two_agents

head -c 4096 /dev/zero > "$WORK/tools.iso"
cat > "$WORK/cd.yaml" <<YAML
name: withcd
memory_mib: 128
serial: true
kernel: $GUEST_ELF
append: "fill=16 profile=text"
disks:
  - {name: tools, path: $WORK/tools.iso, type: cdrom}
YAML
ctl node-a vm create -f "$WORK/cd.yaml" || die "vm create failed"
out=$(ctl node-a migrate withcd --node node-b --wait 2>&1) && die "a VM with CD-ROM media migrated: $out"
echo "$out"
echo "$out" | grep -q "CD-ROM tools has media: eject it before live migration" || die "reason missing"
ctl node-a describe vmi withcd | tee "$WORK/d.txt"
grep -q "Status:   False" "$WORK/d.txt" || die "LiveMigratable is not False"
grep -q "Reason:   CD-ROM tools has media" "$WORK/d.txt" || die "describe lacks the reason"
[ -z "$(ls "$WORK/node-b/state/vms" 2>/dev/null)" ] || die "something started on node-b"
[ "$(ctl node-b -o json get vmim | jq length)" = 0 ] || die "node-b heard of a migration"
[ "$(vm_json node-a withcd | jq -r .state)" = Running ] || die "the VM is not Running"
log PASS
