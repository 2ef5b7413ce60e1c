# Shared helpers for the end-to-end tests that run real agents; sourced.
#
#   cluster_init BUILD_DIR        checks tools (exit 77), makes $WORK, a key,
#                                 ports; installs the cleanup trap
#   port_alloc VAR                sets VAR to another free port of this test
#   agent_config NODE PORT PEER PEER_PORT [KEYFILE]   writes $WORK/NODE.yaml
#   agent_start NODE              starts ferryd for NODE, waits for its API
#   agent_kill NODE [SIG]         kills it (default SIGKILL) and waits
#   ctl NODE ARGS...              ferryctl against NODE's agent
#   vm_create NODE NAME MEM "APPEND" ["YAML"]   creates a guest VM (extra spec
#                                 lines, e.g. its disks) and waits for READY
#   guest_verify NODE NAME        sends `verify` on the VM's serial, expects OK
#   guest_hb NODE NAME            prints the guest's latest heartbeat seq
#   mig_wait_phase NODE ID REGEX SEC   polls a migration until its phase matches
#   mig_wait_bytes NODE ID BYTES SEC   ... until rawBytes >= BYTES
#   mig_wait_field NODE ID FIELD N SEC ... until a numeric status field >= N
#   two_agents                    node-a and node-b, peers of each other, started
#   three_agents                  node-a, node-b and node-c, each a peer of the
#                                 other two ($PORT_C), started
#   cluster_netns RATE            run the agents in a new network namespace whose
#                                 loopback is shaped by a tbf qdisc (a slow link;
#                                 exit 77 where namespaces are not available)
#
# Every wait has a deadline; the EXIT trap stops agents and QEMUs this test
# started and removes $WORK, whatever happened.

set -u

die() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[$(date +%T.%3N)] $*"; }

cluster_init() {
	BUILD=$1
	FERRYD=$BUILD/agent/ferryd
	FERRYCTL=$BUILD/cli/ferryctl
	GUEST_ELF=$BUILD/guest/ferry-guest.elf
	GUEST_SERIAL=$BUILD/guest/guest-serial
	for tool in qemu-system-x86_64 jq; do
		command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
	done
	for f in "$FERRYD" "$FERRYCTL" "$GUEST_ELF" "$GUEST_SERIAL"; do
		[ -e "$f" ] || die "$f missing (build first)"
	done
	WORK=$(mktemp -d /tmp/ferry-e2e.XXXXXX)
	# QEMU runs as ferry-qemu (scripts/setup.sh creates it) and must pass
	# through $WORK to the agents' state dirs and the test's images.
	chmod 711 "$WORK"
	if id -u ferry-qemu >/dev/null 2>&1; then
		QEMU_USER=ferry-qemu
	else
		QEMU_USER=root
		echo "note: no user ferry-qemu (scripts/setup.sh makes it): QEMU runs as root"
	fi
	# The unprivileged QEMU reads the kernel: a copy here, where it may pass,
	# whatever the permissions of the build tree's parents.
	install -m 0644 "$GUEST_ELF" "$WORK/ferry-guest.elf"
	GUEST_ELF=$WORK/ferry-guest.elf
	# Lab mode: the cluster key is a TLS pre-shared key, hex or base64 of
	# at least 32 random bytes (docs/security.md).
	head -c 48 /dev/urandom | base64 -w0 > "$WORK/cluster.key"
	chmod 600 "$WORK/cluster.key"
	# Each test takes ports from its own block (from its PID), below the
	# kernel's ephemeral range (32768-) where outgoing connections would
	# take them, and skips any that something listens on.
	PORT_NEXT=$((20000 + ($$ % 1500) * 8))
	port_alloc PORT_A
	port_alloc PORT_B
	AGENT_PIDS=""
	NETNS=""
	trap cluster_cleanup EXIT
	trap 'exit 130' INT TERM
}

port_alloc() { # VAR: the next free port of this test's block
	local p=$PORT_NEXT
	while ss -Htln "sport = :$p" 2>/dev/null | grep -q .; do
		p=$((p + 1))
		[ $p -lt $((PORT_NEXT + 64)) ] || die "no free port near $PORT_NEXT"
	done
	PORT_NEXT=$((p + 1))
	printf -v "$1" '%d' "$p"
}

