#!/bin/bash
# Post-copy page requests through ferry against a direct TCP socket between
# the two QEMUs, both over the same shaped link (a network namespace whose
# loopback is a 100 Mbit/s tbf: on an unshaped loopback the guest converges
# before post-copy matters): same guest (dirtying faster than it can converge, so
# post-copy has pages to fetch), post-copy started after the first pass.
# QEMU counts the target's page requests (source ram.postcopy-requests) and
# the time its vCPU waited for them (target postcopy-blocktime); their ratio
# is the mean cost of one page request to the guest.
#   scripts/postcopy-latency.sh [RUNS=3]
set -u
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/tests/e2e/cluster_lib.sh"
cluster_init "$HERE/build"
cluster_netns "${LINK:-100mbit}"
QMP=$BUILD/qmp/ferry-qmp
PORT_N=$((PORT_B > 60000 ? PORT_B - 5000 : PORT_B + 5000)) # direct target, clear of the agents
APPEND="fill=64 profile=random dirty=100 wss=64"

direct() {
	local n pids="" st c
	for n in src dst; do
		extra=""
		[ $n = dst ] && extra="-incoming defer"
		ip netns exec "$NETNS" qemu-system-x86_64 -accel tcg -machine pc -m 256 -nodefaults -display none \
			-kernel "$GUEST_ELF" -append "$APPEND" \
			-chardev socket,id=s,path="$WORK/d-$n.ser",server=on,wait=off -serial chardev:s \
			-chardev socket,id=q,path="$WORK/d-$n.qmp",server=on,wait=off -mon chardev=q,mode=control \
			$extra > "$WORK/d-$n.log" 2>&1 &
		pids="$pids $!"
	done
	for i in $(seq 1 200); do [ -S "$WORK/d-src.ser" ] && [ -S "$WORK/d-dst.qmp" ] && break; sleep 0.05; done
	"$GUEST_SERIAL" --socket "$WORK/d-src.ser" --timeout 120 --expect "FERRY-GUEST READY" --expect-any "HB " >/dev/null
	"$QMP" --socket "$WORK/d-src.qmp" execute migrate-set-capabilities \
		'{"capabilities":[{"capability":"postcopy-ram","state":true}]}' >/dev/null
	"$QMP" --socket "$WORK/d-dst.qmp" execute migrate-set-capabilities \
		'{"capabilities":[{"capability":"postcopy-ram","state":true},{"capability":"postcopy-blocktime","state":true}]}' >/dev/null
	"$QMP" --socket "$WORK/d-src.qmp" execute migrate-set-parameters '{"max-bandwidth":1099511627776}' >/dev/null
	"$QMP" --socket "$WORK/d-dst.qmp" execute migrate-incoming "{\"uri\":\"tcp:127.0.0.1:$PORT_N\"}" >/dev/null
	"$QMP" --socket "$WORK/d-src.qmp" execute migrate "{\"uri\":\"tcp:127.0.0.1:$PORT_N\"}" >/dev/null
	for i in $(seq 1 600); do
		c=$("$QMP" --socket "$WORK/d-src.qmp" execute query-migrate | jq '.ram."dirty-sync-count" // 0')
		[ "$c" -ge 2 ] && break
		sleep 0.05
	done
	"$QMP" --socket "$WORK/d-src.qmp" execute migrate-start-postcopy >/dev/null
	for i in $(seq 1 600); do
		st=$("$QMP" --socket "$WORK/d-src.qmp" execute query-migrate)
		[ "$(echo "$st" | jq -r .status)" = completed ] && break
		sleep 0.1
	done
	req=$(echo "$st" | jq '.ram."postcopy-requests"')
	bt=$("$QMP" --socket "$WORK/d-dst.qmp" execute query-migrate | jq '."postcopy-blocktime" // 0')
	"$GUEST_SERIAL" --socket "$WORK/d-dst.ser" --timeout 60 --send verify --expect "VERIFY OK" --fail "VERIFY FAIL" >/dev/null || req="verify-failed"
	for p in $pids; do kill $p 2>/dev/null; done
	wait $pids 2>/dev/null
	rm -f "$WORK"/d-*
	echo "requests=$req blocktime_ms=$bt mean_us=$(( req > 0 ? bt * 1000 / req : 0 ))"
}

through_ferry() {
	local name=p$1 m req bt
	vm_create node-a "$name" 256 "$APPEND" >/dev/null
	ctl node-a migrate "$name" --node node-b --wait --post-copy --escalate-after 1 >/dev/null || { echo failed; return; }
	m=$(ctl node-a -o json get vmim | jq ".[] | select(.vm == \"$name\")")
	req=$(echo "$m" | jq .postcopyRequests)
	bt=$(echo "$m" | jq .postcopyBlocktimeMs)
	guest_verify node-b "$name" >/dev/null
	ctl node-b vm delete "$name" >/dev/null
	echo "requests=$req blocktime_ms=$bt mean_us=$(( req > 0 ? bt * 1000 / req : 0 ))"
}

two_agents
for r in $(seq 1 "$RUNS"); do
	echo "run $r direct-socket: $(direct)"
	echo "run $r ferry:         $(through_ferry "$r")"
done
