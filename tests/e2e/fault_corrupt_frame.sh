#!/bin/bash
# One bit flipped on the wire between the agents: the receiver's
# authentication of the sealed frame catches it, the migration fails naming
# the bad frame, the guest keeps running on the source and verifies, the
# target is cleaned up. The bytes the corrupter saw before the flip (a
# passive eavesdropper's capture) hold none of the guest's text phrases.
# The control run first: the same migration between two agents with
# insecure_transport (frames unsealed, CRC32C) shows the phrases in its
# capture, so the sealed run's check can fail. Both runs are uncompressed,
# so the pages cross as they are in memory.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

PHRASES=("the guest keeps running" "while the copy goes on" "if it does not converge")
# corrupter LISTEN TARGET CAPTURE: forwards LISTEN -> TARGET, flips a bit
# after 8 MiB, records what it forwarded before.
corrupter() {
	"$BUILD/tests/link-corrupter" "$1" "$2" $((8 << 20)) "$3" > "$3.out" 2> "$3.log" &
	AGENT_PIDS="$AGENT_PIDS $!"
	for i in $(seq 1 100); do grep -q ready "$3.out" && break; sleep 0.05; done
}
phrase_in() { # FILE: 0 when a guest phrase is in it
	local p
	for p in "${PHRASES[@]}"; do grep -aqF "$p" "$1" && return 0; done
	return 1
}

# Control: unsealed frames (node-c -> node-d through a corrupter).
port_alloc PORT_C
port_alloc PORT_D
port_alloc PORT_Y
agent_config node-c "$PORT_C" node-d "$PORT_Y"
agent_config node-d "$PORT_D" node-c "$PORT_C"
echo "insecure_transport: true" >> "$WORK/node-c.yaml"
echo "insecure_transport: true" >> "$WORK/node-d.yaml"
corrupter "$PORT_Y" "$PORT_D" "$WORK/clear.bin"
agent_start node-c
agent_start node-d
vm_create node-c g0 256 "fill=160 profile=mix dirty=10 wss=64"
out=$(ctl node-c migrate g0 --node node-d --wait --no-compress) && die "migration through a corrupting link succeeded (clear)"
grep -q "bad frame" "$WORK/node-d.log" || die "target did not report a bad frame (clear, CRC)"
phrase_in "$WORK/clear.bin" || die "the control capture holds none of the guest's phrases: the check below could not fail"
guest_verify node-c g0

# Sealed: node-a reaches node-b through the corrupter.
port_alloc PORT_X
agent_config node-a "$PORT_A" node-b "$PORT_X"
agent_config node-b "$PORT_B" node-a "$PORT_A"
corrupter "$PORT_X" "$PORT_B" "$WORK/capture.bin"
agent_start node-a
agent_start node-b

vm_create node-a g1 256 "fill=160 profile=mix dirty=10 wss=64"
out=$(ctl node-a migrate g1 --node node-b --wait --no-compress) && die "migration through a corrupting link succeeded"
echo "$out"
grep -q flipped "$WORK/capture.bin.log" || die "the corrupter never flipped a bit"
[ "$(stat -c %s "$WORK/capture.bin")" -ge $((4 << 20)) ] || die "the capture is too small to mean anything"
! phrase_in "$WORK/capture.bin" || die "guest memory crossed the link in clear"
grep -q "bad frame" "$WORK/node-b.log" || die "target did not report a bad frame"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
id=$(vm_json node-a g1 | jq -r .lastMigration)
mig_wait_phase node-b "$id" Failed 30
[ ! -e "$WORK/node-b/state/vms/g1" ] || die "target run dir left behind"
[ "$(qemu_count)" = 2 ] || die "expected two QEMUs (g0, g1 on their sources), found $(qemu_count)"
log PASS
