#!/bin/bash
# Watching migrations: the server-sent event stream follows one to its end
# (several events, the last one Succeeded), /metrics counts it, and
# ferryctl prints it as YAML.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
two_agents

vm_create node-a g1 256 "fill=64 profile=random dirty=2 wss=16"
id=$(ctl node-a -o json migrate g1 --node node-b --max-bandwidth 16 | jq -r .id)
timeout 120 curl -sN --unix-socket "$WORK/node-a/api.sock" "http://ferryd/v1/migrations/$id/events" \
	> "$WORK/events.txt" || die "event stream failed"
n=$(grep -c "^event: migration" "$WORK/events.txt")
[ "$n" -ge 3 ] || die "only $n events"
last=$(grep "^data: " "$WORK/events.txt" | tail -1 | sed 's/^data: //' | jq -r .phase)
[ "$last" = Succeeded ] || die "the stream ended on $last"
log "$n events, ending $last"
curl -s --unix-socket "$WORK/node-a/api.sock" http://ferryd/metrics > "$WORK/metrics.txt"
grep -q '^ferry_migrations{node="node-a",role="source",phase="Succeeded"} 1$' "$WORK/metrics.txt" ||
	die "metrics do not count the migration: $(grep Succeeded "$WORK/metrics.txt")"
grep -q '^ferry_migration_bytes_total{node="node-a",kind="raw"} [1-9]' "$WORK/metrics.txt" || die "no byte counter"
ctl node-a -o yaml get vmim | grep -q '^  phase: "Succeeded"$' || die "no YAML output"
guest_verify node-b g1
ctl node-b vm stop g1 || die "vm stop failed"
[ "$(vm_json node-b g1 | jq -r .state)" = Stopped ] || die "g1 not Stopped"
[ "$(qemu_count)" = 0 ] || die "QEMU still running after stop"
log PASS
