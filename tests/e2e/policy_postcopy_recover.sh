#!/bin/bash
# The link is cut during post-copy (the TCP proxy between the agents is
# killed) and restored: both QEMUs pause, the agents bring the link back
# (resume on a new control link, migrate-recover on the target, migrate
# resume=true on the source) and the migration completes. Nothing was
# stopped in between, a cancel is refused while post-copy runs, and the
# guest verifies on the target.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

port_alloc PORT_X
proxy_start() {
	"$BUILD/tests/link-corrupter" "$PORT_X" "$PORT_B" 4611686018427387904 > "$WORK/proxy.out" 2>>"$WORK/proxy.log" &
	PROXY=$!
	AGENT_PIDS="$AGENT_PIDS $PROXY"
	for i in $(seq 1 100); do grep -q ready "$WORK/proxy.out" && return 0; sleep 0.05; done
	die "proxy did not start"
}
mode_is() { [ "$(mig_json node-a "$id" | jq -r .mode)" = "$1" ]; }
wait_mode() {
	for i in $(seq 1 600); do mode_is "$1" && return 0; sleep 0.1; done
	die "never reached mode $1 (now $(mig_json node-a "$id" | jq -r .mode))"
}

proxy_start
agent_config node-a "$PORT_A" node-b "$PORT_X"
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b

vm_create node-a g1 256 "fill=64 profile=random dirty=100 wss=64"
id=$(ctl node-a -o json migrate g1 --node node-b --post-copy --escalate-after 1 \
	--max-bandwidth 16 --progress-timeout 120 | jq -r .id)
wait_mode post-copy
# Cut once pages are flowing in post-copy proper, not during the hand-over
# of the device state (a break there fails the migration outright in QEMU).
at=$(mig_json node-a "$id" | jq -r .rawBytes)
mig_wait_bytes node-a "$id" $((at + (8 << 20))) 60
kill -KILL "$PROXY"
log "link cut during post-copy"
wait_mode post-copy-recovering
ctl node-a migrate-cancel g1 2>"$WORK/cancel.err" && die "cancel accepted during post-copy"
grep -q "past the switchover" "$WORK/cancel.err" || die "cancel refusal does not say why: $(cat "$WORK/cancel.err")"
sleep 2 # the outage itself: the link stays down for a while
proxy_start
log "link restored"
mig_wait_phase node-a "$id" Succeeded 180
m=$(mig_json node-a "$id")
echo "$m" | jq -c '{phase, mode, postcopyRecoveries, totalMs, pauseMs}'
[ "$(echo "$m" | jq -r .postcopyRecoveries)" -ge 1 ] || die "no recovery recorded"
[ "$(vm_json node-b g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-b"
guest_verify node-b g1
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
