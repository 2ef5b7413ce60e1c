#!/bin/bash
# Installs what ferry needs on Debian 13 (idempotent) and builds it into
# ./build (or $FERRY_BUILD). Usage: scripts/setup.sh [extra cmake args]
#
# ferry supports QEMU 8.2 to 10.x; CI tests Debian 13's QEMU 10.0. On a
# Debian 12 machine QEMU comes from Debian's bookworm-backports (10.0 too):
# bookworm's own 7.2 loses guest writes under TCG across many dirty-bitmap
# syncs (fixed in QEMU 9.0), which makes verified migrations impossible.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_update() { [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

QEMU_PKGS="qemu-system-x86 qemu-utils"
QEMU_RELEASE=""
if grep -q '^12' /etc/debian_version 2>/dev/null; then
	QEMU_RELEASE=bookworm-backports
	src=/etc/apt/sources.list.d/ferry-bookworm-backports.sources
	if [ ! -f "$src" ]; then
		echo "== Debian 12: enabling bookworm-backports for QEMU 10"
		cat > "$src" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		apt_updated=""
	fi
fi
qemu_major=$( (qemu-system-x86_64 --version 2>/dev/null || true) | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p')
if [ -z "$qemu_major" ] || [ "$qemu_major" -lt 8 ] || ! installed qemu-utils; then
	echo "== installing QEMU${QEMU_RELEASE:+ from $QEMU_RELEASE}"
	apt_update
	apt-get install -y -qq ${QEMU_RELEASE:+-t $QEMU_RELEASE} $QEMU_PKGS >/dev/null
fi

PKGS="build-essential cmake pkg-config gcc-multilib
      liburing-dev liblz4-dev libzstd-dev libxxhash-dev libjson-c-dev libssl-dev libyaml-dev libcmocka-dev
      libmicrohttpd-dev libcurl4-openssl-dev jq socat iproute2 curl gnuplot-nox clang"
missing=""
for p in $PKGS; do
	installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	apt_update
	apt-get install -y -qq $missing >/dev/null
fi

# UEFI firmware for `firmware: uefi` VMs: OVMF in /usr/share/OVMF (docs/config.md).
installed ovmf || { echo "== installing ovmf"; apt_update; apt-get install -y -qq ovmf >/dev/null; }

# ---- web console browser test (tests/e2e/console_browser.sh) ---------------
# Debian's chromium, driven by playwright-core from the npm registry (pinned
# in tests/console/package-lock.json); Playwright never downloads a browser.
# npm only when none is there: a nodejs from elsewhere may ship its own.
console_missing=""
for p in chromium nodejs; do
	installed "$p" || console_missing="$console_missing $p"
done
command -v npm >/dev/null || console_missing="$console_missing npm"
if [ -n "$console_missing" ]; then
	echo "== installing:$console_missing"
	apt_update
	apt-get install -y -qq $console_missing >/dev/null
fi
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/console/package.json)
have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' tests/console/node_modules/playwright-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
	echo "== installing playwright-core $want into tests/console"
	(cd tests/console && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
# ---- end of the web console block ---------------------------------------------

# ---- promtool (the e2e.metrics_kubevirt test: promtool check metrics) ------------------
# Debian's prometheus package holds promtool, but installing it starts a
# Prometheus server: the package is only downloaded and promtool alone is
# extracted from it into /usr/local/bin.
if ! command -v promtool >/dev/null; then
	echo "== extracting promtool from Debian's prometheus package"
	apt_update
	cache=/var/cache/ferry/prometheus
	rm -rf "$cache" && mkdir -p "$cache"
	chown _apt "$cache" 2>/dev/null || true # apt downloads as _apt where it exists
	(cd "$cache" && apt-get download -qq prometheus >/dev/null)
	dpkg-deb -x "$cache"/prometheus_*.deb "$cache/root"
	install -m 0755 "$cache/root/usr/bin/promtool" /usr/local/bin/promtool
	rm -rf "$cache"
fi
# ---- end of the promtool block ---------------------------------------------------
# ---- the Linux test guest (scripts/linux-guest.sh, docs/guest.md) ------------
# Its userland and bootloader, and the tools that make its GPT disk with an
# ESP without loop mounts; its kernel package is downloaded and unpacked by
# the script, never installed. Cached in /var/cache/ferry/linux-guest.
guest_missing=""
for p in busybox-static systemd-boot-efi dosfstools mtools fdisk cpio kmod; do
	installed "$p" || guest_missing="$guest_missing $p"
done
if [ -n "$guest_missing" ]; then
	echo "== installing:$guest_missing"
	apt_update
	apt-get install -y -qq $guest_missing >/dev/null
fi
scripts/linux-guest.sh >/dev/null ||
	echo "== warning: the Linux test guest could not be built; its tests will skip"
# ---- end of the Linux test guest block ----------------------------------------

# QEMU runs as this unprivileged user (ferryd.yaml qemu.user, docs/config.md).
if ! id -u ferry-qemu >/dev/null 2>&1; then
	echo "== creating the system user ferry-qemu"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin ferry-qemu
fi
# Post-copy needs userfaultfd; an unprivileged QEMU gets it from
# /dev/userfaultfd (QEMU 8.1+) when vm.unprivileged_userfaultfd is 0.
# packaging/60-ferry-userfaultfd.rules does the same at every boot.
if [ -c /dev/userfaultfd ] && [ "$(stat -c %G /dev/userfaultfd)" != ferry-qemu ]; then
	echo "== /dev/userfaultfd for the ferry-qemu group (post-copy)"
	chgrp ferry-qemu /dev/userfaultfd
	chmod 0660 /dev/userfaultfd
fi

BUILD=${FERRY_BUILD:-build}
echo "== building into $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
