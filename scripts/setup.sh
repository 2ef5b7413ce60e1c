#!/bin/bash
# Installs what ferry needs on Debian 12 (idempotent) and builds it into
# ./build (or $FERRY_BUILD). Usage: scripts/setup.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential cmake pkg-config gcc-multilib qemu-system-x86 qemu-utils
      liburing-dev liblz4-dev libjson-c-dev libssl-dev libyaml-dev libcmocka-dev
      libmicrohttpd-dev libcurl4-openssl-dev jq socat iproute2 curl gnuplot-nox"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
fi

BUILD=${FERRY_BUILD:-build}
echo "== building into $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
