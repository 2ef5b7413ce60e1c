#!/bin/bash
# QEMU's own migration over a plain unix socket, no agents: the reference
# ferry is measured against. Same guest, same QEMU flags, same parameters
# (events on, max-bandwidth unlimited, downtime-limit 300 ms).
#
#   scripts/native-migrate.sh BUILD_DIR MEM_MIB "GUEST APPEND"
# Prints one line: native total_ms=.. pause_ms=.. bytes=.. verify=OK|FAIL
set -euo pipefail
BUILD=$1 MEM=$2 APPEND=$3
PIN=${PIN-1} # PIN= (empty) runs both QEMUs unpinned
QMP=$BUILD/qmp/ferry-qmp
SERIAL=$BUILD/guest/guest-serial
GUEST=$BUILD/guest/ferry-guest.elf
W=$(mktemp -d /tmp/ferry-native.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

qemu() { # NAME CPU EXTRA...
	local n=$1 cpu=$2
	shift 2
	${PIN:+taskset -c "$cpu"} qemu-system-x86_64 -accel tcg -machine pc -cpu qemu64 -m "$MEM" -smp 1 \
		-nodefaults -no-user-config -display none -uuid 7b4ad1e6-0b1e-4d0c-9a51-0f6c2f2bd9a1 \
		-kernel "$GUEST" -append "$APPEND" \
		-chardev socket,id=ser0,path="$W/$n.serial",server=on,wait=off \
		-serial chardev:ser0 \
		-chardev socket,id=qmp,path="$W/$n.qmp",server=on,wait=off -mon chardev=qmp,mode=control \
		-chardev socket,id=ev,path="$W/$n.ev",server=on,wait=off -mon chardev=ev,mode=control \
		"$@" > "$W/$n.log" 2>&1 &
	PIDS="$PIDS $!"
}

wait_sock() { # QEMU creates its sockets at start; nothing to wait on before that
	for i in $(seq 1 300); do [ -S "$1" ] && return 0; sleep 0.02; done
	echo "native: $1 never appeared: $(cat "$W"/*.log)" >&2
	exit 1
}
qemu src 0
wait_sock "$W/src.serial"
"$SERIAL" --socket "$W/src.serial" --timeout 300 --expect "FERRY-GUEST READY" --expect-any "HB " >/dev/null
qemu dst 1 -incoming defer
wait_sock "$W/dst.qmp"
wait_sock "$W/dst.ev"
for s in src dst; do
	"$QMP" --socket "$W/$s.qmp" --timeout 30 execute migrate-set-capabilities \
		'{"capabilities":[{"capability":"events","state":true}]}' >/dev/null
done
"$QMP" --socket "$W/src.qmp" execute migrate-set-parameters \
	'{"max-bandwidth":1099511627776,"downtime-limit":300}' >/dev/null
"$QMP" --socket "$W/dst.qmp" execute migrate-incoming "{\"uri\":\"unix:$W/mig.sock\"}" >/dev/null
"$QMP" --socket "$W/src.ev" --timeout 600 wait-event STOP > "$W/stop.json" &
EVP1=$!
"$QMP" --socket "$W/dst.ev" --timeout 600 wait-event RESUME > "$W/resume.json" &
EVP2=$!
# The event listeners must be connected before the migration starts.
for i in $(seq 1 100); do
	[ "$(ss -x 2>/dev/null | grep -c "$W/.*ev")" -ge 2 ] && break
	sleep 0.02
done
"$QMP" --socket "$W/src.qmp" execute migrate "{\"uri\":\"unix:$W/mig.sock\"}" >/dev/null
wait $EVP1 $EVP2
for i in $(seq 1 3000); do
	st=$("$QMP" --socket "$W/src.qmp" execute query-migrate)
	echo "$st" | jq -e '.status == "completed" or .status == "failed"' >/dev/null && break
	sleep 0.1
done
total=$(echo "$st" | jq '."total-time"')
bytes=$(echo "$st" | jq '.ram.transferred')
stop=$(jq '.timestamp_us' "$W/stop.json")
resume=$(jq '.timestamp_us' "$W/resume.json")
verify=FAIL
"$SERIAL" --socket "$W/dst.serial" --timeout 300 --send verify --expect "VERIFY OK" --fail "VERIFY FAIL" >/dev/null && verify=OK
echo "native total_ms=$total pause_ms=$(((resume - stop) / 1000)) bytes=$bytes verify=$verify"
