#!/bin/bash
# ferryctl pointed at one node works on VMs of any node. Three agents; g1
# lives on node-b; from node-a: describe, candidates, migrate it (to node-c,
# arriving paused), resume it, stop it; a stopped VM says it is stopped; a
# VM with a CD-ROM with media has no eligible node (the blocker as the
# reason); `nodes` is a table, and names a killed agent unreachable with
# why.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
three_agents

vm_create node-b g1 64 "fill=16 profile=text dirty=1 wss=4"
ctl node-a describe vmi g1 | tee "$WORK/d.txt" || die "describe from node-a failed"
grep -q "^Node: *node-b" "$WORK/d.txt" || die "describe from node-a does not say node-b"
[ "$(ctl node-a -o json candidates g1 | jq -r '[.[].name] | sort | join(",")')" = node-a,node-c ] ||
	die "candidates from node-a are not node-b's peers: $(ctl node-a -o json candidates g1)"
ctl node-a migrate g1 --node node-c --paused --wait || die "migrate from node-a failed"
[ "$(vm_json node-c g1 | jq -r .state)" = Paused ] || die "g1 is not Paused on node-c"
ctl node-a vm resume g1 || die "resume from node-a failed"
[ "$(vm_json node-c g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-c"
guest_verify node-c g1
ctl node-a vm stop g1 || die "stop from node-a failed"
out=$(ctl node-a vm stop g1 2>&1) && die "a stopped VM was stopped again: $out"
echo "$out" | grep -q "VM g1 is stopped" || die "stop of a stopped VM: $out"
out=$(ctl node-c migrate g1 --node node-a 2>&1) && die "a stopped VM migrated: $out"
echo "$out" | grep -q "VM g1 is stopped" || die "migrate of a stopped VM: $out"
ctl node-a describe vmi g1 | tee "$WORK/d.txt"
grep -q "Reason:   the VM is stopped" "$WORK/d.txt" || die "a stopped VM shows no reason"
out=$(ctl node-a describe vmi nosuch 2>&1) && die "describe of no VM succeeded"
echo "$out" | grep -q "no VM named nosuch on any node; nodes asked: node-a, node-b, node-c" ||
	die "the not-found answer does not say who was asked: $out"

# A CD-ROM with media: no node is eligible, each says why.
head -c 4096 /dev/zero > "$WORK/tools.iso"
cat > "$WORK/cd.yaml" <<YAML
name: withcd
memory_mib: 64
serial: true
kernel: $GUEST_ELF
append: "fill=8 profile=text"
disks:
  - {name: tools, path: $WORK/tools.iso, type: cdrom}
YAML
ctl node-b vm create -f "$WORK/cd.yaml" || die "vm create failed"
j=$(ctl node-a -o json candidates withcd) || die "candidates of withcd from node-a failed"
echo "$j"
[ "$(echo "$j" | jq length)" = 2 ] || die "not every peer of node-b judged"
[ "$(echo "$j" | jq '[.[] | select(.eligible)] | length')" = 0 ] || die "a node is eligible for withcd"
[ "$(echo "$j" | jq '[.[] | select(.reason | test("CD-ROM tools has media"))] | length')" = 2 ] ||
	die "the blocker is not the reason"

# nodes: a table by default; a killed agent is unreachable, with why.
ctl node-a nodes | tee "$WORK/n.txt"
head -1 "$WORK/n.txt" | grep -q "NAME .*ADDRESS .*REACHABLE .*CORDONED .*VMS" || die "nodes is not a table"
grep -q "^node-b .*127.0.0.1:$PORT_B .*yes .*no .*1 " "$WORK/n.txt" || die "node-b's row is wrong"
agent_kill node-c
ctl node-a nodes | tee "$WORK/n.txt"
grep -q "^node-c .*127.0.0.1:$PORT_C .*no " "$WORK/n.txt" || die "node-c is not shown unreachable"
grep -q "node-c: node node-c is unreachable" "$WORK/n.txt" || die "no reason for node-c"
[ "$(ctl node-a -o json nodes | jq -r '.[] | select(.name == "node-c") | .reachable')" = false ] ||
	die "-o json does not say node-c is unreachable"
log PASS
