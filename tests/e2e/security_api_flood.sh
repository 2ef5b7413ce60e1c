#!/bin/bash
# Bounded listeners: 1,100 half-open HTTP connections on the TCP API (no
# token, request never finished). ferryd serves at most its caps (128 in
# all, 16 per address) and drops idle ones after 10 s, so its descriptors
# and threads stay available: while the flood hangs there, the unix-socket
# API answers within a second each time, and a migration started through
# it completes and the guest verifies.
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
log "flood: $line"
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
exec {FL[1]}>&- # end the flood
wait "$FL_PID" 2>/dev/null
log PASS
