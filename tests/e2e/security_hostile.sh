#!/bin/bash
# Peer input is hostile input; QEMU is contained.
#  1. a VM spec naming a file outside allowed_paths is refused to a user
#     (ferryctl vm create), with the path and the rule;
#  2. QEMU runs as the unprivileged qemu.user;
#  3. a prepare naming such a path is refused by the target: node-b does
#     not allow the guest kernel's directory, so migrating a VM node-a runs
#     fails with node-b's reason and the guest keeps running on node-a;
#  4. a migration id that is not a UUID ("../") is refused by a peer op
#     (sent with tests/tools/peer-send, as a peer would) and writes nothing.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
PEER_SEND=$BUILD/tests/peer-send
[ -x "$PEER_SEND" ] || die "$PEER_SEND missing (build first)"
[ "$QEMU_USER" != root ] || { echo "SKIP: no user ferry-qemu (run scripts/setup.sh)"; exit 77; }

mkdir -p "$WORK/b-images"
agent_config node-a "$PORT_A" node-b "$PORT_B"
ALLOWED_PATHS="[$WORK/b-images]" agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b

log "1. a user's spec naming /etc/shadow is refused"
cat > "$WORK/evil.yaml" <<YAML
name: evil
memory_mib: 64
kernel: $GUEST_ELF
disks:
  - {name: root, path: /etc/shadow, format: raw}
YAML
out=$(ctl node-a vm create -f "$WORK/evil.yaml" 2>&1) && die "created a VM on /etc/shadow: $out"
echo "$out" | grep -q "/etc/shadow" || die "the refusal does not name the path: $out"
echo "$out" | grep -q "allowed_paths" || die "the refusal does not name the rule: $out"
ln -s /etc/shadow "$WORK/innocent.raw"
sed -i "s|/etc/shadow|$WORK/innocent.raw|" "$WORK/evil.yaml"
out=$(ctl node-a vm create -f "$WORK/evil.yaml" 2>&1) && die "a symlink to /etc/shadow passed: $out"
echo "$out" | grep -q "resolves to /etc/shadow" || die "the symlink was not resolved: $out"
pgrep -f "guest=evil" >/dev/null && die "a QEMU started for the refused spec"

log "1b. another VM's image ferry made (STATE/disks/victim/) is not this VM's"
install -m 0644 "$GUEST_ELF" "$WORK/b-images/ferry-guest.elf"
mkdir -p "$WORK/node-b/state/disks/victim"
truncate -s 16M "$WORK/node-b/state/disks/victim/root.raw"
cat > "$WORK/thief.yaml" <<YAML
name: thief
memory_mib: 64
kernel: $WORK/b-images/ferry-guest.elf
disks:
  - {name: root, path: $WORK/node-b/state/disks/victim/root.raw, format: raw, storage: shared}
YAML
out=$(ctl node-b vm create -f "$WORK/thief.yaml" 2>&1) && die "attached another VM's image: $out"
echo "$out" | grep -q "outside the directories VM files may be in" || die "the refusal is not the path rule: $out"
sed -i "s|, storage: shared||" "$WORK/thief.yaml"
out=$(ctl node-b vm create -f "$WORK/thief.yaml" 2>&1) && die "attached another VM's image as a local disk: $out"
echo "$out" | grep -q "outside the directories VM files may be in" || die "the refusal is not the path rule: $out"

log "2. QEMU runs as $QEMU_USER"
vm_create node-a g1 64 "fill=8 profile=random dirty=10 wss=4"
pid=$(cat "$WORK/node-a/state/vms/g1/qemu.pid")
user=$(ps -o user= -p "$pid" | tr -d ' ')
[ "$user" = "$QEMU_USER" ] || die "QEMU $pid runs as $user, not $QEMU_USER"
grep -q -- "-sandbox" "/proc/$pid/cmdline" || log "note: this QEMU has no seccomp sandbox"

log "3. node-b refuses a prepare whose kernel is outside its allowed_paths"
out=$(ctl node-a migrate g1 --node node-b --wait 2>&1) && die "migrated to a node that does not allow the kernel: $out"
echo "$out" | grep -q "outside the directories VM files may be in" || die "the reason is not node-b's path rule: $out"
echo "$out" | grep -q "$GUEST_ELF" || die "the reason does not name the kernel: $out"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not running on node-a"
[ -z "$(ls -A "$WORK/node-b/state/vms")" ] || die "node-b kept a run dir"
guest_hb node-a g1 >/dev/null || die "the guest stopped"

log "4. migration ids that are not UUIDs are refused"
spec=$(vm_json node-a g1 | jq -c '{name: "g2", memory_mib: 64}')
for op in prepare resume; do
	out=$("$PEER_SEND" "$WORK/cluster.key" node-a node-b 127.0.0.1 "$PORT_B" control \
		"{\"op\":\"$op\",\"mig\":\"../../../escape\",\"spec\":$spec}") || die "peer-send failed"
	echo "$out" | grep -q "must be a UUID" || die "$op with a ../ id was not refused: $out"
done
out=$("$PEER_SEND" "$WORK/cluster.key" node-a node-b 127.0.0.1 "$PORT_B" open \
	'{"mig":"../x","kind":"main","channel":0,"stream":1}') || die "peer-send failed"
echo "$out" | grep -q "must be a UUID" || die "open with a ../ id was not refused: $out"
find "$WORK" -name 'escape*' | grep -q . && die "a file named by the id was written"
grep -q "event=bad_migration_id" "$WORK/node-b.log" || die "no bad_migration_id line on node-b"
log "PASS"
