#!/bin/bash
# Strict input, through the binaries a user runs: bad REST bodies (unknown
# keys, wrong types, values out of range, names KubeVirt would refuse, a
# body where none is taken) are refused with 400 and the key's name, on the
# unix socket, over TCP with a token (its scheme in any case) and through
# the gateway; ferryctl refuses bad numbers, names and manifests before
# asking ferryd; every subcommand answers --help. None of it moves, stops
# or deletes the VM: it keeps running on its node, and no migration starts.
#
# Then the `migrate --wait` line on an 80-column terminal (a pty from
# `script`: its size set with stty, then unknown with COLUMNS=80): every
# redraw fits in 79 columns, and a guest that dirties faster than the
# copy is shown as "not converging".
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
command -v script >/dev/null || { echo "SKIP: script (util-linux) missing"; exit 77; }

port_alloc PORT_API
TOKEN=migrator-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
agent_config node-a "$PORT_A" node-b "$PORT_B"
cat >> "$WORK/node-a.yaml" <<YAML
api_listen: 127.0.0.1:$PORT_API
tokens:
  - {name: ops, token: $TOKEN, role: migrator}
YAML
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b
vm_create node-a g1 128 "fill=32 profile=random dirty=20 wss=16"

# api METHOD PATH BODY [curl args...]: the status; the body in $WORK/resp.
api() {
	local m=$1 p=$2 b=$3
	shift 3
	curl -s -m 10 -X "$m" -H 'Content-Type: application/json' --data-binary "$b" \
		-o "$WORK/resp" -w '%{http_code}' "$@"
}
unix_api() { api "$1" "$2" "$3" --unix-socket "$WORK/node-a/api.sock" "http://ferryd$2"; }
tcp_api() { # SCHEME METHOD PATH BODY
	api "$2" "$3" "$4" -H "Authorization: $1 $TOKEN" "http://127.0.0.1:$PORT_API$3"
}

# expect_400 STATUS MESSAGE-FRAGMENT: the answer was 400 invalid naming it.
expect_400() {
	local st=$1 want=$2 code msg
	code=$(jq -r .error.code "$WORK/resp" 2>/dev/null)
	msg=$(jq -r .error.message "$WORK/resp" 2>/dev/null)
	[ "$st" = 400 ] && [ "$code" = invalid ] ||
		die "want 400 invalid ($want), got $st: $(cat "$WORK/resp")"
	[[ $msg == *"$want"* ]] || die "message '$msg' does not say '$want'"
	log "refused: $msg"
}

log "--- REST bodies on the unix socket"
dns='is not a valid name: a DNS-1123 label is at most 63 characters'
while IFS='|' read -r method path body want; do
	[ -n "$method" ] || continue
	expect_400 "$(unix_api "$method" "$path" "$body")" "$want"
done <<EOF
POST|/v1/migrations|{"vm": 5}|vm must be a string, not an integer
POST|/v1/migrations|{"vm": "g1", "nodee": "node-b"}|unknown key "nodee"
POST|/v1/migrations|{"vm": "g1", "node": ["node-b"]}|node must be a string, not a list
POST|/v1/migrations|{"vm": "g1", "progressTimeoutS": "five"}|progressTimeoutS must be an integer, not a string
POST|/v1/migrations|{"vm": "g1", "progressTimeoutS": 0}|progressTimeoutS must be between 1 and 86400 (got 0)
POST|/v1/migrations|{"vm": "g1", "completionTimeoutSPerGiB": -1}|completionTimeoutSPerGiB must be between 1 and 86400 (got -1)
POST|/v1/migrations|{"vm": "g1", "multifdChannels": 4.5}|multifdChannels must be an integer, not a number
POST|/v1/migrations|{"vm": "g1", "compress": 1}|compress must be true or false, not an integer
POST|/v1/migrations|{"vm": "g1", "paused": "no"}|paused must be true or false, not a string
POST|/v1/migrations|{"vm": "Bad_Name"}|vm: "Bad_Name" $dns
POST|/v1/migrations|{"vm": "g1", "name": "Bad_Name"}|name: "Bad_Name" $dns
POST|/v1/migrations|{"node": "node-b"}|a migration needs "vm"
POST|/v1/migrations|{"vm": "g1"} {"vm": "g1"}|request body:1: invalid JSON
POST|/v1/migrations|["g1"]|request body is not a JSON object
POST|/v1/nodes/node-b/migrations|{"vm": "g1", "nodee": "node-a"}|unknown key "nodee"
POST|/v1/vms|{"name": 5}|name must be a string, not an integer
POST|/v1/vms|{"name": "Bad_Name"}|name: "Bad_Name" $dns
POST|/v1/vms|{"name": "g9", "memroy_mib": 64}|unknown key "memroy_mib"
POST|/v1/vms|{"name": "g9", "memory_mib": "64"}|memory_mib must be an integer, not a string
POST|/v1/vms/g1/stop|{"force": true}|unknown key "force": this request takes no body
POST|/v1/vms/g1/resume|{"x": 1}|unknown key "x": this request takes no body
DELETE|/v1/vms/g1|{"force": true}|unknown key "force": this request takes no body
DELETE|/v1/migrations/g1|{"x": 1}|unknown key "x": this request takes no body
EOF
# An empty object is no option: stop and friends still take one (and a
# GET ignores a body as before).
[ "$(unix_api GET /v1/vms/g1 '{}')" = 200 ] || die "GET with {} failed"

