# Helpers for e2e tests with ferry's Linux test guest (docs/guest.md, "The
# Linux guest"); sourced after cluster_lib.sh (ferry VMs) or guest_lib.sh
# (plain QEMU), which set $WORK, die and log.
#
#   linux_guest_init              finds the cached guest, building it if it
#                                 is missing or stale (scripts/linux-guest.sh);
#                                 exit 77 when it cannot be had. Sets
#                                 LINUX_GUEST_DIR, and LINUX_KERNEL and
#                                 LINUX_INITRD: copies in $WORK for direct
#                                 kernel boot
#   linux_guest_image NAME "PARAMS"   path of a fresh copy of the boot disk
#                                 in $WORK, its loader entry carrying PARAMS
#                                 (the workload: fill=, dirty=, disk=, ...)
#   linux_guest_data NAME MIB [FORMAT]   path of a new, empty data disk
#   linux_guest_spec NAME MEM "PARAMS" [KEY=VALUE...]
#                                 prints a ferry VM spec (YAML) for the guest;
#                                 keys: machine= (q35), firmware= (uefi; bios
#                                 boots the kernel and initrd directly),
#                                 vcpus= (2), data= MiB of data disk (256;
#                                 0: none), bus= the data disk's bus (virtio,
#                                 ide with bios), bootbus= the boot disk's
#                                 (virtio), format= the data disk's (raw)
#   linux_vm_create NODE NAME MEM "PARAMS" [KEY=VALUE...]
#                                 creates that VM on NODE and waits for READY;
#                                 logs the boot time (vm create to READY) and
#                                 sets LINUX_BOOT_MS to it
#   linux_migrate SRC DST NAME [MIGRATE OPTIONS...]
#                                 migrates NAME from SRC to DST and waits
#                                 until it Succeeded; then the guest verifies
#                                 on DST and its heartbeat has gone on past
#                                 the last one seen on SRC. Sets LINUX_MIG_ID
#   linux_mig_figures NODE ID LABEL   logs a migration's figures: total
#                                 time, guest pause, bytes raw/wire of the
#                                 relayed streams (RAM and NBD), disk copied
#
# The guest speaks ferry-guest's serial protocol, so cluster_lib.sh's
# guest_verify and guest_hb work on it unchanged.

LINUX_GUEST_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Booting under TCG: OVMF, the kernel and the fill take 15-40 s on a
# loaded 2-core host; the deadline is generous.
LINUX_BOOT_SECS=${LINUX_BOOT_SECS:-300}

linux_guest_init() {
	local rc=0 tool out

	for tool in mcopy qemu-img; do
		command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
	done
	# its last line is the directory (no pipe: its exit status counts)
	out=$("$LINUX_GUEST_SRC/scripts/linux-guest.sh") || rc=$?
	LINUX_GUEST_DIR=${out##*$'\n'}
	if [ $rc -ne 0 ]; then
		[ $rc -eq 77 ] && { echo "SKIP: the Linux guest cannot be built here"; exit 77; }
		die "scripts/linux-guest.sh failed ($rc)"
	fi
	[ -f "$LINUX_GUEST_DIR/manifest" ] || die "no manifest in $LINUX_GUEST_DIR"
	LINUX_ESP_OFFSET=$(linux_manifest esp_offset)
	LINUX_BASE_OPTIONS=$(linux_manifest base_options)
	install -m 0644 "$LINUX_GUEST_DIR/$(linux_manifest kernel)" "$WORK/linux-vmlinuz"
	install -m 0644 "$LINUX_GUEST_DIR/$(linux_manifest initrd)" "$WORK/linux-initrd.img"
	LINUX_KERNEL=$WORK/linux-vmlinuz
	LINUX_INITRD=$WORK/linux-initrd.img
}

linux_manifest() { sed -n "s/^$1=//p" "$LINUX_GUEST_DIR/manifest"; }

# QEMU runs as ${QEMU_USER:-root} and must write the images it is given.
linux_give() {
	[ "${QEMU_USER:-root}" = root ] || chown "$QEMU_USER:" "$1"
}

linux_guest_image() {
	local name=$1 params=$2 img=$WORK/$1-boot.img entry=$WORK/$1-entry.conf

	cp --sparse=always "$LINUX_GUEST_DIR/$(linux_manifest image)" "$img" || die "cannot copy the boot disk"
	printf 'title ferry Linux guest\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s %s\n' \
		"$LINUX_BASE_OPTIONS" "$params" > "$entry"
	mcopy -o -i "$img@@$LINUX_ESP_OFFSET" "$entry" "::$(linux_manifest loader_entry)" ||
		die "cannot write the loader entry of $img"
	rm -f "$entry"
	linux_give "$img"
	echo "$img"
}

linux_guest_data() {
	local name=$1 mib=$2 fmt=${3:-raw} img

	img=$WORK/$name-data.$fmt
	rm -f "$img"
	qemu-img create -q -f "$fmt" "$img" "${mib}M" || die "cannot create $img"
	linux_give "$img"
	echo "$img"
}

linux_guest_spec() {
	local name=$1 mem=$2 params=$3 kv
	local machine=q35 firmware=uefi vcpus=2 data=256 bus="" bootbus=virtio format=raw
	local boot dimg
	shift 3

	for kv in "$@"; do
		case $kv in
		machine=*|firmware=*|vcpus=*|data=*|bus=*|bootbus=*|format=*) local "$kv" ;;
		*) die "linux_guest_spec: unknown option $kv" ;;
		esac
	done
	[ -n "$bus" ] || { [ "$firmware" = bios ] && bus=ide || bus=virtio; }
	cat <<YAML
