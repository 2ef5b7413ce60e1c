#!/bin/bash
# Certificate mode (docs/security.md): two agents with certificates from a
# CA made by `ferryctl pki` migrate a guest. Then node-a presents, in turn
# (swapped in with SIGHUP), a certificate naming another node, one from
# another CA and an expired one, and node-b stops listing node-a as a peer:
# each migration is refused with the reason in node-b's log and the guest
# stays Running on node-a. Back to its own certificate, node-a migrates.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

PKI=$WORK/pki
ctl_pki() { "$FERRYCTL" pki "$@" >/dev/null || die "ferryctl pki $* failed"; }
ctl_pki init --dir "$PKI/ca"
ctl_pki init --dir "$PKI/ca2"
ctl_pki issue --ca-dir "$PKI/ca" --node node-a --out "$PKI/node-a"
ctl_pki issue --ca-dir "$PKI/ca" --node node-b --out "$PKI/node-b"
ctl_pki issue --ca-dir "$PKI/ca" --node node-x --out "$PKI/wrong-name"
ctl_pki issue --ca-dir "$PKI/ca2" --node node-a --out "$PKI/other-ca"
ctl_pki issue --ca-dir "$PKI/ca" --node node-a --out "$PKI/expired" --days 0
[ "$(stat -c %a "$PKI/ca/ca.key")" = 600 ] || die "CA key is not mode 0600"
[ "$(stat -c %a "$PKI/node-a/node.key")" = 600 ] || die "node key is not mode 0600"

# NODE PORT PEER PEER_PORT: agent_config's file with a tls: section instead
# of the cluster key; the node's files are copied to NODE/tls so a test can
# swap them.
tls_config() {
	local node=$1
	agent_config "$@"
	mkdir -p "$WORK/$node/tls"
	cp "$PKI/$node/node.crt" "$PKI/$node/node.key" "$PKI/ca/ca.crt" "$WORK/$node/tls/"
	sed -i "s|^cluster_key:.*|tls: {ca: $WORK/$node/tls/ca.crt, cert: $WORK/$node/tls/node.crt, key: $WORK/$node/tls/node.key}|" \
		"$WORK/$node.yaml"
}

# DIR: node-a presents the certificate and key in DIR from its next link on.
swap_cert_a() {
	local n
	cp "$1/node.crt" "$1/node.key" "$WORK/node-a/tls/"
	n=$(grep -c tls_reloaded "$WORK/node-a.log")
	kill -HUP "$AGENT_PID_node_a"
	for i in $(seq 1 100); do
		[ "$(grep -c tls_reloaded "$WORK/node-a.log")" -gt "$n" ] && return 0
		sleep 0.05
	done
	die "node-a did not reload its certificate"
}

# WHAT REASON: a migration of g2 to node-b is refused, node-b's log says
# REASON, g2 stays Running on node-a.
expect_refused() {
	local what=$1 reason=$2 from out
	from=$(wc -l < "$WORK/node-b.log")
	out=$(ctl node-a migrate g2 --node node-b --wait 2>&1) && die "$what: migration succeeded"
	echo "$what: $out"
	tail -n +"$((from + 1))" "$WORK/node-b.log" | grep "auth_refused" | grep -q "$reason" ||
		die "$what: node-b did not log \"$reason\""
	[ "$(vm_json node-a g2 | jq -r .state)" = Running ] || die "$what: g2 is not Running on node-a"
	[ ! -e "$WORK/node-b/state/vms/g2" ] || die "$what: something started on node-b"
}

tls_config node-a "$PORT_A" node-b "$PORT_B"
tls_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b
grep -q "event=transport_ready mode=certificate sealed=1" "$WORK/node-a.log" || die "node-a not in certificate mode"

vm_create node-a g1 128 "fill=32 profile=text dirty=5 wss=16"
out=$(ctl node-a migrate g1 --node node-b --wait) || die "migration in certificate mode failed: $out"
[ "$(vm_json node-b g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-b"
guest_verify node-b g1

vm_create node-a g2 128 "fill=32 profile=text dirty=5 wss=16"
swap_cert_a "$PKI/wrong-name"
expect_refused "certificate of another node" "does not name it"
swap_cert_a "$PKI/other-ca"
expect_refused "certificate of another CA" "unable to get local issuer certificate"
swap_cert_a "$PKI/expired"
expect_refused "expired certificate" "certificate has expired"
swap_cert_a "$PKI/node-a"

# node-b forgets node-a: inbound links from it are refused too.
agent_kill node-b TERM
sed -i "s|name: node-a,|name: node-z,|" "$WORK/node-b.yaml"
agent_start node-b
expect_refused "node not in peers" "node node-a is not in our peers list"

agent_kill node-b TERM
sed -i "s|name: node-z,|name: node-a,|" "$WORK/node-b.yaml"
agent_start node-b
out=$(ctl node-a migrate g2 --node node-b --wait) || die "migration after the refusals failed: $out"
guest_verify node-b g2
log PASS