log "--- over TCP: the Bearer scheme in any case"
for scheme in Bearer bearer BEARER bEaReR; do
	[ "$(tcp_api "$scheme" GET /v1/whoami '')" = 200 ] || die "scheme $scheme refused: $(cat "$WORK/resp")"
	[ "$(jq -r .role "$WORK/resp")" = migrator ] || die "scheme $scheme: $(cat "$WORK/resp")"
done
[ "$(tcp_api 'bearer  ' GET /v1/whoami '')" = 200 ] || die "two spaces after the scheme: $(cat "$WORK/resp")"
[ "$(tcp_api Basic GET /v1/whoami '')" = 401 ] || die "a Basic scheme was accepted"
expect_400 "$(tcp_api bearer POST /v1/migrations '{"vm": "g1", "nodee": "node-b"}')" 'unknown key "nodee"'

log "--- ferryctl"
# refuse WANT ARGS...: ferryctl exits 2 and says WANT, before asking ferryd.
refuse() {
	local want=$1 out rc
	shift
	out=$(ctl node-a "$@" 2>&1)
	rc=$?
	[ $rc = 2 ] || die "ferryctl $* exited $rc, not 2: $out"
	[[ $out == *"$want"* ]] || die "ferryctl $*: '$out' does not say '$want'"
	log "refused: $(echo "$out" | head -n 1)"
}
refuse "ferryctl: --progress-timeout: 'five' is not a number" migrate g1 --progress-timeout five
refuse "ferryctl: --progress-timeout: 0 is out of range (allowed: 1..86400)" migrate g1 --progress-timeout 0
refuse "ferryctl: --progress-timeout: -5 is out of range (allowed: 1..86400)" migrate g1 --progress-timeout=-5
refuse "ferryctl: --completion-timeout-per-gib: 0 is out of range (allowed: 1..86400)" \
	migrate g1 --completion-timeout-per-gib 0
refuse "ferryctl: --escalate-after: '10s' is not a number" migrate g1 --escalate-after 10s
refuse "ferryctl: --multifd: 65 is out of range (allowed: 0..64)" migrate g1 --multifd 65
refuse "ferryctl: --max-bandwidth: -1 is out of range (allowed: 0..1048576)" migrate g1 --max-bandwidth=-1
refuse "ferryctl: --downtime-step: '' is not a number" migrate g1 --downtime-step ''
refuse "ferryctl: unknown option --nodee" migrate g1 --nodee node-b
refuse "ferryctl: VM: \"Bad_Name\" $dns" migrate Bad_Name
refuse "ferryctl: unexpected argument 'g2'" migrate g1 g2
refuse "ferryctl: unknown option --force" vm stop g1 --force
refuse "ferryctl: unknown option --all" candidates g1 --all
# Manifests and specs: the file, the line and the key.
printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\nmetadata:\n  name: mig-1\nspec:\n  vmiNmae: g1\n' \
	> "$WORK/typo.yaml"
printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\nmetadata:\n  name: Bad_Name\nspec:\n  vmiName: g1\n' \
	> "$WORK/badname.yaml"
printf '{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration", "metadata": {"name": "m"}, "spec": {"vmiName": 5}}\n' \
	> "$WORK/number.json"
printf 'name: Bad_Name\nmemory_mib: 64\n' > "$WORK/badvm.yaml"
for f in "typo.yaml:6: unknown key \"spec.vmiNmae\"" "badname.yaml:4: metadata.name: \"Bad_Name\" $dns" \
	"number.json: spec.vmiName must be a string, not an integer"; do
	out=$(ctl node-a create -f "$WORK/${f%%:*}" 2>&1) && die "create -f ${f%%:*} was accepted"
	[[ $out == *"$WORK/$f"* ]] || die "create -f: '$out' does not say '$f'"
	log "refused: $out"
done
out=$(ctl node-a vm create -f "$WORK/badvm.yaml" 2>&1) && die "vm create accepted Bad_Name"
[[ $out == *"badvm.yaml:1: name: \"Bad_Name\" $dns"* ]] || die "vm create: $out"
# Every subcommand answers --help and -h with its usage, on stdout, exit 0.
for cmd in vm migrate migrate-cancel describe get create delete candidates nodes pki; do
	for h in --help -h; do
		out=$(ctl node-a "$cmd" "$h" 2>&1) || die "ferryctl $cmd $h failed: $out"
		[[ $out == "usage: ferryctl $cmd"* ]] || die "ferryctl $cmd $h: $out"
	done
