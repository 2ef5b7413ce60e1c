#!/bin/bash
# A target agent with a different cluster key: the handshake refuses it with
# a logged reason, nothing starts on the target, the guest stays.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

head -c 48 /dev/urandom | base64 -w0 > "$WORK/other.key"
chmod 600 "$WORK/other.key"
agent_config node-a "$PORT_A" node-b "$PORT_B"
agent_config node-b "$PORT_B" node-a "$PORT_A" "$WORK/other.key"
agent_start node-a
agent_start node-b

# node-b cannot be asked whether it has a g1: a create is refused, naming
# it, unless the operator forces it.
cat > "$WORK/probe.yaml" <<YAML
name: g1
memory_mib: 64
kernel: $GUEST_ELF
YAML
out=$(ctl node-a vm create -f "$WORK/probe.yaml" 2>&1) && die "create with an unreachable peer succeeded"
echo "$out" | grep -q "cannot tell whether VM g1 exists elsewhere: unreachable: node-b" ||
	die "the refusal does not name node-b: $out"
VM_CREATE_FLAGS=--force vm_create node-a g1 128 "fill=32 profile=text dirty=5 wss=16"
out=$(ctl node-a migrate g1 --node node-b --wait 2>&1) && die "migration to an agent with the wrong key succeeded"
echo "$out"
echo "$out" | grep -qi "authentication" || die "failure does not name authentication: $out"
grep -q "auth_refused" "$WORK/node-b.log" || die "target did not log the refusal"
[ -z "$(ls "$WORK/node-b/state/vms" 2>/dev/null)" ] || die "something started on node-b"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
log PASS
