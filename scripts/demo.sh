#!/bin/bash
# The README's first command: two ferryd agents on 127.0.0.1, a 1 GiB test
# guest with 768 MiB filled (half text-like, half random) dirtying 20 MB/s,
# one live migration through ferry, the guest's verify on the target, and
# QEMU's own unix-socket migration of the same guest for comparison.
# Each "host" (agent + its QEMU) is pinned to its own core, as on real hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=$(pwd)/${FERRY_BUILD:-build}
MEM=${MEM:-1024}
APPEND=${APPEND:-"fill=768 profile=mix mix=0,50,50 dirty=20 wss=256"}
W=$(mktemp -d /tmp/ferry-demo.XXXXXX)
AGENTS=""
cleanup() {
	for p in $AGENTS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for pf in "$W"/*/state/vms/*/qemu.pid; do [ -f "$pf" ] && kill -9 "$(cat "$pf")" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT

chmod 711 "$W" # QEMU runs unprivileged (ferry-qemu, made by setup.sh) and passes through
install -m 0644 "$BUILD/guest/ferry-guest.elf" "$W/ferry-guest.elf" # ...and reads the kernel here
head -c 48 /dev/urandom | base64 -w0 > "$W/cluster.key"
chmod 600 "$W/cluster.key"
for n in a b; do
	port=$([ $n = a ] && echo 7711 || echo 7712)
	peer=$([ $n = a ] && echo b || echo a)
	pport=$([ $n = a ] && echo 7712 || echo 7711)
	cat > "$W/$n.yaml" <<YAML
node: node-$n
listen: 127.0.0.1:$port
api_socket: $W/$n/api.sock
state_dir: $W/$n/state
cluster_key: $W/cluster.key
qemu: {binary: qemu-system-x86_64, accel: tcg, user: ferry-qemu}
allowed_paths: [$W]
peers:
  - {name: node-$peer, address: 127.0.0.1:$pport}
YAML
	cpu=$([ $n = a ] && echo 0 || echo 1)
	taskset -c $cpu "$BUILD/agent/ferryd" --config "$W/$n.yaml" > "$W/$n.log" 2>&1 &
	AGENTS="$AGENTS $!"
done
ctl() { local n=$1; shift; "$BUILD/cli/ferryctl" --server "$W/$n/api.sock" "$@"; }
for i in $(seq 1 100); do ctl a nodes >/dev/null 2>&1 && ctl b nodes >/dev/null 2>&1 && break; sleep 0.05; done

cat > "$W/vm.yaml" <<YAML
name: demo
memory_mib: $MEM
vcpus: 1
serial: true
kernel: $W/ferry-guest.elf
append: "$APPEND"
YAML
echo "== starting guest on node-a: $MEM MiB, $APPEND"
ctl a vm create -f "$W/vm.yaml"
"$BUILD/guest/guest-serial" --socket "$W/a/state/vms/demo/serial.sock" --timeout 300 \
	--expect "FERRY-GUEST READY" --expect-any "HB "
echo "== live migration node-a -> node-b through ferry"
ctl a migrate demo --node node-b --wait
echo "== guest verify on node-b"
"$BUILD/guest/guest-serial" --socket "$W/b/state/vms/demo/serial.sock" --timeout 300 \
	--send verify --expect "VERIFY OK" --fail "VERIFY FAIL"
ctl b describe vmi demo | sed -n '1,3p'
ferry=$(ctl a -o json describe vmi demo | jq -r '.migrationState | "ferry  total_ms=\(.totalMs) pause_ms=\(.pauseMs) raw_bytes=\(.rawBytes) wire_bytes=\(.wireBytes)"')
echo "== the same guest with QEMU's own migration over a unix socket"
native=$(scripts/native-migrate.sh "$BUILD" "$MEM" "$APPEND")
echo
echo "result:"
echo "  $ferry"
echo "  $native"
