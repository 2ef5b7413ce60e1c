#!/bin/bash
# Cordon and drain. Three agents; five guests on node-a, one with a CD-ROM
# with media; node-a allows two outbound migrations. `ferryctl drain node-a
# --wait`, asked of node-b (through the gateway): while it runs, at most two
# migrations go at once and the rest wait in the drain's queue, Pending with
# their place; a guest every peer refuses (its kernel lies where only
# node-a allows VM files) is tried on each peer once and fails with the
# last reason; at the end node-a holds only these two, the report names
# them with their reasons, every moved guest verifies on its new node,
# node-a stays cordoned (a new VM and an inbound migration are refused,
# peers judge it ineligible, and an agent restart keeps the cordon) until
# uncordoned. Then a drain interrupted while a migration runs: that
# migration finishes, nothing new starts, nothing is left half-done; and
# one whose VM does not move within its timeout: cancelled, reported.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
port_alloc PORT_C

node_cfg() { # NODE PORT OUTBOUND ALLOWED PEER PORT...
	local node=$1 port=$2 out=$3 allowed=$4
	shift 4
	mkdir -p "$WORK/$node"
	{
		echo "node: $node"
		echo "listen: 127.0.0.1:$port"
		echo "api_socket: $WORK/$node/api.sock"
		echo "state_dir: $WORK/$node/state"
		echo "cluster_key: $WORK/cluster.key"
		echo "qemu: {binary: qemu-system-x86_64, accel: tcg, user: $QEMU_USER}"
		echo "allowed_paths: [$allowed]"
		# Slow enough that the queue shows for seconds.
		echo "migration: {progress_timeout_s: 150, completion_timeout_s_per_gib: 800, max_bandwidth_mibps: 8}"
		echo "limits: {parallel_outbound: $out, pending_timeout_s: 300}"
		echo "peers:"
		while [ $# -gt 0 ]; do echo "  - {name: $1, address: 127.0.0.1:$2}"; shift 2; done
	} > "$WORK/$node.yaml"
}
# The guests' kernel in $WORK/k (every node allows it); a copy in
# $WORK/a-only, which only node-a allows.
for d in k a-only; do
	mkdir -m 755 "$WORK/$d"
	install -m 0644 "$GUEST_ELF" "$WORK/$d/ferry-guest.elf"
done
GUEST_ELF=$WORK/k/ferry-guest.elf
node_cfg node-a "$PORT_A" 2 "$WORK, $BUILD/guest" node-b "$PORT_B" node-c "$PORT_C"
node_cfg node-b "$PORT_B" 1 "$WORK/k, $BUILD/guest" node-a "$PORT_A" node-c "$PORT_C"
node_cfg node-c "$PORT_C" 1 "$WORK/k, $BUILD/guest" node-a "$PORT_A" node-b "$PORT_B"
agent_start node-a
agent_start node-b
agent_start node-c

api() { # NODE METHOD PATH: the raw API on NODE's socket (root: admin)
	curl -s --unix-socket "$WORK/$1/api.sock" -X "$2" "http://ferryd$3"
}

head -c 4096 /dev/zero > "$WORK/tools.iso"
for g in g1 g2 g3 g4; do
	vm_create node-a "$g" 64 "fill=24 profile=random dirty=1 wss=4"
done
vm_create node-a tools 64 "fill=8 profile=text dirty=0" \
	"disks: [{name: tools, path: $WORK/tools.iso, type: cdrom}]"
GUEST_ELF=$WORK/a-only/ferry-guest.elf vm_create node-a stuck 64 "fill=8 profile=text dirty=0"

# Bad options are refused by name before anything happens.
api node-a GET /v1/drain | jq -r .error.message | grep -q "no drain has run on this node" ||
	die "GET /v1/drain before any drain: $(api node-a GET /v1/drain)"
out=$(curl -s --unix-socket "$WORK/node-a/api.sock" -X POST -d '{"maxAttempts": 0}' http://ferryd/v1/drain)
echo "$out" | grep -q "maxAttempts must be an integer from 1 to 10" || die "maxAttempts 0: $out"
out=$(curl -s --unix-socket "$WORK/node-a/api.sock" -X POST -d '{"maxAttempt": 2}' http://ferryd/v1/drain)
echo "$out" | jq -r .error.message | grep -q 'unknown key "maxAttempt"' || die "unknown key: $out"
out=$(ctl node-b drain node-a --max-attempts five 2>&1) && die "--max-attempts five accepted"
echo "$out" | grep -q "max-attempts: 'five' is not a number" || die "--max-attempts five: $out"
[ "$(api node-a GET /v1/node | jq -r .cordoned)" = false ] || die "a refused drain cordoned node-a"

# Watch node-a's drain while it runs: the most migrations at once, and a
# Pending entry with its place.
watch_drain() {
	local deadline=$(($(date +%s) + 300)) d max=0 n
	: > "$WORK/watch.pending"
	while [ "$(date +%s)" -le "$deadline" ]; do
		d=$(api node-a GET /v1/drain)
		n=$(echo "$d" | jq '[.vms[]? | select(.state == "Migrating")] | length')
		[ "${n:-0}" -gt "$max" ] && max=$n
		echo "$d" | jq -c '.vms[]? | select(.state == "Pending" and .place >= 1)' >> "$WORK/watch.pending"
		[ "$(echo "$d" | jq -r .state)" = Running ] || break
		sleep 0.2 # polling the drain's status
	done
	echo "$max" > "$WORK/watch.max"
}

log "draining node-a (asked of node-b)"
ctl node-b drain node-a --wait --max-attempts 2 > "$WORK/drain.out" 2>&1 &
drain_pid=$!
# The drain exists once POST has answered; then follow it.
deadline=$(($(date +%s) + 30))
until api node-a GET /v1/drain | jq -e .state >/dev/null 2>&1; do
	[ "$(date +%s)" -le "$deadline" ] || die "no drain on node-a: $(cat "$WORK/drain.out")"
	sleep 0.1 # waiting for the CLI's POST
done
watch_drain
wait "$drain_pid" && die "drain reported success although tools could not move"
cat "$WORK/drain.out"

# The queue was shown, and the limit held.
[ -s "$WORK/watch.pending" ] || die "GET /v1/drain never showed a Pending VM with its place"
grep -q '"place":1' "$WORK/watch.pending" || die "no Pending VM at place 1: $(head -3 "$WORK/watch.pending")"
[ "$(cat "$WORK/watch.max")" -le 2 ] || die "$(cat "$WORK/watch.max") migrations ran at once (limit 2)"
[ "$(cat "$WORK/watch.max")" -ge 1 ] || die "no migration was seen running"
grep -q "Pending #1" "$WORK/drain.out" || die "drain --wait did not show the queue"

# The report.
d=$(api node-a GET /v1/drain)
[ "$(echo "$d" | jq -r .state)" = Failed ] || die "drain state: $(echo "$d" | jq -c .)"
[ "$(echo "$d" | jq -r '[.report[].vm] | join(",")')" = stuck,tools ] || die "report: $(echo "$d" | jq -c .report)"
echo "$d" | jq -r '.report[] | select(.vm == "tools") | .reason' | grep -q "CD-ROM tools has media" ||
	die "report lacks the CD-ROM's reason"
grep -E "^tools +NotMovable .*CD-ROM tools has media" "$WORK/drain.out" >/dev/null || die "table lacks tools"
# stuck: refused by one peer, retried on the other, then given up.
s=$(echo "$d" | jq -c '.vms[] | select(.vm == "stuck")')
[ "$(echo "$s" | jq -r .state)" = Failed ] && [ "$(echo "$s" | jq -r .attempts)" = 2 ] || die "stuck: $s"
echo "$s" | jq -r .reason | grep -Eq "^2 attempts failed, the last to node-[bc]: .*a-only" || die "stuck's reason: $s"
grep -E "^stuck +Failed +node-[bc] +2 +2 attempts failed" "$WORK/drain.out" >/dev/null || die "table lacks stuck"
grep -q "event=drain_vm vm=stuck state=Pending target=node-[bc] attempts=1" "$WORK/node-a.log" ||
	die "stuck was not queued again after its first failure"
[ "$(vm_json node-a stuck | jq -r .state)" = Running ] || die "stuck does not run on node-a any more"
for g in g1 g2 g3 g4; do
	grep -E "^$g +Moved +node-[bc] +1 " "$WORK/drain.out" >/dev/null || die "table: $g not moved"
done

# node-a holds only tools; every moved guest runs and verifies where it went.
left=$(ctl node-a -o json vm list | jq -r '[.[] | select(.node == "node-a") | .name] | sort | join(",")')
[ "$left" = stuck,tools ] || die "node-a still holds: $left"
for g in g1 g2 g3 g4; do
	t=$(echo "$d" | jq -r ".vms[] | select(.vm == \"$g\") | .target")
	[ "$(vm_json "$t" "$g" | jq -r .state)" = Running ] || die "$g is not Running on $t"
	guest_verify "$t" "$g"
done
[ "$(qemu_count)" = 6 ] || die "$(qemu_count) QEMUs run, want 6"

# Cordoned: shown, no new VMs, no inbound migrations, peers say why.
[ "$(api node-a GET /v1/node | jq -r .cordoned)" = true ] || die "node-a is not cordoned"
t1=$(echo "$d" | jq -r '.vms[] | select(.vm == "g1") | .target')
ctl "$t1" -o json candidates g1 | jq -e '.[] | select(.name == "node-a" and .eligible == false and .reason == "cordoned")' \
	>/dev/null || die "candidates do not show node-a ineligible: $(ctl "$t1" -o json candidates g1)"
cat > "$WORK/new.yaml" <<YAML
name: fresh
memory_mib: 64
serial: true
kernel: $GUEST_ELF
append: "fill=8"
YAML
out=$(ctl node-a vm create -f "$WORK/new.yaml" 2>&1) && die "a VM was created on cordoned node-a"
echo "$out" | grep -q "node node-a is cordoned" || die "create refusal: $out"
out=$(ctl "$t1" migrate g1 --node node-a 2>&1) && die "g1 migrated to cordoned node-a: $out"
echo "$out" | grep -q "cordoned" || die "migration refusal: $out"
# The cordon survives a restart of the agent.
agent_kill node-a TERM
agent_start node-a
[ "$(api node-a GET /v1/node | jq -r .cordoned)" = true ] || die "the restart lost the cordon"
ctl node-c uncordon node-a | grep -q "node/node-a uncordoned" || die "uncordon failed"
[ "$(api node-a GET /v1/node | jq -r .cordoned)" = false ] || die "node-a is still cordoned"
ctl node-a vm create -f "$WORK/new.yaml" >/dev/null || die "create after uncordon refused"
ctl node-a vm delete fresh >/dev/null || die "delete fresh failed"

# An interrupted drain: the node with two or more guests (one outbound slot).
src=node-b
[ "$(ctl node-b -o json vm list | jq '[.[] | select(.node == "node-b" and .state == "Running")] | length')" -ge 2 ] || src=node-c
log "draining $src, interrupted while its first migration runs"
api "$src" POST /v1/drain > /dev/null
deadline=$(($(date +%s) + 60))
until api "$src" GET /v1/drain | jq -e '[.vms[] | select(.state == "Migrating")] | length == 1' >/dev/null; do
	[ "$(date +%s)" -le "$deadline" ] || die "no migration started: $(api "$src" GET /v1/drain)"
	sleep 0.1 # polling the drain's status
done
api "$src" GET /v1/drain | jq -e '[.vms[] | select(.state == "Pending" and .place == 1)] | length == 1' >/dev/null ||
	die "no Pending VM behind the running one: $(api "$src" GET /v1/drain)"
ctl node-a drain "$src" --interrupt | grep -q "drain interrupted" || die "interrupt refused"
deadline=$(($(date +%s) + 180))
until [ "$(api "$src" GET /v1/drain | jq -r .state)" = Interrupted ]; do
	[ "$(date +%s)" -le "$deadline" ] || die "the drain did not end: $(api "$src" GET /v1/drain)"
	sleep 0.2 # polling the drain's status
done
d=$(api "$src" GET /v1/drain)
echo "$d" | jq -c .
[ "$(echo "$d" | jq '[.vms[] | select(.state == "Moved")] | length')" = 1 ] || die "not one VM moved"
[ "$(echo "$d" | jq '[.vms[] | select(.state == "Migrating")] | length')" = 0 ] || die "a migration is left"
echo "$d" | jq -r '.report[].reason' | grep -q "interrupted before it started" || die "report after interrupt"
[ "$(api "$src" GET /v1/node | jq -r .cordoned)" = true ] || die "$src is not cordoned after the interrupt"
# Nothing half-done: every guest Running on exactly one node, one QEMU
# each, no migration files anywhere.
for n in node-a node-b node-c; do
	ctl "$n" -o json vm list | jq -e --arg n "$n" '[.[] | select(.node == $n) | select(.state == "Migrating" or .state == "Incoming" or .state == "Paused")] | length == 0' \
		>/dev/null || die "$n has a VM half-moved: $(ctl "$n" -o json vm list | jq -c '[.[] | {name, state}]')"
	assert_no_migration_files "$n"
done
running=$(for n in node-a node-b node-c; do ctl "$n" -o json vm list | jq -r --arg n "$n" '.[] | select(.node == $n and .state == "Running") | .name'; done | sort)
[ "$(echo "$running" | tr '\n' ' ')" = "g1 g2 g3 g4 stuck tools " ] || die "running guests: $running"
[ "$(qemu_count)" = 6 ] || die "$(qemu_count) QEMUs run, want 6"
moved=$(echo "$d" | jq -r '.vms[] | select(.state == "Moved") | .vm')
guest_verify "$(echo "$d" | jq -r ".vms[] | select(.vm == \"$moved\") | .target")" "$moved"
ctl node-a uncordon "$src" >/dev/null || die "uncordon $src failed"

# A VM that does not move within the drain's timeout: its migration is
# cancelled, it keeps running where it was, and the report says why.
vm_create "$src" slow 128 "fill=112 profile=random dirty=2 wss=16"
log "draining $src with a 10 s timeout per VM"
out=$(ctl node-a drain "$src" --wait --timeout 10 --max-attempts 1) && die "a timed-out drain succeeded"
echo "$out" | tail -n 5
echo "$out" | grep -E "^slow +Failed +node-[abc] +1 +timed out: not moved in 10 s" >/dev/null ||
	die "slow did not time out: $out"
[ "$(vm_json "$src" slow | jq -r .state)" = Running ] || die "slow is not Running on $src"
for n in node-a node-b node-c; do
	ctl "$n" -o json vm list | jq -e --arg n "$n" '[.[] | select(.node == $n) | select(.state == "Migrating" or .state == "Incoming")] | length == 0' \
		>/dev/null || die "$n has a VM half-moved after the timeout"
	assert_no_migration_files "$n"
done
guest_verify "$src" slow
ctl node-a uncordon "$src" >/dev/null || die "uncordon $src failed"
log PASS