cluster_cleanup() {
	local rc=$?

	for pid in $AGENT_PIDS; do
		kill -TERM "$pid" 2>/dev/null
	done
	# An agent that does not stop in 20 s is a bug worth failing on.
	for pid in $AGENT_PIDS; do
		for i in $(seq 1 200); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "agent $pid did not stop on SIGTERM" >&2
			kill -KILL "$pid" 2>/dev/null
			[ $rc -eq 0 ] && rc=1
		fi
		wait "$pid" 2>/dev/null
	done
	# Under the sanitizer build an agent reports to its log; any report
	# fails the test (a leak is only reported at exit, so look now).
	if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$WORK"/*.log 2>/dev/null; then
		echo "sanitizer report in the agent logs above" >&2
		[ $rc -eq 0 ] && rc=1
	fi
	# QEMUs outlive their agent by design; this test's go with it.
	for pf in "$WORK"/*/state/vms/*/qemu.pid; do
		[ -f "$pf" ] || continue
		kill -KILL "$(cat "$pf")" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		# Whole logs survive for a post-mortem; the tails go to ctest.
		mkdir -p /tmp/ferry-e2e-failed && cp "$WORK"/*.log /tmp/ferry-e2e-failed/ 2>/dev/null
		# The guests' serial and QEMU logs too: node-vm-serial.log, ...
		for l in "$WORK"/*/state/vms/*/serial.log "$WORK"/*/state/vms/*/qemu.log; do
			[ -f "$l" ] || continue
			local rel=${l#"$WORK"/} node vm
			node=${rel%%/*} vm=$(basename "$(dirname "$l")")
			cp "$l" "/tmp/ferry-e2e-failed/$node-$vm-$(basename "$l")"
		done
		for l in "$WORK"/*.log; do
			[ -f "$l" ] || continue
			echo "--- $l (tail) ---" >&2
			tail -n 40 "$l" >&2
		done
	fi
	[ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}

cluster_netns() {
	local rate=$1

	command -v ip >/dev/null && command -v tc >/dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
	NETNS=ferry-e2e-$$
	ip netns add "$NETNS" 2>/dev/null || { NETNS=""; echo "SKIP: cannot create a network namespace"; exit 77; }
	ip -n "$NETNS" link set lo up || die "cannot bring up lo in $NETNS"
	# tbf needs a burst of at least rate/HZ; latency bounds the queue.
	ip netns exec "$NETNS" tc qdisc add dev lo root tbf rate "$rate" burst 256kb latency 100ms ||
		{ echo "SKIP: tbf qdisc not available"; exit 77; }
	log "agents run in netns $NETNS, loopback shaped to $rate"
}

agent_config() {
	local node=$1 port=$2 peer=$3 pport=$4 key=${5:-$WORK/cluster.key}
	# VM files: the test's images and the guest kernel (ALLOWED_PATHS overrides).
	local allowed=${ALLOWED_PATHS:-"[$WORK, $BUILD/guest]"}

	mkdir -p "$WORK/$node"
	cat > "$WORK/$node.yaml" <<YAML
node: $node
listen: 127.0.0.1:$port
api_socket: $WORK/$node/api.sock
state_dir: $WORK/$node/state
cluster_key: $key
qemu: {binary: qemu-system-x86_64, accel: tcg, user: $QEMU_USER}
allowed_paths: $allowed
migration: {progress_timeout_s: 150, completion_timeout_s_per_gib: 800}
peers:
  - {name: $peer, address: 127.0.0.1:$pport}
YAML
}

# QEMU (as $QEMU_USER) must read and write the images a spec names.
qemu_give_paths() {
	local p

	for p in $(echo "$1" | sed -n 's/.*path: \([^,}]*\).*/\1/p'); do
		[ -e "$p" ] && [ "$QEMU_USER" != root ] && chown "$QEMU_USER:" "$p"
	done
	return 0
}

agent_start() {
	local node=$1 i

	# A config may hold tokens: ferryd wants it private.
	chmod 600 "$WORK/$node.yaml"
	# AGENT_WRAP: a command prefix for this start (e.g. another mount namespace).
	if [ -n "$NETNS" ]; then
		ip netns exec "$NETNS" ${AGENT_WRAP:-} "$FERRYD" --config "$WORK/$node.yaml" >> "$WORK/$node.log" 2>&1 &
	else
		${AGENT_WRAP:-} "$FERRYD" --config "$WORK/$node.yaml" >> "$WORK/$node.log" 2>&1 &
	fi
	eval "AGENT_PID_$(echo "$node" | tr - _)=$!"
	AGENT_PIDS="$AGENT_PIDS $!"
	# Ready when the API answers; bounded.
	for i in $(seq 1 200); do
		"$FERRYCTL" --server "$WORK/$node/api.sock" nodes >/dev/null 2>&1 && return 0
		kill -0 $! 2>/dev/null || die "ferryd $node exited: $(tail -n 3 "$WORK/$node.log")"
		sleep 0.05 # no readiness event to wait on before the socket exists
	done
	die "ferryd $node did not come up"
}

two_agents() {
	agent_config node-a "$PORT_A" node-b "$PORT_B"
	agent_config node-b "$PORT_B" node-a "$PORT_A"
	agent_start node-a
	agent_start node-b
}

