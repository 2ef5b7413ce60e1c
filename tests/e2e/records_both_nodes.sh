#!/bin/bash
# One record per migration, the same on both nodes, and no rows left behind:
#  - a failed `vm create` (a missing kernel; a kernel QEMU cannot boot)
#    leaves no row;
#  - after a migration, describe on the source and on the target show the
#    same VMIM name, target address, total time (> 0) and guest pause; the
#    source keeps no Departed row, and `get vmim` on the target shows the
#    name, not the id;
#  - a cancelled migration has a total time > 0, the same reason and who
#    cancelled on both nodes, and the target lists no Stopped row for it
#    (nor counts one in ferry_vms); a cancel through the other node's
#    gateway names the caller and that node; a progress timeout says so on
#    both;
#  - history comes back newest first, each entry with its start, after
#    both agents restart.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

metrics() { curl -sf --unix-socket "$WORK/$1/api.sock" http://ferry/metrics; }
# get vmi lists the cluster: a row of this node is one whose node is it.
has_row() { ctl "$1" -o json get vmi | jq -e --arg n "$2" --arg node "$1" 'any(.[]; .name == $n and .node == $node)' >/dev/null; }
rec() { ctl "$1" -o json describe vmi "$2" | jq -c '.migrationState'; }

# ---- a failed create leaves nothing --------------------------------------
cat > "$WORK/bad1.yaml" <<YAML
name: bad1
memory_mib: 64
kernel: $WORK/no-such-kernel.elf
YAML
out=$(ctl node-a vm create -f "$WORK/bad1.yaml" 2>&1) && die "a VM with a missing kernel was created"
log "missing kernel: $out"
echo "$out" | grep -q "no-such-kernel.elf" || die "the refusal does not name the kernel: $out"
has_row node-a bad1 && die "a refused create left a row"
: > "$WORK/empty-kernel.elf"
chmod 644 "$WORK/empty-kernel.elf"
sed 's/bad1/bad2/; s|no-such-kernel.elf|empty-kernel.elf|' "$WORK/bad1.yaml" > "$WORK/bad2.yaml"
out=$(ctl node-a vm create -f "$WORK/bad2.yaml" 2>&1) && die "a VM with an empty kernel was created"
log "unbootable kernel: $out"
has_row node-a bad2 && die "a create whose QEMU failed left a row: $(ctl node-a get vmi)"
[ ! -e "$WORK/node-a/state/vms/bad2" ] || die "a failed create left its run dir"

# ---- a migration: the same record on both nodes ---------------------------
vm_create node-a g1 128 "fill=48 profile=text dirty=5 wss=32"
out=$(ctl node-a migrate g1 --node node-b --wait) || die "migration failed: $out"
echo "$out"
src=$(rec node-a g1)
tgt=$(rec node-b g1)
log "source record: $src"
log "target record: $tgt"
for f in id name targetNodeAddress totalMs pauseMs startTimestamp endTimestamp phase pageCoding; do
	[ "$(echo "$src" | jq -c ".$f")" = "$(echo "$tgt" | jq -c ".$f")" ] ||
		die "$f differs: source $(echo "$src" | jq -c ".$f"), target $(echo "$tgt" | jq -c ".$f")"
done
[ "$(echo "$tgt" | jq -r '.pageCoding.pages // 0')" -gt 0 ] || die "the target's record lacks the pages: $tgt"
name=$(echo "$src" | jq -r .name)
[[ $name =~ ^migrate-g1-[0-9a-f]{5}$ ]] || die "the migration has no VMIM name: $name"
[ "$(echo "$tgt" | jq -r .targetNodeAddress)" = "127.0.0.1:$PORT_B" ] || die "target address: $tgt"
[ "$(echo "$tgt" | jq -r .totalMs)" -gt 0 ] || die "total time 0 on the target"
[ "$(echo "$tgt" | jq -r .pauseMs)" -ge 0 ] || die "no guest pause on the target"
has_row node-a g1 && die "node-a keeps a row for g1, which left"
[ "$(ctl node-a -o json describe vmi g1 | jq -r .node)" = node-b ] || die "node-a's describe does not say g1 left for node-b"
ctl node-b get vmim | grep -q "^$name " || die "get vmim on node-b does not show $name: $(ctl node-b get vmim)"
{
	echo "=== ferryctl describe vmi g1 on node-a (source) ==="
	ctl node-a describe vmi g1
	echo "=== ferryctl describe vmi g1 on node-b (target) ==="
	ctl node-b describe vmi g1
	echo "=== ferryctl get vmim on node-b ==="
	ctl node-b get vmim
} | tee "$WORK/transcript.txt"
grep -q "Target Node Address: *127.0.0.1:$PORT_B" "$WORK/transcript.txt" || die "describe lacks the address"
[ "$(grep -c "Migration Name: *$name" "$WORK/transcript.txt")" = 2 ] || die "describe lacks the name on a node"
grep -q "Guest Pause: *-1" "$WORK/transcript.txt" && die "a pause of -1 is shown"

# ---- a cancelled migration -------------------------------------------------
vm_create node-a g2 256 "fill=160 profile=random dirty=10 wss=64"
id2=$(ctl node-a -o json migrate g2 --node node-b --max-bandwidth 16 | jq -r .id)
mig_wait_bytes node-a "$id2" $((16 << 20)) 60
ctl node-a migrate-cancel g2 || die "cancel refused"
mig_wait_phase node-a "$id2" Failed 60
mig_wait_phase node-b "$id2" Failed 30
src=$(mig_json node-a "$id2")
tgt=$(mig_json node-b "$id2")
log "cancelled, source: $(echo "$src" | jq -c '{name, totalMs, pauseMs, failureReason, cancelledBy, abortStatus}')"
log "cancelled, target: $(echo "$tgt" | jq -c '{name, totalMs, pauseMs, failureReason, cancelledBy, abortStatus}')"
for f in name totalMs failureReason cancelledBy abortStatus targetNodeAddress; do
	[ "$(echo "$src" | jq -c ".$f")" = "$(echo "$tgt" | jq -c ".$f")" ] ||
		die "$f differs: source $(echo "$src" | jq -c ".$f"), target $(echo "$tgt" | jq -c ".$f")"
done
[ "$(echo "$tgt" | jq -r .totalMs)" -gt 100 ] || die "a cancelled migration's total time: $tgt"
echo "$tgt" | jq -r .failureReason | grep -q cancel || die "the target's reason does not say cancelled: $tgt"
echo "$tgt" | jq -r .cancelledBy | grep -q "admin" || die "who cancelled is not recorded: $tgt"
echo "$tgt" | jq -e 'has("pauseMs") | not' >/dev/null || die "a migration that did not pause shows a pause: $tgt"
has_row node-b g2 && die "node-b lists g2 after its inbound migration was cancelled: $(ctl node-b get vmi)"
metrics node-b | grep -q '^ferry_vms{node="node-b",state="Stopped"} 0$' || die "ferry_vms counts a Stopped VM on node-b"
echo "=== ferryctl describe vmi g2 on node-b (target of the cancelled migration) ==="
ctl node-b describe vmi g2 | tee "$WORK/describe-g2.txt"
grep -q "Guest Pause: *n/a" "$WORK/describe-g2.txt" || die "describe does not say n/a for no pause"
grep -q "Cancelled By: *root@unix (admin)" "$WORK/describe-g2.txt" || die "describe lacks who cancelled"
guest_verify node-a g2

# ---- cancelled through the other node's gateway: who, via which node ---------
id4=$(ctl node-a -o json migrate g2 --node node-b --max-bandwidth 16 | jq -r .id)
mig_wait_bytes node-a "$id4" $((8 << 20)) 60
curl -sf --unix-socket "$WORK/node-b/api.sock" -X DELETE "http://ferry/v1/nodes/node-a/migrations/$id4" >/dev/null ||
	die "cancel through node-b's gateway refused"
mig_wait_phase node-a "$id4" Failed 60
mig_wait_phase node-b "$id4" Failed 30
for n in node-a node-b; do
	by=$(mig_json $n "$id4" | jq -r .cancelledBy)
	[ "$by" = "root@unix (admin) via node-b" ] || die "$n: cancelledBy through the gateway: $by"
done

# ---- a progress timeout: the policy cancelled, on both nodes -------------------
# Dirtying 40 MB/s against an 8 MiB/s cap: no new low once the first pass is done.
vm_create node-a g3 128 "fill=64 profile=random dirty=40 wss=64"
id3=$(ctl node-a -o json migrate g3 --node node-b --max-bandwidth 8 --progress-timeout 3 | jq -r .id)
mig_wait_phase node-a "$id3" Failed 120
mig_wait_phase node-b "$id3" Failed 30
for n in node-a node-b; do
	m=$(mig_json $n "$id3")
	log "progress timeout on $n: $(echo "$m" | jq -c '{totalMs, failureReason, cancelledBy}')"
	[ "$(echo "$m" | jq -r .cancelledBy)" = "progress timeout" ] || die "$n: cancelledBy: $m"
	echo "$m" | jq -r .failureReason | grep -q "no progress for 3 s" || die "$n: reason: $m"
done

# ---- history, newest first, after a restart ----------------------------------
ctl node-b migrate g1 --node node-a --wait >/dev/null || die "the way back failed"
agent_kill node-a TERM
agent_kill node-b TERM
agent_start node-a
agent_start node-b
for n in node-a node-b; do
	ts=$(ctl $n -o json get vmim | jq -r '.[].startTimestamp')
	[ "$(echo "$ts" | grep -c .)" -ge 3 ] || die "$n lost history: $ts"
	echo "$ts" | grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' && die "$n: an entry without a start: $ts"
	[ "$ts" = "$(echo "$ts" | sort -r)" ] || die "$n: history not newest first after a restart: $ts"
done
ctl node-a describe vmi g1 | tee "$WORK/describe-a.txt"
first=$(sed -n '/Migration History:/{n;p}' "$WORK/describe-a.txt")
echo "$first" | grep -q "node-b -> node-a" || die "describe's history does not start with the newest: $first"
log PASS
