#!/bin/bash
# At which guest dirty rate does pre-copy stop converging on a shaped link?
# For each rate: QEMU's own migration over TCP (both QEMUs in the namespace)
# and ferry (both agents in the namespace), same guest, same 300 ms downtime
# limit. A run that has not completed within LIMIT seconds does not
# converge. Prints one line per run.
#   scripts/converge-sweep.sh [RATE=1gbit] [LIMIT=40] [DIRTY MB/s list...]
set -u
RATE=${1:-1gbit}
LIMIT=${2:-40}
shift 2 2>/dev/null
DIRTIES=${*:-"60 90 120 150"}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/tests/e2e/cluster_lib.sh"
cluster_init "$HERE/build"
cluster_netns "$RATE"
QMP=$BUILD/qmp/ferry-qmp
MEM=1024
PORT_N=$((PORT_B > 60000 ? PORT_B - 5000 : PORT_B + 5000)) # native target, clear of the agents
FILL="fill=768 profile=mix mix=0,50,50 wss=256"

native() { # DIRTY -> "converged TOTAL_MS" or "no"
	local d=$1 n pids="" st status
	for n in src dst; do
		extra=""
		[ $n = dst ] && extra="-incoming tcp:127.0.0.1:$PORT_N"
		ip netns exec "$NETNS" qemu-system-x86_64 -accel tcg -machine pc -m $MEM -nodefaults \
			-display none -kernel "$GUEST_ELF" -append "$FILL dirty=$d" \
			-chardev socket,id=s,path="$WORK/n-$n.ser",server=on,wait=off -serial chardev:s \
			-chardev socket,id=q,path="$WORK/n-$n.qmp",server=on,wait=off -mon chardev=q,mode=control \
			$extra > "$WORK/n-$n.log" 2>&1 &
		pids="$pids $!"
	done
	for i in $(seq 1 200); do [ -S "$WORK/n-src.ser" ] && [ -S "$WORK/n-dst.qmp" ] && break; sleep 0.05; done
	"$GUEST_SERIAL" --socket "$WORK/n-src.ser" --timeout 120 --expect "FERRY-GUEST READY" --expect-any "HB " >/dev/null
	"$QMP" --socket "$WORK/n-src.qmp" execute migrate-set-parameters \
		'{"max-bandwidth":1099511627776,"downtime-limit":300}' >/dev/null
	"$QMP" --socket "$WORK/n-src.qmp" execute migrate "{\"uri\":\"tcp:127.0.0.1:$PORT_N\"}" >/dev/null
	status=no
	for i in $(seq 1 $((LIMIT * 5))); do
		st=$("$QMP" --socket "$WORK/n-src.qmp" execute query-migrate)
		[ "$(echo "$st" | jq -r .status)" = completed ] && { status="converged $(echo "$st" | jq '."total-time"') ms"; break; }
		sleep 0.2
	done
	for p in $pids; do kill $p 2>/dev/null; done
	wait $pids 2>/dev/null
	rm -f "$WORK"/n-*
	echo "$status"
}

ferry() { # DIRTY -> outcome
	local d=$1 name=s$1 out
	vm_create node-a "$name" $MEM "$FILL dirty=$d" >/dev/null
	out=$(ctl node-a migrate "$name" --node node-b --wait --progress-timeout 600 \
		--completion-timeout-per-gib $LIMIT 2>&1)
	if echo "$out" | grep -q Succeeded; then
		echo "converged $(echo "$out" | sed -n 's/.*total time: *\([0-9]*\) ms.*/\1/p') ms, $(echo "$out" | sed -n 's/.*bytes: *//p')"
		ctl node-b vm delete "$name" >/dev/null
	else
		echo "no ($(echo "$out" | sed -n 's/.*reason: *//p' | cut -c1-80))"
		ctl node-a vm delete "$name" >/dev/null
	fi
}

agent_config node-a "$PORT_A" node-b "$PORT_B"
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b
for d in $DIRTIES; do
	echo "link=$RATE dirty=${d}MB/s  native-tcp: $(native "$d")"
	echo "link=$RATE dirty=${d}MB/s  ferry:      $(ferry "$d")"
done
