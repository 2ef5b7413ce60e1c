#!/bin/bash
# One bit flipped on the wire between the agents: the receiver's
# authentication of the sealed frame catches it, the migration fails naming
# the bad frame, the guest keeps running on the source and verifies, the
# target is cleaned up. The bytes the corrupter saw before the flip (a
# passive eavesdropper's capture) hold none of the guest's text phrases.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

port_alloc PORT_X
# node-a reaches node-b through the corrupter.
agent_config node-a "$PORT_A" node-b "$PORT_X"
agent_config node-b "$PORT_B" node-a "$PORT_A"
"$BUILD/tests/link-corrupter" "$PORT_X" "$PORT_B" $((8 << 20)) "$WORK/capture.bin" \
	> "$WORK/corrupter.out" 2> "$WORK/corrupter.log" &
CORRUPTER=$!
AGENT_PIDS="$AGENT_PIDS $CORRUPTER"
for i in $(seq 1 100); do grep -q ready "$WORK/corrupter.out" && break; sleep 0.05; done
agent_start node-a
agent_start node-b

# Half text pages: their phrases (guest/content.c) would show in a clear capture.
vm_create node-a g1 256 "fill=160 profile=mix dirty=10 wss=64"
out=$(ctl node-a migrate g1 --node node-b --wait) && die "migration through a corrupting link succeeded"
echo "$out"
grep -q flipped "$WORK/corrupter.log" || die "the corrupter never flipped a bit"
[ "$(stat -c %s "$WORK/capture.bin")" -ge $((4 << 20)) ] || die "the capture is too small to mean anything"
for phrase in "the guest keeps running" "while the copy goes on" "if it does not converge"; do
	! grep -aqF "$phrase" "$WORK/capture.bin" || die "guest memory crossed the link in clear: \"$phrase\""
done
grep -q "bad frame" "$WORK/node-b.log" || die "target did not report a bad frame"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
id=$(vm_json node-a g1 | jq -r .lastMigration)
mig_wait_phase node-b "$id" Failed 30
[ ! -e "$WORK/node-b/state/vms/g1" ] || die "target run dir left behind"
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
