#!/bin/bash
# e2e: the test guest's disk workload. On a raw and a qcow2 image, attached
# the way ferry attaches a VM's disks (-blockdev disk-NAME/file-NAME,
# ide-hd on ide.N, -nodefaults), the guest finds its ATA disk (past a
# CD-ROM in the qcow2 case), writes stamped sectors at the set rate, its
# verify reads them all back, a corrupted sector makes verify fail, and the
# stamps are on the image after QEMU quits. Then a plain QEMU migration
# with the image shared: the generation table moves with RAM, the disk
# stays, and verify on the target passes.
#
#   guest_disk.sh GUEST_ELF GUEST_SERIAL
. "$(dirname "$0")/guest_lib.sh"
guest_lib_init "$@"
command -v qemu-img >/dev/null || { echo "SKIP: qemu-img not installed"; exit 77; }

APPEND="fill=32 disk=2 diskws=16 hb=500"
SECTOR_MAGIC=1262768710          # "FRDK" as a little-endian u32

# hb VM N FIELD: FIELD of the N-th last heartbeat in VM's serial log
hb() {
	guest_log "$1" | grep '^HB ' | tail -n "$2" | head -n1 |
		grep -o " $3=[0-9]*" | cut -d= -f2
}

# wait_hb_after VM SEQ: waits (up to 10 s) for a heartbeat newer than SEQ
wait_hb_after() {
	local deadline=$((SECONDS + 10)) seq

	while :; do
		seq=$(hb "$1" 1 seq)
		[ -n "$seq" ] && [ "$seq" -gt "$2" ] && return 0
		[ $SECONDS -lt $deadline ] || die "$1: no heartbeat after seq=$2"
		sleep 0.1
	done
}

# disk_rate VM: sectors/s between two heartbeats a second apart, both
# printed after the call
disk_rate() {
	local seq s1 u1

	seq=$(hb "$1" 1 seq)
	wait_hb_after "$1" "${seq:-0}"
	seq=$(hb "$1" 1 seq)
	s1=$(hb "$1" 1 disk_sectors) u1=$(hb "$1" 1 uptime_ms)
	wait_hb_after "$1" $((seq + 1))
	echo $(( ($(hb "$1" 1 disk_sectors) - s1) * 1000 / ($(hb "$1" 1 uptime_ms) - u1) ))
}

# disk_args FORMAT IMAGE BUS UNIT: a disk as engine/qemu_cmdline.c adds it
disk_args() {
	echo "-blockdev driver=$1,node-name=disk-d0,file.driver=file,file.node-name=file-d0,file.filename=$2" \
		"-device ide-hd,drive=disk-d0,bus=ide.$3,unit=$4,id=dev-d0"
}

# stamped IMAGE: "<stamped sectors> <of them at the wrong LBA>" in the
# working set (the first 16 MiB) of a raw image, from each sector's first
# two words
stamped() {
	od -A d -v -N $((16 << 20)) -t u4 -w512 "$1" |
		awk -v m=$SECTOR_MAGIC '$2 == m { n++; if ($3 != $1 / 512) bad++ }
			END { print n + 0, bad + 0 }'
}

