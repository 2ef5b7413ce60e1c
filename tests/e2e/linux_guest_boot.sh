#!/bin/bash
# e2e: ferry's Linux test guest (docs/guest.md, "The Linux guest") boots
# under plain QEMU/TCG the three ways the migration tests use it, and its
# workload, heartbeat and verify work on each:
#
#   1. q35, UEFI (OVMF + a per-VM vars copy) -> systemd-boot on the ESP of
#      its virtio disk -> Linux; 2 vCPUs with MTTCG; a virtio data disk.
#      RAM and disk written at their rates, verify while writing, and
#      verify catches a corrupted page and a corrupted block;
#   2. q35, UEFI, booting from a SATA (AHCI) disk, data on virtio-scsi;
#   3. pc, BIOS, direct kernel boot (kernel + initrd), data on IDE.
#
#   linux_guest_boot.sh BUILD_DIR
BUILD=$1
. "$(dirname "$0")/guest_lib.sh"
guest_lib_init "$BUILD/guest/ferry-guest.elf" "$BUILD/guest/guest-serial"
. "$(dirname "$0")/linux_lib.sh"

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
for f in "$OVMF_CODE" "$OVMF_VARS"; do
	[ -r "$f" ] || { echo "SKIP: $f missing (package ovmf)"; exit 77; }
done
linux_guest_init
log "Linux guest: $LINUX_GUEST_DIR ($(linux_manifest kernel_package) $(linux_manifest kernel_version))"

# linux_start VM MACHINE [QEMU ARGS...]: 2 vCPUs, 512 MiB, MTTCG, the
# serial port on a socket plus a logfile, QMP; as guest_lib's guest_start.
linux_start() {
	local vm=$1 machine=$2 dir=$WORK/$1 i
	shift 2

	mkdir -p "$dir"
	T0_MS=$(date +%s%3N)
	qemu-system-x86_64 -accel tcg,thread=multi -machine "$machine" -smp 2 -m 512 \
		-nodefaults -display none "$@" \
		-chardev socket,id=ser0,path="$dir/serial.sock",server=on,wait=off,logfile="$dir/serial.log" \
		-serial chardev:ser0 \
		-qmp unix:"$dir/qmp.sock",server=on,wait=off \
		-no-reboot 2>"$dir/qemu.err" &
	QEMU_PID[$vm]=$!
	for i in $(seq 100); do
		[ -S "$dir/qmp.sock" ] && break
		kill -0 "${QEMU_PID[$vm]}" 2>/dev/null || die "$vm: QEMU exited at start: $(cat "$dir/qemu.err")"
		sleep 0.1 # no event before the socket exists
	done
	qmp_open "$vm"
}

uefi_args() { # VM: OVMF with the VM's own copy of the vars
	cp "$OVMF_VARS" "$WORK/$1-vars.fd"
	echo "-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
	echo "-drive if=pflash,format=raw,unit=1,file=$WORK/$1-vars.fd"
}

blockdev() { # NAME PATH FORMAT
	echo "-blockdev driver=$3,node-name=disk-$1,file.driver=file,file.node-name=file-$1,file.filename=$2"
}

# wait_ready VM: prints the READY line; logs the time from QEMU's start
# (linux_start sets T0_MS) to READY, to the 0.2 s the log is polled at
wait_ready() {
	local ready

	ready=$(guest_wait_log "$1" '^FERRY-GUEST READY' "$LINUX_BOOT_SECS") || exit 1
	log "$1: $ready" >&2
	log "$1: READY $(( $(date +%s%3N) - T0_MS )) ms after QEMU started" >&2
	echo "$ready"
}

# hb VM N FIELD: that field of the Nth newest heartbeat
hb() {
	guest_log "$1" | grep '^HB ' | tail -n "$2" | head -n1 | grep -o "$3=[0-9]*" | cut -d= -f2
}

# wait_hb VM [SEQ]: until a heartbeat newer than SEQ (none: any) (20 s)
wait_hb() {
	local deadline=$((SECONDS + 20)) after=${2:-0} seq

	while :; do
		seq=$(hb "$1" 1 seq)
		[ -n "$seq" ] && [ "$seq" -gt "$after" ] && return 0
		[ $SECONDS -lt $deadline ] || die "$1: no heartbeat after seq=$after"
		sleep 0.2 # the serial log has no event to wait on
	done
}

# ---- 1. q35, UEFI, virtio ---------------------------------------------------
boot=$(linux_guest_image u "fill=256 dirty=20 disk=2 diskws=64") || exit 1
data=$(linux_guest_data u 256 qcow2) || exit 1
# shellcheck disable=SC2046 # one argument per line
linux_start u q35 $(uefi_args u) \
	$(blockdev boot "$boot" raw) -device virtio-blk-pci,drive=disk-boot,id=dev-boot,bootindex=0 \
	$(blockdev data "$data" qcow2) -device virtio-blk-pci,drive=disk-data,id=dev-data
ready=$(wait_ready u) || exit 1
case $ready in
*" fill=256 pages=65536 dirty=20 wss=256 hb=1000 vcpus=2 os=linux disk=2 diskws=64 dev=vdb"*) ;;
*) die "unexpected READY line: $ready" ;;
esac
line=$(guest_wait_log u '^FERRY-GUEST DISK' 1) || exit 1
[ "$line" = "FERRY-GUEST DISK dev=vdb bus=virtio mib=256" ] || die "unexpected DISK line: $line"
ncpu=$(qmp u '{"execute":"query-cpus-fast"}' | grep -o '"cpu-index"' | wc -l)
[ "$ncpu" = 2 ] || die "QEMU has $ncpu vCPUs"

