#!/bin/bash
# UEFI variables travel with the VM. A q35 VM with firmware uefi and 2
# vCPUs boots OVMF from an empty virtio disk (nothing to boot: OVMF ends in
# its shell, on the serial console). The shell writes a non-volatile
# variable (`setvar`), which OVMF stores in the VM's variables file. The VM
# migrates to node-b (pre-copy, its disk mirrored) and back to node-a
# (post-copy at once). After each hop the variables file on the new node
# has exactly the bytes the source's had, and after the first the shell
# there reads the variable back.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] && [ -r /usr/share/OVMF/OVMF_VARS_4M.fd ] ||
	{ echo "SKIP: ovmf not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
two_agents

GUID=5f3e7a1c-2b4d-4e6f-8a9b-0c1d2e3f4a5b
# A line to the UEFI shell on the serial socket (typed slowly: the UART
# has a small FIFO), then the output until a regex matches, or exit 3.
cat > "$WORK/shell.py" <<'PY'
import re, socket, sys, time
path, secs, want, line = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
for ch in line + "\r":
    s.sendall(ch.encode())
    time.sleep(0.02)
s.settimeout(0.5)
out, end = "", time.time() + secs
while time.time() < end:
    try:
        d = s.recv(4096)
    except socket.timeout:
        d = b"-"
    if not d:
        break
    out += d.decode("latin-1") if d != b"-" else ""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out)
    if re.search(want, text):
        print(text.strip()[-300:])
        sys.exit(0)
print("no match for %r in: %r" % (want, out[-500:]), file=sys.stderr)
sys.exit(3)
PY
shell() { # NODE LINE REGEX
	local sock
	sock=$(vm_json "$1" u1 | jq -r .serialSocket)
	python3 "$WORK/shell.py" "$sock" 30 "$3" "$2" || die "$1: the UEFI shell did not answer \"$2\""
}
vars() { echo "$WORK/$1/state/disks/u1/efivars.fd"; }
has_mark() { python3 -c 'import sys; sys.exit(0 if "FerryMark".encode("utf-16-le") in open(sys.argv[1], "rb").read() else 1)' "$1"; }

truncate -s 16M "$WORK/u1.raw"
cat > "$WORK/u1.yaml" <<YAML
name: u1
memory_mib: 256
vcpus: 2
machine: q35
firmware: uefi
serial: true
disks:
  - {name: root, path: $WORK/u1.raw, format: raw, bus: virtio}
YAML
qemu_give_paths "path: $WORK/u1.raw"
ctl node-a vm create -f "$WORK/u1.yaml" || die "vm create failed"
[ "$(sha256sum < "$(vars node-a)")" = "$(sha256sum < /usr/share/OVMF/OVMF_VARS_4M.fd)" ] ||
	die "a new VM's variables are not the template's"
deadline=$(($(date +%s) + 180))
until grep -q "Shell>" "$WORK/node-a/state/vms/u1/serial.log" 2>/dev/null; do
	[ "$(date +%s)" -le "$deadline" ] || die "OVMF did not reach its shell: $(tail -c 300 "$WORK/node-a/state/vms/u1/serial.log")"
	sleep 0.5 # polling the serial log: the shell prints no event
done
log "OVMF shell up on node-a"
shell node-a "setvar FerryMark -guid $GUID -nv -bs -rt =\"ferry-nvram-ok\"" 'Shell> *$' >/dev/null
deadline=$(($(date +%s) + 30))
until has_mark "$(vars node-a)"; do
	[ "$(date +%s)" -le "$deadline" ] || die "the variable never reached node-a's variables file"
	sleep 0.2 # polling the file: OVMF writes it through pflash
done
sum=$(sha256sum < "$(vars node-a)")
log "variable written on node-a: $sum"

out=$(ctl node-a migrate u1 --node node-b --wait) || die "migration to node-b failed: $out"
[ "$(sha256sum < "$(vars node-b)")" = "$sum" ] || die "node-b's variables file differs from node-a's"
[ ! -e "$(vars node-a)" ] || die "node-a kept the variables of a VM that left"
shell node-b "setvar FerryMark -guid $GUID" '66 65 72 72 79 2D 6E 76 72 61 6D 2D 6F 6B'
log "node-b: the variable is there, the file identical"

id=$(ctl node-b -o json migrate u1 --node node-a --post-copy-now | jq -r .id)
mig_wait_phase node-b "$id" Succeeded 180
grep -q "event=post_copy_started" "$WORK/node-b.log" || die "the way back never switched to post-copy"
ctl node-a vm stop u1 >/dev/null || die "stop on node-a failed"
[ "$(sha256sum < "$(vars node-a)")" = "$sum" ] || die "after post-copy node-a's variables file differs"
ctl node-a vm delete u1 >/dev/null || die "delete failed"
[ ! -e "$(vars node-a)" ] || die "the variables file outlived the VM's delete"
assert_no_migration_files node-a
assert_no_migration_files node-b
log PASS