name: $name
memory_mib: $mem
vcpus: $vcpus
machine: $machine
firmware: $firmware
serial: true
YAML
	if [ "$firmware" = bios ]; then
		# No bootloader for BIOS: the kernel and initrd boot directly.
		cat <<YAML
kernel: $LINUX_KERNEL
initrd: $LINUX_INITRD
append: "$LINUX_BASE_OPTIONS $params"
YAML
		[ "$data" -gt 0 ] || return 0
		echo "disks:"
	else
		boot=$(linux_guest_image "$name" "$params") || exit 1
		echo "disks:"
		echo "  - {name: boot, path: $boot, format: raw, type: disk, storage: local, bus: $bootbus}"
		[ "$data" -gt 0 ] || return 0
	fi
	dimg=$(linux_guest_data "$name" "$data" "$format") || exit 1
	echo "  - {name: data, path: $dimg, format: $format, type: disk, storage: local, bus: $bus}"
}

linux_vm_create() {
	local node=$1 name=$2 mem=$3 params=$4 serial t0 line
	shift 4

	linux_guest_spec "$name" "$mem" "$params" "$@" > "$WORK/$name.yaml" || exit 1
	t0=$(date +%s%3N)
	ctl "$node" vm create -f "$WORK/$name.yaml" || die "vm create $name failed"
	serial=$(vm_json "$node" "$name" | jq -r .serialSocket)
	# READY is printed once; a client that connects later sees heartbeats
	# (then the boot time below is late by up to one heartbeat period).
	line=$("$GUEST_SERIAL" --socket "$serial" --timeout "$LINUX_BOOT_SECS" --expect "FERRY-GUEST READY" \
		--expect-any "HB ") || die "Linux guest $name did not boot: $(tail -c 400 "$WORK/$node/state/vms/$name/serial.log" 2>/dev/null)"
	LINUX_BOOT_MS=$(( $(date +%s%3N) - t0 ))
	log "$node/$name: ${line%%$'\n'*}"
	log "FIGURES boot $name ($(linux_vm_kind "$WORK/$name.yaml")): READY ${LINUX_BOOT_MS} ms after vm create"
}

# linux_vm_kind SPEC: "q35/uefi/virtio, 2 vCPUs, 384 MiB" from a spec
linux_vm_kind() {
	local f=$1
	echo "$(sed -n 's/^machine: //p' "$f")/$(sed -n 's/^firmware: //p' "$f")/$(grep -o 'bus: [a-z]*' "$f" | tail -n1 | cut -d' ' -f2), $(sed -n 's/^vcpus: //p' "$f") vCPUs, $(sed -n 's/^memory_mib: //p' "$f") MiB"
}

linux_migrate() {
	local src=$1 dst=$2 name=$3 hb0 hb1 m phase
	shift 3

	hb0=$(guest_hb "$src" "$name")
	[ -n "$hb0" ] || die "$src/$name: no heartbeat before the migration"
	LINUX_MIG_ID=$(ctl "$src" -o json migrate "$name" --node "$dst" "$@" | jq -r .id)
	[ -n "$LINUX_MIG_ID" ] && [ "$LINUX_MIG_ID" != null ] || die "migrate $name $src -> $dst was refused"
	mig_wait_phase "$src" "$LINUX_MIG_ID" 'Succeeded|Failed' 600
	m=$(mig_json "$src" "$LINUX_MIG_ID")
	phase=$(echo "$m" | jq -r .phase)
	[ "$phase" = Succeeded ] || die "migration $name $src -> $dst: $phase: $(echo "$m" | jq -r .failureReason)"
	[ "$(vm_json "$dst" "$name" | jq -r .state)" = Running ] || die "$name is not Running on $dst"
	guest_verify "$dst" "$name"
	hb1=$(guest_hb "$dst" "$name")
	[ -n "$hb1" ] && [ "$hb1" -gt "$hb0" ] || die "$dst/$name: heartbeat seq ${hb1:-none} does not go on past $hb0"
	log "$name $src -> $dst: heartbeat seq $hb0 before, $hb1 after"
}

linux_mig_figures() {
	local node=$1 id=$2 label=$3

	mig_json "$node" "$id" | jq -r --arg l "$label" '"FIGURES migration \($l): total \(.totalMs) ms, pause \(.pauseMs // "n/a") ms, streams (RAM + NBD) raw \(.rawBytes) B wire \(.wireBytes) B, disks \(.disks // 0) copied \(.diskTransferred // 0) B of \(.diskTotal // 0) B"' |
		while read -r line; do log "$line"; done
}