# Heartbeats advance, with the RAM and the disk written at about their
# rates (20 MB/s = 4883 pages/s, 2 MB/s = 3906 sectors/s) over 3 s.
wait_hb u 0
s1=$(hb u 1 seq)
wait_hb u $((s1 + 3))
seq1=$(hb u 4 seq) d1=$(hb u 4 dirtied) k1=$(hb u 4 disk_sectors) u1=$(hb u 4 uptime_ms)
seq2=$(hb u 1 seq) d2=$(hb u 1 dirtied) k2=$(hb u 1 disk_sectors) u2=$(hb u 1 uptime_ms)
ms=$((u2 - u1))
[ "$ms" -gt 0 ] || die "uptime does not advance ($u1 -> $u2)"
prate=$(( (d2 - d1) * 1000 / ms )) drate=$(( (k2 - k1) * 1000 / ms ))
log "u: heartbeats $seq1 -> $seq2 in $ms ms: $prate pages/s (want 4883), $drate sectors/s (want 3906)"
# Loose bounds: the host is shared with other tests; ferry-guest's own
# tests hold the exact rates.
[ "$prate" -gt 3400 ] && [ "$prate" -lt 5900 ] || die "RAM dirtied at $prate pages/s"
[ "$drate" -gt 2700 ] && [ "$drate" -lt 4700 ] || die "disk written at $drate sectors/s"

# verify while both keep writing
out=$(guest_cmd u verify "VERIFY " 180) || exit 1
log "u: $out"
[[ $out =~ ^VERIFY\ OK\ pages=65536\ sectors=[1-9][0-9]*$ ]] || die "verify: $out"
wait_hb u "$(hb u 1 seq)"
d3=$(hb u 1 dirtied)
[ "$d3" -gt "$d2" ] || die "dirtying stopped after verify"
out=$(guest_cmd u ping "PONG seq=") || exit 1
log "u: $out"

# verify fails on a corrupted page and a corrupted block (the workload off
# first, or it may rewrite them before verify looks).
guest_cmd u "dirty 0" "OK dirty=0" >/dev/null || exit 1
guest_cmd u "disk 0" "OK disk=0" >/dev/null || exit 1
guest_cmd u "corrupt 1000" "OK corrupt=1000" >/dev/null || exit 1
out=$("$GUEST_SERIAL" --socket "$WORK/u/serial.sock" --timeout 180 --send verify --expect "VERIFY ")
[ "$out" = "VERIFY FAIL page=1000 reason=csum bad=1" ] || die "verify after corrupt: $out"
out=$(guest_cmd u corruptdisk "OK corruptdisk=") || exit 1
lba=${out#OK corruptdisk=}
out=$("$GUEST_SERIAL" --socket "$WORK/u/serial.sock" --timeout 180 --send verify --expect "VERIFY ")
[ "$out" = "VERIFY FAIL page=1000 reason=csum bad=1 disk_bad=1" ] || die "verify after corruptdisk: $out"
log "u: corrupt page 1000 and sector $lba: verify failed as it should"
guest_stop u

# ---- 2. q35, UEFI, boot from SATA, data on virtio-scsi -----------------------
boot=$(linux_guest_image s "fill=64 disk=1") || exit 1
data=$(linux_guest_data s 128 raw) || exit 1
# shellcheck disable=SC2046
linux_start s q35 $(uefi_args s) \
	$(blockdev boot "$boot" raw) -device ide-hd,drive=disk-boot,bus=ide.0,id=dev-boot,bootindex=0 \
	-device virtio-scsi-pci,id=scsi0 \
	$(blockdev data "$data" raw) -device scsi-hd,drive=disk-data,bus=scsi0.0,id=dev-data
wait_ready s >/dev/null || exit 1
line=$(guest_wait_log s '^FERRY-GUEST DISK' 1) || exit 1
# sda or sdb: which SCSI host's disk gets a name first is up to the probe
[[ $line =~ ^FERRY-GUEST\ DISK\ dev=sd[ab]\ bus=scsi\ mib=128$ ]] || die "unexpected DISK line: $line"
wait_hb s "$(hb s 1 seq)"
out=$(guest_cmd s verify "VERIFY " 180) || exit 1
log "s: $out"
[[ $out =~ ^VERIFY\ OK\ pages=16384\ sectors=[1-9][0-9]*$ ]] || die "verify: $out"
guest_stop s

# ---- 3. pc, BIOS, direct kernel boot, data on IDE -----------------------------
data=$(linux_guest_data p 128 raw) || exit 1
# shellcheck disable=SC2046
linux_start p pc -kernel "$LINUX_KERNEL" -initrd "$LINUX_INITRD" \
	-append "$LINUX_BASE_OPTIONS fill=64 dirty=5 disk=1" \
	$(blockdev data "$data" raw) -device ide-hd,drive=disk-data,bus=ide.0,unit=0,id=dev-data
wait_ready p >/dev/null || exit 1
line=$(guest_wait_log p '^FERRY-GUEST DISK' 1) || exit 1
[ "$line" = "FERRY-GUEST DISK dev=sda bus=ata mib=128" ] || die "unexpected DISK line: $line"
wait_hb p "$(hb p 1 seq)"
out=$(guest_cmd p verify "VERIFY " 180) || exit 1
log "p: $out"
[[ $out =~ ^VERIFY\ OK\ pages=16384\ sectors=[1-9][0-9]*$ ]] || die "verify: $out"
guest_stop p
log "PASS"