three_agents() {
	port_alloc PORT_C
	agent_config node-a "$PORT_A" node-b "$PORT_B"
	agent_config node-b "$PORT_B" node-c "$PORT_C"
	agent_config node-c "$PORT_C" node-a "$PORT_A"
	# agent_config writes one peer: the list is last, add the other.
	echo "  - {name: node-c, address: 127.0.0.1:$PORT_C}" >> "$WORK/node-a.yaml"
	echo "  - {name: node-a, address: 127.0.0.1:$PORT_A}" >> "$WORK/node-b.yaml"
	echo "  - {name: node-b, address: 127.0.0.1:$PORT_B}" >> "$WORK/node-c.yaml"
	agent_start node-a
	agent_start node-b
	agent_start node-c
}

agent_kill() {
	local node=$1 sig=${2:-KILL} var pid

	var="AGENT_PID_$(echo "$node" | tr - _)"
	pid=${!var}
	kill -"$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	AGENT_PIDS=$(echo "$AGENT_PIDS" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
}

ctl() {
	local node=$1
	shift
	"$FERRYCTL" --server "$WORK/$node/api.sock" "$@"
}

vm_json() { ctl "$1" -o json describe vmi "$2"; }

vm_create() {
	local node=$1 name=$2 mem=$3 append=$4 extra=${5:-} serial

	cat > "$WORK/$name.yaml" <<YAML
name: $name
memory_mib: $mem
vcpus: 1
serial: true
kernel: $GUEST_ELF
append: "$append"
$extra
YAML
	qemu_give_paths "$extra"
	# VM_CREATE_FLAGS: e.g. --force, where a peer cannot be asked about the name
	ctl "$node" vm create ${VM_CREATE_FLAGS:-} -f "$WORK/$name.yaml" || die "vm create failed"
	serial=$(vm_json "$node" "$name" | jq -r .serialSocket)
	# READY is printed once; a client that connects later sees heartbeats,
	# which also only start after the fill.
	"$GUEST_SERIAL" --socket "$serial" --timeout 120 --expect "FERRY-GUEST READY" \
		--expect-any "HB " >/dev/null || die "guest $name did not boot"
}

guest_verify() {
	local node=$1 name=$2 serial out

	serial=$(vm_json "$node" "$name" | jq -r .serialSocket)
	[ -n "$serial" ] && [ "$serial" != null ] || die "$name has no serial socket on $node"
	out=$("$GUEST_SERIAL" --socket "$serial" --timeout 180 --send verify \
		--expect "VERIFY OK" --fail "VERIFY FAIL") || die "guest verify on $node: $out"
	log "$node/$name: $out"
}

guest_hb() {
	local node=$1 name=$2 serial

	serial=$(vm_json "$node" "$name" | jq -r .serialSocket)
	"$GUEST_SERIAL" --socket "$serial" --timeout 10 --expect "HB " | sed -n 's/.*seq=\([0-9]*\).*/\1/p'
}

mig_json() { ctl "$1" -o json get vmim | jq ".[] | select(.id == \"$2\")"; }

mig_wait_phase() {
	local node=$1 id=$2 re=$3 secs=$4 phase deadline

	deadline=$(($(date +%s) + secs))
	while [ "$(date +%s)" -le "$deadline" ]; do
		phase=$(mig_json "$node" "$id" | jq -r .phase)
		[[ $phase =~ $re ]] && return 0
		sleep 0.1 # polling a status API; there is no event stream yet
	done
	die "migration $id never reached phase $re (last: $phase)"
}

mig_wait_bytes() { mig_wait_field "$1" "$2" rawBytes "$3" "$4"; }

mig_wait_field() { # NODE ID FIELD MIN SECS: until the numeric status field >= MIN
	local node=$1 id=$2 field=$3 want=$4 secs=$5 got deadline

	deadline=$(($(date +%s) + secs))
	while [ "$(date +%s)" -le "$deadline" ]; do
		got=$(mig_json "$node" "$id" | jq -r ".$field")
		[ "${got:-0}" -ge "$want" ] 2>/dev/null && return 0
		sleep 0.05 # polling a status API
	done
	die "migration $id: $field never reached $want (last: $got)"
}

# The migration must have left exactly one QEMU for the VM and no
# half-made target: count live QEMUs whose pidfile lives under $WORK.
qemu_count() {
	local n=0 pf

	for pf in "$WORK"/*/state/vms/*/qemu.pid; do
		[ -f "$pf" ] || continue
		kill -0 "$(cat "$pf")" 2>/dev/null && n=$((n + 1))
	done
	echo $n
}

assert_no_migration_files() {
	local node=$1 left

	left=$(find "$WORK/$node/state/migrations" -mindepth 1 2>/dev/null)
	[ -z "$left" ] || die "leftover migration files on $node: $left"
}