check_format() {
	local fmt=$1 bus=$2 unit=$3 vm=$1 img=$WORK/$1.img line rate out n lba
	shift 3

	qemu-img create -q -f "$fmt" "$img" 128M || die "qemu-img create $fmt"
	# shellcheck disable=SC2046 # disk_args is a list of words
	guest_start "$vm" 256 "$APPEND" -nodefaults $(disk_args "$fmt" "$img" "$bus" "$unit") "$@"
	line=$(guest_wait_log "$vm" '^FERRY-GUEST READY' 60) || exit 1
	log "$vm: $line"
	case $line in
	*" disk=2 diskws=16 diskoff=0 diskprofile=mix diskmix=0,50,50") ;;
	*) die "$vm: unexpected READY line: $line" ;;
	esac
	line=$(guest_wait_log "$vm" '^FERRY-GUEST DISK' 1) || exit 1
	log "$vm: $line"
	case $line in
	"FERRY-GUEST DISK ide=$bus.$unit sectors=262144 mib=128 lba48=1 mult=16 pio=32") ;;
	*) die "$vm: guest found the wrong disk: $line" ;;
	esac

	# 2 MB/s is 3906 sectors/s; heartbeats are only 20 ms exact (one tick)
	rate=$(disk_rate "$vm") || exit 1
	log "$vm: writing $rate sectors/s (want ~3906)"
	[ "$rate" -gt 3500 ] && [ "$rate" -lt 4300 ] || die "$vm: disk at $rate sectors/s"

	out=$(guest_cmd "$vm" verify "VERIFY " 60) || exit 1
	log "$vm: $out"
	[[ $out =~ ^"VERIFY OK pages=8192 sectors="[1-9][0-9]*$ ]] || die "$vm: verify: $out"

	# The rate changes at run time; 0 stops the writes.
	guest_cmd "$vm" "diskkbps 500" "OK diskkbps=500" >/dev/null || exit 1
	rate=$(disk_rate "$vm") || exit 1
	log "$vm: at diskkbps 500: $rate sectors/s (want ~977)"
	[ "$rate" -gt 850 ] && [ "$rate" -lt 1100 ] || die "$vm: disk at $rate sectors/s"
	guest_cmd "$vm" "disk 0" "OK disk=0" >/dev/null || exit 1
	out=$(guest_cmd "$vm" verify "VERIFY " 60) || exit 1
	log "$vm: $out"
	[[ $out =~ ^"VERIFY OK pages=8192 sectors="[1-9][0-9]*$ ]] || die "$vm: verify: $out"
	n=${out##*sectors=}

	# A verify that cannot fail proves nothing.
	out=$(guest_cmd "$vm" corruptdisk "OK corruptdisk=") || exit 1
	lba=${out#OK corruptdisk=}
	out=$("$GUEST_SERIAL" --socket "$WORK/$vm/serial.sock" --timeout 60 \
		--send verify --expect "VERIFY ") || die "$vm: verify: no reply"
	log "$vm: after corrupting sector $lba: $out"
	[ "$out" = "VERIFY FAIL sector=$lba reason=body bad=1" ] ||
		die "$vm: verify missed the corruption: $out"
	guest_stop "$vm"

	# The written sectors are on the image, each at its own LBA (the
	# image was new: nothing else there carries the magic).
	if [ "$fmt" != raw ]; then
		qemu-img convert -f "$fmt" -O raw "$img" "$img.raw" || die "qemu-img convert"
		img=$img.raw
	fi
	out=$(stamped "$img")
	log "$vm: on the image: $out (stamped, at a wrong LBA); verify read $n"
	[ "$out" = "$n 0" ] || die "$vm: image holds '$out' stamped sectors, want '$n 0'"
}

check_format raw 0 0
# ferry puts a VM's disks on the IDE slots in order: a CD-ROM first leaves
# the disk on ide.0 unit 1, and the guest must skip the ATAPI device.
check_format qcow2 0 1 -device ide-cd,bus=ide.0,unit=0,id=dev-cd0

# Shared-image migration, QEMU's own (no ferry, no mirror): the table that
# says which generation each sector holds moves with RAM while the guest
# keeps writing, and switch-over may land in the middle of a PIO command.
img=$WORK/mig.img
qemu-img create -q -f qcow2 "$img" 128M || die "qemu-img create"
# shellcheck disable=SC2046
guest_start src 256 "$APPEND disk=5" -nodefaults $(disk_args qcow2 "$img" 0 0)
guest_wait_log src '^HB seq=2 ' 30 >/dev/null || exit 1
# shellcheck disable=SC2046
guest_start dst 256 "$APPEND disk=5" -nodefaults $(disk_args qcow2 "$img" 0 0) -incoming defer
qmp dst "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"unix:$WORK/mig.sock\"}}" >/dev/null || exit 1
for _ in $(seq 50); do
	[ -S "$WORK/mig.sock" ] && break
	sleep 0.1
done
[ -S "$WORK/mig.sock" ] || die "dst: no migration socket"
qmp src "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$WORK/mig.sock\"}}" >/dev/null || exit 1
r=$(qmp_wait_status src query-migrate completed 120 setup active device) || exit 1
log "migrated: total-time $(json_num total-time <<<"$r") ms, downtime $(json_num downtime <<<"$r") ms"
qmp_wait_status dst query-status running 30 >/dev/null || exit 1
guest_stop src
guest_wait_log dst '^HB ' 10 >/dev/null || exit 1
rate=$(disk_rate dst) || exit 1
log "dst: writing $rate sectors/s (want ~9766), disk_sectors $(hb dst 1 disk_sectors)"
[ "$rate" -gt 8800 ] && [ "$rate" -lt 10700 ] || die "dst: disk at $rate sectors/s"
out=$(guest_cmd dst verify "VERIFY " 60) || exit 1
log "dst: $out"
[[ $out =~ ^"VERIFY OK pages=8192 sectors="[1-9][0-9]*$ ]] || die "dst: verify: $out"
guest_stop dst
log "PASS"
