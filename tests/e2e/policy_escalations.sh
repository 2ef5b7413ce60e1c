#!/bin/bash
# The same non-converging migration (QEMU's bandwidth capped at 16 MiB/s,
# the guest dirtying 60 MB/s over 16 MiB) finishes once an escalation is
# allowed: auto-converge (QEMU throttles the vCPU), and post-copy (switched
# to after 2 s without progress). The guest verifies on the target each
# time; the policy steps are in the migration record.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

agent_config node-a "$PORT_A" node-b "$PORT_B"
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b

vm_create node-a g1 256 "fill=96 profile=random dirty=60 wss=16"

# Without an escalation it does not converge: the progress timeout fires.
out=$(ctl node-a migrate g1 --node node-b --wait --max-bandwidth 16 --progress-timeout 4) &&
	die "the scenario converged without help: $out"
echo "$out" | grep -q "no progress" || die "expected a progress timeout: $out"
guest_verify node-a g1

out=$(ctl node-a migrate g1 --node node-b --wait --max-bandwidth 16 --progress-timeout 60 \
	--post-copy --escalate-after 2) || die "post-copy migration failed: $out"
echo "$out"
echo "$out" | grep -q "mode:        post-copy" || die "post-copy was not used"
guest_verify node-b g1
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"

out=$(ctl node-b migrate g1 --node node-a --wait --max-bandwidth 16 --progress-timeout 60 \
	--auto-converge) || die "auto-converge migration failed: $out"
echo "$out"
echo "$out" | grep -q "mode:        pre-copy" || die "auto-converge run left pre-copy"
guest_verify node-a g1
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
