#!/bin/bash
# The KubeVirt-style control path with three nodes: candidates explain who
# may take a VM; the KubeVirt VirtualMachineInstanceMigration manifest,
# created as written, migrates to the automatically selected node (the
# only one matching the VM's node selector); deleting a manifest cancels
# its migration and the guest stays on its node.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

port_alloc PORT_C
node_cfg() { # NODE PORT ZONE PEERS...
	local node=$1 port=$2 zone=$3
	shift 3
	mkdir -p "$WORK/$node"
	{
		echo "node: $node"
		echo "listen: 127.0.0.1:$port"
		echo "api_socket: $WORK/$node/api.sock"
		echo "state_dir: $WORK/$node/state"
		echo "cluster_key: $WORK/cluster.key"
		echo "labels: {zone: $zone}"
		echo "qemu: {binary: qemu-system-x86_64, accel: tcg, user: $QEMU_USER}"
		echo "allowed_paths: [$WORK, $BUILD/guest]"
		echo "migration: {max_bandwidth_mibps: 32}"
		echo "peers:"
		while [ $# -gt 0 ]; do echo "  - {name: $1, address: 127.0.0.1:$2}"; shift 2; done
	} > "$WORK/$node.yaml"
}
node_cfg node-a "$PORT_A" a node-b "$PORT_B" node-c "$PORT_C"
node_cfg node-b "$PORT_B" b node-a "$PORT_A"
node_cfg node-c "$PORT_C" c node-a "$PORT_A"
agent_start node-a
agent_start node-b
agent_start node-c

cat > "$WORK/g1.yaml" <<YAML
name: g1
memory_mib: 128
serial: true
kernel: $GUEST_ELF
append: "fill=32 profile=text dirty=5 wss=16"
node_selector: {zone: c}
YAML
ctl node-a vm create -f "$WORK/g1.yaml" || die "vm create failed"
serial=$(vm_json node-a g1 | jq -r .serialSocket)
"$GUEST_SERIAL" --socket "$serial" --timeout 60 --expect "FERRY-GUEST READY" --expect-any "HB " >/dev/null
ctl node-a candidates g1 | tee "$WORK/cand.txt"
grep -q "^node-b .*no .*node selector zone=c not matched" "$WORK/cand.txt" || die "node-b should be ineligible"
grep -q "^node-c .*yes" "$WORK/cand.txt" || die "node-c should be eligible"

out=$(ctl node-a migrate g1 --node node-b 2>&1) && die "migrated to an ineligible node"
echo "$out" | grep -q "node node-b cannot take VM g1: node selector zone=c not matched" || die "refusal: $out"

cat > "$WORK/mig-1.yaml" <<'YAML'
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata:
  name: mig-1
spec:
  vmiName: g1
YAML
ctl node-a create -f "$WORK/mig-1.yaml" || die "create vmim failed"
for i in $(seq 1 600); do
	phase=$(ctl node-a -o json get vmim | jq -r '.[] | select(.name == "mig-1") | .phase')
	[ "$phase" = Succeeded ] || [ "$phase" = Failed ] && break
	sleep 0.1
done
[ "$phase" = Succeeded ] || die "mig-1 ended $phase"
[ "$(ctl node-a -o json get vmim | jq -r '.[] | select(.name == "mig-1") | .targetNode')" = node-c ] ||
	die "mig-1 did not go to node-c"
guest_verify node-c g1

# Deleting a manifest cancels its migration.
vm_create node-a g2 256 "fill=160 profile=random dirty=5 wss=32"
sed 's/mig-1/mig-2/; s/vmiName: g1/vmiName: g2/' "$WORK/mig-1.yaml" > "$WORK/mig-2.yaml"
ctl node-a create -f "$WORK/mig-2.yaml" || die "create mig-2 failed"
id2=$(ctl node-a -o json get vmim | jq -r '.[] | select(.name == "mig-2") | .id')
mig_wait_bytes node-a "$id2" $((8 << 20)) 60
ctl node-a delete vmim mig-2 || die "delete vmim failed"
mig_wait_phase node-a "$id2" Failed 60
[ "$(mig_json node-a "$id2" | jq -r .abortStatus)" = Succeeded ] || die "abort status not Succeeded"
[ "$(vm_json node-a g2 | jq -r .state)" = Running ] || die "g2 is not Running on node-a"
guest_verify node-a g2
log PASS
