#!/bin/bash
# Builds ferry's Linux test guest (docs/guest.md, "The Linux guest") from
# Debian's packages only, into a cache shared by every build tree:
#
#   $CACHE/<key>/boot.img     64 MiB raw GPT disk: an ESP with systemd-boot
#                             (EFI/BOOT/BOOTX64.EFI), the kernel, the
#                             initramfs and one loader entry
#   $CACHE/<key>/vmlinuz      the same kernel and initramfs, for direct
#   $CACHE/<key>/initrd.img   kernel boot (machine pc, firmware bios)
#   $CACHE/<key>/manifest     key=value: versions, files, the ESP's offset
#   $CACHE/current -> <key>
#
# <key> hashes this script, the guest program's source (guest/linux/) and
# the versions of linux-image-amd64's kernel, busybox-static and
# systemd-boot-efi: a change to any of them builds anew; otherwise the run
# only prints the directory. The kernel package is fetched with
# `apt-get download` and unpacked in a scratch directory, never installed.
# The other packages (scripts/setup.sh installs them) are used in place.
#
# Usage: scripts/linux-guest.sh [--check]
#   prints the guest's directory on stdout (last line);
#   --check: only says whether the cache is up to date (exit 0) or not (1).
# Exit 77: a package or tool is missing and nothing usable is cached.
# FERRY_LINUX_GUEST_CACHE overrides the cache (default
# /var/cache/ferry/linux-guest).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FERRY_LINUX_GUEST_CACHE:-/var/cache/ferry/linux-guest}
SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
# Drivers for every bus ferry attaches disks and NICs on; modprobe adds
# what they depend on, but for the CPU-specific crypto variants (arch/x86/
# crypto: PCLMUL and the like, which TCG's default CPU lacks; the generic
# ones serve).
MODULES="virtio_pci virtio_blk virtio_scsi virtio_net sd_mod ahci ata_piix"
# The kernel command line before a test's own keys. quiet: the kernel's
# boot messages would slow the boot (every byte is a trapped port write
# under TCG); panics and warnings still show.
BASE_OPTIONS="console=ttyS0 quiet"
DEFAULT_OPTIONS="fill=64"
ESP_OFFSET_MIB=1
ESP_MIB=60
DISK_MIB=64

mode=build
case "${1:-}" in
	"") ;;
	--check) mode=check ;;
	*) echo "usage: $0 [--check]" >&2; exit 64 ;;
esac

say() { echo "linux-guest: $*" >&2; }

# The cached guest when a build is not possible: better an older guest
# than none (a test still checks what it needs from the manifest).
fallback() {
	if [ "$mode" = build ] && [ -f "$CACHE/current/manifest" ]; then
		say "$*; using the cached $(readlink -f "$CACHE/current")"
		readlink -f "$CACHE/current"
		exit 0
	fi
	say "$*"
	exit 77
}

for tool in apt-get apt-cache dpkg-deb dpkg-query gcc sfdisk mkfs.vfat mcopy mmd cpio depmod modprobe gzip sha256sum flock; do
	command -v "$tool" >/dev/null || fallback "$tool missing (scripts/setup.sh installs it)"
