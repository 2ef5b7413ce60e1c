#!/bin/bash
# One VM name, one VM in the cluster. Three agents: a name node-b holds is
# refused on node-a and node-c with node-b named; with node-b down a create
# is refused naming it, unless forced; the conflict the forced create makes
# is shown by every node (both entries, each naming the other node), a
# plain call about the name says so, and a migration that would bring the
# name to a third node is refused by that node, naming the holder.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
three_agents

spec() { # NAME: a small VM spec (no need to wait for its guest)
	cat > "$WORK/$1.yaml" <<YAML
name: $1
memory_mib: 64
serial: true
kernel: $GUEST_ELF
append: "fill=8 profile=text"
YAML
}

spec g1
ctl node-b vm create -f "$WORK/g1.yaml" || die "vm create on node-b failed"
for n in node-a node-c; do
	out=$(ctl $n vm create -f "$WORK/g1.yaml" 2>&1) && die "$n created a second g1: $out"
	echo "$n: $out"
	echo "$out" | grep -q "VM g1 already exists on node node-b" || die "$n did not name node-b: $out"
	[ "$(ctl $n -o json get vmi | jq '[.[] | select(.name == "g1")] | length')" = 1 ] ||
		die "the refused create left a g1 on $n"
done

# node-b's agent goes (its QEMU stays): nobody can tell whether g1 exists.
agent_kill node-b
out=$(ctl node-a vm create -f "$WORK/g1.yaml" 2>&1) && die "created g1 while node-b could not be asked: $out"
echo "node-a: $out"
echo "$out" | grep -q "unreachable: node-b" || die "the refusal does not name node-b: $out"
ctl node-a vm create --force -f "$WORK/g1.yaml" || die "a forced create was refused"
agent_start node-b

# Now g1 runs on node-a and node-b: every view shows both, never one.
for n in node-a node-b node-c; do
	j=$(ctl $n -o json vm list)
	[ "$(echo "$j" | jq '[.[] | select(.name == "g1" and .conflict == true)] | length')" = 2 ] ||
		die "$n does not show both g1 as a conflict: $j"
	[ "$(echo "$j" | jq -r '.[] | select(.name == "g1" and .node == "node-a") | .conflictWith[0]')" = node-b ] ||
		die "$n: node-a's g1 does not name node-b: $j"
done
ctl node-c vm list | tee "$WORK/list.txt"
grep -q "g1 .*node-a .*also on node-b" "$WORK/list.txt" || die "vm list does not mark node-a's g1"
grep -q "g1 .*node-b .*also on node-a" "$WORK/list.txt" || die "vm list does not mark node-b's g1"
out=$(ctl node-c describe vmi g1 2>&1) && die "describe on node-c picked one of two g1: $out"
echo "$out" | grep -q "a name conflict" || die "describe does not say conflict: $out"

# node-c may not take g1 from node-a: node-b holds one.
out=$(ctl node-a migrate g1 --node node-c --wait 2>&1) && die "g1 migrated onto node-c: $out"
echo "$out"
echo "$out" | grep -q "VM g1 already exists on node node-b" || die "the refusal does not name node-b: $out"
[ "$(ctl node-a -o json describe vmi g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
grep -q 'event=prepare_refused.*vm="g1"' "$WORK/node-c.log" || die "node-c did not log the refusal"
log PASS
