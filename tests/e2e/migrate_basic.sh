#!/bin/bash
# A running guest migrates node-a -> node-b through ferryd and ferryctl: the
# guest's verify passes on the target, its heartbeat keeps counting, the
# source QEMU is gone, and no migration files are left on either side.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=160 profile=mix dirty=20 wss=96"
hb_before=$(guest_hb node-a g1)
out=$(ctl node-a migrate g1 --node node-b --wait) || die "migration failed: $out"
echo "$out"

[ "$(vm_json node-b g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-b"
# A VM that left keeps no row on its source; its history says where it went.
ctl node-a -o json get vmi | jq -e 'any(.[]; .name == "g1" and .node == "node-a")' >/dev/null && die "node-a still lists g1"
[ "$(vm_json node-a g1 | jq -r .node)" = node-b ] || die "node-a's history does not say g1 left for node-b"
[ "$(vm_json node-a g1 | jq -r .migrationState.completed)" = true ] || die "migration state not completed"
[ "$(qemu_count)" = 1 ] || die "expected exactly one QEMU, found $(qemu_count)"
guest_verify node-b g1
hb_after=$(guest_hb node-b g1)
[ "$hb_after" -gt "$hb_before" ] || die "heartbeat did not continue ($hb_before -> $hb_after)"
pause=$(vm_json node-a g1 | jq -r .migrationState.pauseMs)
[ "$pause" -ge 0 ] || die "no true pause measured"
# The describe block people read.
ctl node-a describe vmi g1 | grep -q "Target Node:  *node-b" || die "describe lacks the target node"
assert_no_migration_files node-a
assert_no_migration_files node-b
log "PASS (pause ${pause} ms)"
