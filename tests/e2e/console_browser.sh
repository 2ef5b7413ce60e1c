#!/bin/bash
# The web console in a real browser: headless Chromium (Debian's package)
# driven by playwright-core (tests/console/run.js) against three real
# agents and real guests. node-a serves the console on TCP with viewer and
# migrator tokens; the console shows every VM of every node through
# node-a's cluster view, migrates g1 (node-a) to a specific node (node-b;
# node-c lacks the network g1's NIC needs and is shown as ineligible with
# the reason), follows the progress bar and the live chart to Succeeded,
# aborts a migration of g2 (node-b, through node-a's gateway) so g2 stays
# on node-b, shows g2's next migration, failed on its completion timeout,
# at the progress it reached with the reason, says why automatic mode has
# no node for g4 (its node selector matches none), fits a 420 px window,
# shows the Nodes page to an administrator (reachability, VM counts, the
# Cordon and Drain requests; where this ferryd lacks those endpoints the
# test notes the 404 it shows), and shows a viewer the Migrate action but
# refuses it.
# Afterwards the guests verify their own memory. Screenshots of the screens
# go to BUILD/test-artifacts/console/; FERRY_CONSOLE_UPDATE_DOCS=1 also
# copies the key ones to docs/img/ (docs/console.md shows them).
HERE=$(cd "$(dirname "$0")" && pwd)
CONSOLE_TESTS=$(cd "$HERE/../console" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
command -v node >/dev/null || { echo "SKIP: node not installed (scripts/setup.sh)"; exit 77; }
[ -x "$CHROMIUM" ] || { echo "SKIP: $CHROMIUM not installed (scripts/setup.sh)"; exit 77; }
[ -f "$CONSOLE_TESTS/node_modules/playwright-core/package.json" ] ||
	{ echo "SKIP: playwright-core not installed in tests/console (scripts/setup.sh)"; exit 77; }
. "$HERE/cluster_lib.sh"
cluster_init "$1"
ARTIFACTS=$(cd "$1" && pwd)/test-artifacts/console
rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS"

port_alloc PORT_C
port_alloc PORT_API
token() { echo "$1-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
VIEWER=$(token viewer)
MIGRATOR=$(token migrator)
ADMIN=$(token admin)

node_cfg() { # NODE PORT NETWORKS PEER PORT...
	local node=$1 port=$2 nets=$3
	shift 3
	mkdir -p "$WORK/$node"
	{
		echo "node: $node"
		echo "listen: 127.0.0.1:$port"
		echo "api_socket: $WORK/$node/api.sock"
		echo "state_dir: $WORK/$node/state"
		echo "cluster_key: $WORK/cluster.key"
		echo "networks: [$nets]"
		echo "qemu: {binary: qemu-system-x86_64, accel: tcg, user: $QEMU_USER}"
		echo "allowed_paths: [$WORK, $BUILD/guest]"
		# Slow enough that the progress bar and the chart have seconds to show.
		echo "migration: {max_bandwidth_mibps: 8}"
		echo "peers:"
		while [ $# -gt 0 ]; do echo "  - {name: $1, address: 127.0.0.1:$2}"; shift 2; done
	} > "$WORK/$node.yaml"
}
node_cfg node-a "$PORT_A" "default, tenant" node-b "$PORT_B" node-c "$PORT_C"
cat >> "$WORK/node-a.yaml" <<YAML
api_listen: 127.0.0.1:$PORT_API
tokens:
  - {name: console-viewer, token: $VIEWER, role: viewer}
  - {name: console-migrator, token: $MIGRATOR, role: migrator}
  - {name: console-admin, token: $ADMIN, role: admin}
YAML
node_cfg node-b "$PORT_B" "default, tenant" node-a "$PORT_A" node-c "$PORT_C"
node_cfg node-c "$PORT_C" "default" node-a "$PORT_A" node-b "$PORT_B"
agent_start node-a
agent_start node-b
agent_start node-c

guest() { # NODE NAME MEM APPEND [extra YAML]
	printf 'name: %s\nmemory_mib: %s\nserial: true\nkernel: %s\nappend: "%s"\n%s\n' \
		"$2" "$3" "$GUEST_ELF" "$4" "${5:-}" > "$WORK/$2.yaml"
	ctl "$1" vm create -f "$WORK/$2.yaml" || die "vm create $2 failed"
}
guest_ready() { # NODE NAME
	"$GUEST_SERIAL" --socket "$(vm_json "$1" "$2" | jq -r .serialSocket)" --timeout 120 \
		--expect "FERRY-GUEST READY" --expect-any "HB " >/dev/null || die "guest $2 did not boot"
}
# g1 needs the tenant network (node-c lacks it).
guest node-a g1 128 "fill=48 profile=random dirty=2 wss=8" "nics: [{name: net0, network: tenant}]"
# g2's migration runs long enough to be aborted.
guest node-b g2 256 "fill=128 profile=random dirty=2 wss=16"
# g3 has a CD-ROM with media: listed as not live-migratable, with the reason.
head -c 4096 /dev/zero > "$WORK/tools.iso"
qemu_give_paths "path: $WORK/tools.iso"
guest node-c g3 64 "fill=8 profile=zero dirty=0" "disks: [{name: tools, path: $WORK/tools.iso, type: cdrom}]"
# g4 asks for a node label no node has: no node can take it.
guest node-c g4 64 "fill=8 profile=zero dirty=0" "node_selector: {zone: nowhere}"
guest_ready node-a g1
guest_ready node-b g2

log "browser test against http://127.0.0.1:$PORT_API/"
start=$(date +%s)
FERRY_URL="http://127.0.0.1:$PORT_API" FERRY_TOKEN_MIGRATOR="$MIGRATOR" FERRY_TOKEN_VIEWER="$VIEWER" \
	FERRY_TOKEN_ADMIN="$ADMIN" \
	FERRY_ARTIFACTS="$ARTIFACTS" CHROMIUM="$CHROMIUM" \
	timeout 420 node "$CONSOLE_TESTS/run.js" || die "the browser test failed (screenshots so far: $ARTIFACTS)"
log "browser part took $(($(date +%s) - start)) s"

# What the console showed is what happened.
[ "$(vm_json node-b g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-b"
ctl node-a -o json get vmi | jq -e 'any(.[]; .name == "g1" and .node == "node-a")' >/dev/null && die "g1 did not leave node-a"
g2migs=$(ctl node-b -o json get vmim | jq -c '[.[] | select(.vm == "g2" and .role == "source")]')
[ "$(echo "$g2migs" | jq -r '.[1].abortStatus')" = Succeeded ] || die "g2's first migration was not aborted: $g2migs"
echo "$g2migs" | jq -r '.[0].failureReason' | grep -q "completion timeout" ||
	die "g2's second migration did not fail on its completion timeout: $g2migs"
[ "$(vm_json node-b g2 | jq -r .state)" = Running ] || die "g2 is not Running on node-b"
guest_verify node-b g1
guest_verify node-b g2
! grep -q -e "$VIEWER" -e "$MIGRATOR" -e "$ADMIN" "$WORK"/node-*.log || die "a token reached a log"
for f in signin vms menu migrate-dialog migrating details vms-after menu-abort abort aborted failed \
	no-eligible narrow-vms narrow-details nodes narrow-nodes viewer-denied; do
	[ -s "$ARTIFACTS/console-$f.png" ] || die "screenshot console-$f.png missing"
done
if [ "${FERRY_CONSOLE_UPDATE_DOCS:-0}" = 1 ]; then
	for f in signin vms migrate-dialog migrating details menu-abort aborted failed no-eligible \
		narrow-vms nodes viewer-denied; do
		cp "$ARTIFACTS/console-$f.png" "$HERE/../../docs/img/console-$f.png"
	done
	log "docs/img/console-*.png updated"
fi
log PASS