done
[ -f "$SDBOOT" ] || fallback "$SDBOOT missing (package systemd-boot-efi)"
BUSYBOX=$(dpkg-query -L busybox-static 2>/dev/null | grep -m1 '/bin/busybox$' || true)
[ -n "$BUSYBOX" ] && [ -x "$BUSYBOX" ] || fallback "busybox-static is not installed"

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
# The metapackage names the kernel package and its version in one line:
# "Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)". (apt-cache takes
# seconds on a loaded host: one call.)
KDEP=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null | sed -n 's/^Depends: //p' | head -n1)
KPKG=$(echo "$KDEP" | sed -n 's/^\(linux-image-[^ ,]*\).*/\1/p')
KVER=$(echo "$KDEP" | sed -n 's/^linux-image-[^ ,]* (= \([^)]*\)).*/\1/p')
[ -n "$KPKG" ] && [ -n "$KVER" ] || fallback "apt knows no linux-image-amd64 (apt-get update?)"
VERSIONS="$KPKG=$KVER busybox-static=$(pkg_version busybox-static) systemd-boot-efi=$(pkg_version systemd-boot-efi)"
KEY=$( (cat "$0" "$SRC"/guest/linux/*.[ch]; echo "$VERSIONS") | sha256sum | cut -c1-16)
OUT=$CACHE/$KEY

if [ -f "$OUT/manifest" ]; then
	[ "$mode" = check ] && exit 0
	[ "$(readlink "$CACHE/current" 2>/dev/null)" = "$KEY" ] || ln -sfn "$KEY" "$CACHE/current"
	echo "$OUT"
	exit 0
fi
[ "$mode" = check ] && exit 1

mkdir -p "$CACHE"
chmod 0755 "$CACHE" "$(dirname "$CACHE")" 2>/dev/null || true
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$OUT/manifest" ]; then # built by another run meanwhile
	echo "$OUT"
	exit 0
fi

start=$(date +%s%N)
TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
chmod 0755 "$TMP" # apt's download sandbox user writes below it
trap 'rm -rf "$TMP"' EXIT
say "building $KEY ($VERSIONS)"

# ---- the kernel and its modules, unpacked, never installed ------------------
mkdir "$TMP/deb" "$TMP/kernel"
chmod 0777 "$TMP/deb"
(cd "$TMP/deb" && apt-get download -q "$KPKG=$KVER" >/dev/null) ||
	fallback "apt-get download $KPKG=$KVER failed"
dpkg-deb -x "$TMP"/deb/*.deb "$TMP/kernel"
KREL=$(ls "$TMP/kernel/lib/modules" 2>/dev/null || ls "$TMP/kernel/usr/lib/modules")
MODROOT=$TMP/kernel
[ -d "$TMP/kernel/lib/modules/$KREL" ] || MODROOT=$TMP/kernel/usr
depmod -b "$MODROOT" "$KREL"

# ---- the initramfs: busybox, the drivers, /init and the guest program -------
R=$TMP/root
mkdir -p "$R"/bin "$R"/dev "$R"/proc "$R"/sys "$R"/etc "$R"/lib/modules
cp "$BUSYBOX" "$R/bin/busybox"
for applet in sh mount insmod cat echo ls sleep; do
	ln -s busybox "$R/bin/$applet"
done
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
: > "$R/etc/modules"
for m in $MODULES; do
	modprobe -d "$MODROOT" -S "$KREL" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | awk '!seen[$0]++' | grep -v '/arch/x86/crypto/' | while read -r ko; do
	name=$(basename "$ko")
	case "$name" in
		*.ko) cp "$ko" "$R/lib/modules/$name" ;;
		*.ko.xz) name=${name%.xz}; xz -dc "$ko" > "$R/lib/modules/$name" ;;
		*.ko.zst) name=${name%.zst}; zstd -qdc "$ko" > "$R/lib/modules/$name" ;;
		*) say "unknown module file $ko"; exit 1 ;;
	esac
	echo "$name" >> "$R/etc/modules"
done
cat > "$R/init" <<'INIT'
#!/bin/sh
# ferry's Linux test guest: load the drivers, then the workload as PID 1.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do
	insmod "/lib/modules/$m" || echo "FERRY-GUEST WARN insmod $m failed"
done
exec /bin/ferry-linux-guest
INIT
chmod 0755 "$R/init"
gcc -static -pthread -O2 -Wall -Wextra -D_GNU_SOURCE -o "$R/bin/ferry-linux-guest" \
	"$SRC"/guest/linux/*.c
(cd "$R" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -6 > "$TMP/initrd.img"
cp "$TMP/kernel/boot/vmlinuz-$KREL" "$TMP/vmlinuz"

# ---- the boot disk: GPT, one ESP, systemd-boot as the removable-media loader -
ESP=$TMP/esp.img
truncate -s "${ESP_MIB}M" "$ESP"
mkfs.vfat -n FERRY-ESP "$ESP" >/dev/null
mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$ESP" "$SDBOOT" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$ESP" "$TMP/vmlinuz" ::/vmlinuz
mcopy -i "$ESP" "$TMP/initrd.img" ::/initrd.img
printf 'default ferry.conf\ntimeout 0\neditor no\n' > "$TMP/loader.conf"
mcopy -i "$ESP" "$TMP/loader.conf" ::/loader/loader.conf
printf 'title ferry Linux guest\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s %s\n' \
	"$BASE_OPTIONS" "$DEFAULT_OPTIONS" > "$TMP/ferry.conf"
mcopy -i "$ESP" "$TMP/ferry.conf" ::/loader/entries/ferry.conf
truncate -s "${DISK_MIB}M" "$TMP/boot.img"
printf 'label: gpt\nstart=%d, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"\n' \
	$((ESP_OFFSET_MIB * 2048)) $((ESP_MIB * 2048)) | sfdisk -q "$TMP/boot.img"
dd if="$ESP" of="$TMP/boot.img" bs=1M seek="$ESP_OFFSET_MIB" conv=notrunc,sparse status=none

ms=$((($(date +%s%N) - start) / 1000000))
secs=$((ms / 1000)).$(printf %03d $((ms % 1000)))
cat > "$TMP/manifest" <<MANIFEST
key=$KEY
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$secs
kernel_package=$KPKG
kernel_version=$KVER
kernel_release=$KREL
busybox_static=$(pkg_version busybox-static)
systemd_boot_efi=$(pkg_version systemd-boot-efi)
image=boot.img
kernel=vmlinuz
initrd=initrd.img
esp_offset=$((ESP_OFFSET_MIB << 20))
loader_entry=/loader/entries/ferry.conf
base_options=$BASE_OPTIONS
modules=$(tr '\n' ' ' < "$R/etc/modules")
MANIFEST

mkdir "$TMP/out"
mv "$TMP/boot.img" "$TMP/vmlinuz" "$TMP/initrd.img" "$TMP/manifest" "$TMP/out/"
chmod 0644 "$TMP"/out/*
chmod 0755 "$TMP/out"
mv "$TMP/out" "$OUT"
ln -sfn "$KEY" "$CACHE/current"
# Older builds go: only the current one is ever used.
for old in "$CACHE"/*; do
	[ -d "$old" ] && [ ! -L "$old" ] && [ "$(basename "$old")" != "$KEY" ] && rm -rf "$old"
done
say "built $OUT in ${secs}s"
echo "$OUT"
