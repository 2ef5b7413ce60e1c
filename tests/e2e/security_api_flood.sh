#!/bin/bash
# Bounded listeners: 1,100 half-open HTTP connections on the TCP API (no
# token, request never finished), and 2,000 connections to the target's
# peer port from another address (127.0.0.2) that never send a handshake.
# ferryd serves at most its caps (API: 128 in all, 16 per address, 10 s
# idle; peer port: 64 handshakes in flight, 8 per address, the rest closed
# at once), so its descriptors and threads stay available: while both
# floods hang there, the unix-socket API answers within a second each
# time, and a migration started through it completes and verifies.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
FLOOD=$(dirname "$0")/../tools/flood.py

port_alloc PORT_API
agent_config node-a "$PORT_A" node-b "$PORT_B"
cat >> "$WORK/node-a.yaml" <<YAML
api_listen: 127.0.0.1:$PORT_API
YAML
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b
vm_create node-a g1 128 "fill=32 profile=text dirty=5 wss=16"

# Hold 1,100 half-open requests for up to 60 s (ended below).
coproc FL { python3 "$FLOOD" 127.0.0.1 "$PORT_API" 1100 --hold 60; }
read -r -t 60 line <&"${FL[0]}" || die "the flood did not report"
log "API flood: $line"
# The peer port: 2,000 silent connections from 127.0.0.2 (held 60 s).
mkfifo "$WORK/peerflood.fifo"
python3 "$FLOOD" 127.0.0.1 "$PORT_B" 2000 --hold 60 --send "" --from 127.0.0.2 --ignore-stdin \
	> "$WORK/peerflood.fifo" &
PF=$!
exec {PFD}<"$WORK/peerflood.fifo"
read -r -t 60 line <&"$PFD" || die "the peer flood did not report"
log "peer flood: $line"
# Whatever the kernel accepted, ferryd serves at most its cap.
n=$(ss -Htn state established "( sport = :$PORT_API )" | wc -l)
log "established on the API port: $n"
# The unix-socket API answers within a second, repeatedly.
for i in 1 2 3 4 5; do
	t0=$(date +%s%N)
	ctl node-a nodes >/dev/null || die "the unix-socket API did not answer during the flood"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$ms" -lt 1000 ] || die "the unix-socket API took $ms ms during the flood"
done
out=$(ctl node-a migrate g1 --node node-b --wait) || die "migration failed during the flood: $out"
echo "$out" | grep -q Succeeded || die "migration did not succeed: $out"
guest_verify node-b g1
grep -q "event=listening addr=127.0.0.1:$PORT_API tokens=0 tls=0 max_conns=128 per_ip=16" "$WORK/node-a.log" ||
	die "the API listener does not report its caps"
grep -q "event=handshake_refused peer_addr=127.0.0.2 .*too many handshakes in flight from this address" \
	"$WORK/node-b.log" || die "the peer port did not cap the flood's handshakes"
kill "$PF" 2>/dev/null
wait "$PF" 2>/dev/null
exec {PFD}<&-
exec {FL[1]}>&- # end the flood
wait "$FL_PID" 2>/dev/null
log PASS
