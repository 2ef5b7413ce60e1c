#!/bin/bash
# A host-model CPU: the VM created on node-a records node-a's CPU (QEMU's
# static expansion; under TCG, with no host CPU, of qemu64) in its spec and runs it as
# "-cpu base,<props>"; node-b, whose CPU has those features, is an
# eligible target; the VM arrives with the same recorded CPU and the
# same -cpu. A VM recording a feature this QEMU cannot give (avx512f:
# TCG has none) is refused with the feature named. (Two nodes whose CPUs
# differ, the case placement refuses, need KVM on two different hosts.)
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
two_agents

cpu_arg() { # NODE VM: the -cpu argument of its QEMU
	tr '\0' '\n' < "/proc/$(cat "$WORK/$1/state/vms/$2/qemu.pid")/cmdline" | grep -A1 -x -- -cpu | tail -n 1
}

vm_create node-a h1 64 "fill=8 profile=mix dirty=2 wss=4" "cpu_model: host-model"
rec=$(jq -S -c .cpu_host_model "$WORK/node-a/state/vms/h1/spec.json")
[ "$(echo "$rec" | jq length)" -gt 10 ] || die "no host-model CPU recorded: $rec"
echo "$rec" | jq -e '.sse2 == "on"' >/dev/null || die "the recorded CPU lacks sse2: $rec"
arg=$(cpu_arg node-a h1)
case "$arg" in base,*sse2=on*) ;; *) die "node-a runs -cpu $arg" ;; esac
ctl node-a -o json candidates h1 | jq -e '.[] | select(.name == "node-b") | .eligible' >/dev/null ||
	die "node-b is not eligible: $(ctl node-a -o json candidates h1)"

out=$(ctl node-a migrate h1 --wait) || die "migration failed: $out"
guest_verify node-b h1
[ "$(jq -S -c .cpu_host_model "$WORK/node-b/state/vms/h1/spec.json")" = "$rec" ] ||
	die "the recorded CPU changed on the way"
[ "$(cpu_arg node-b h1)" = "$arg" ] || die "node-b runs another -cpu: $(cpu_arg node-b h1)"
log "host-model CPU recorded ($(echo "$rec" | jq length) properties) and kept across the migration"

cat > "$WORK/avx.yaml" <<YAML
name: avx
memory_mib: 64
kernel: $GUEST_ELF
cpu_model: host-model
cpu_host_model: {sse2: "on", avx512f: "on"}
YAML
out=$(ctl node-a vm create -f "$WORK/avx.yaml" 2>&1) && die "a CPU this node lacks was started: $out"
echo "$out"
echo "$out" | grep -q "lacks 1 feature of the VM's host-model CPU: avx512f" || die "the refusal does not name avx512f"
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