done
out=$(ctl node-a migrate g1 --node node-b --help) || die "migrate g1 --help failed"
[[ $out == *"--progress-timeout S"*"1..86400"* ]] || die "migrate --help lacks the ranges: $out"

log "--- nothing moved"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
[ "$(vm_json node-a g1 | jq -r .node)" = node-a ] || die "g1 is not on node-a"
[ "$(ctl node-a -o json get vmim | jq length)" = 0 ] || die "a migration started: $(ctl node-a get vmim)"
[ "$(ctl node-b -o json get vmim | jq length)" = 0 ] || die "node-b saw a migration"
[ "$(ctl node-a -o json vm list | jq length)" = 1 ] || die "a VM was created: $(ctl node-a vm list)"
# -o before or after the command; a table by default.
[ "$(ctl node-a vm list -o json | jq -r '.[0].name')" = g1 ] || die "vm list -o json"
ctl node-a vm list --output=yaml | grep -q 'name: "g1"' || die "vm list -o yaml: $(ctl node-a vm list -o yaml)"
ctl node-a -o json vm list -o table | grep -q '^NAME ' || die "vm list -o table: $(ctl node-a vm list -o table)"
ctl node-a candidates g1 | grep -q '^NODE ' || die "candidates is not a table by default"
refuse "ferryctl: -o must be table, json or yaml" vm list -o xml
guest_verify node-a g1

# visible_lines FILE: each redraw of a typescript on its own line, with the
# escape sequences ferryctl writes (ESC [ K) taken out.
visible_lines() { tr '\r' '\n' < "$1" | sed 's/\x1b\[K//g' | grep -v '^$'; }
# progress_lines FILE: the redraws (script's own header and footer, and the
# outcome that follows the redraws, "migration ID: PHASE" and indented
# lines, are not).
progress_lines() { visible_lines "$1" | grep -v '^Script started \|^Script done \|^migration \|^  '; }
# check_width FILE MIN: at least MIN progress redraws, each at most 79 wide.
check_width() {
	local f=$1 min=$2 n long
	n=$(progress_lines "$f" | wc -l)
	long=$(progress_lines "$f" | awk 'length($0) > 79')
	[ -z "$long" ] || die "lines wider than 79 columns: $long"
	[ "$n" -ge "$min" ] || die "only $n progress lines in $f: $(visible_lines "$f")"
	log "$n progress lines, the widest $(progress_lines "$f" | awk '{ if (length($0) > m) m = length($0) } END { print m }') columns"
}

log "--- migrate --wait on an 80-column pty: a guest that outruns the copy"
# 4 MiB/s against a guest asked to dirty 20 MB/s of random pages (under
# TCG it manages about 9): it cannot converge. The progress timeout ends
# it if the cancel below did not.
script -qfec "stty cols 80 rows 24; exec $FERRYCTL --server $WORK/node-a/api.sock migrate g1 --node node-b --wait --max-bandwidth 4 --progress-timeout 60" \
	"$WORK/ts1" > /dev/null 2>&1 &
spid=$!
deadline=$(($(date +%s) + 90))
until tr '\r' '\n' < "$WORK/ts1" 2>/dev/null | grep -q "not converging"; do
	[ "$(date +%s)" -le "$deadline" ] || die "never said not converging: $(visible_lines "$WORK/ts1" | tail -n 5)"
	kill -0 $spid 2>/dev/null || die "migrate --wait ended early: $(visible_lines "$WORK/ts1" | tail -n 5)"
	sleep 0.2 # polling the pty's transcript
done
ctl node-a migrate-cancel g1 || die "cancel failed"
for i in $(seq 1 300); do
	kill -0 $spid 2>/dev/null || break
	sleep 0.1 # waiting for ferryctl to print the outcome
done
kill -0 $spid 2>/dev/null && die "migrate --wait did not end after the cancel"
wait $spid
visible_lines "$WORK/ts1" | tail -n 3
check_width "$WORK/ts1" 3
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a after the cancel"

log "--- migrate --wait with no terminal size but COLUMNS=80: it converges"
serial=$(vm_json node-a g1 | jq -r .serialSocket)
"$GUEST_SERIAL" --socket "$serial" --timeout 10 --send "dirty 2" --expect "OK dirty=2" >/dev/null ||
	die "cannot slow the guest down"
script -qfec "stty cols 0 rows 0; COLUMNS=80 exec $FERRYCTL --server $WORK/node-a/api.sock migrate g1 --node node-b --wait --max-bandwidth 16" \
	"$WORK/ts2" > /dev/null 2>&1 || die "migration failed: $(visible_lines "$WORK/ts2" | tail -n 5)"
visible_lines "$WORK/ts2" | tail -n 12
check_width "$WORK/ts2" 2
visible_lines "$WORK/ts2" | grep -q "Succeeded" || die "no outcome printed"
guest_verify node-b g1
log PASS
